/**
 * `fsmesh node start --data DIR --http 127.0.0.1:PORT [...]`: run one node until SIGINT/SIGTERM.
 * Prints one JSON line `{"ready":true,...}` when serving; node events go to stdout as JSON lines
 * (pino) unless `--quiet`. Shutdown finishes in-flight requests, fsyncs and closes.
 */
import * as fs from 'node:fs';
import pino from 'pino';
import { composeNode } from '../compose/compose-node.ts';
import { NODE_DEFAULTS } from '../core/defaults.ts';
import type { BootstrapProgress } from '../p2p/cluster-options.ts';
import { intFlag, parse, requireFlag, UsageError } from './args.ts';

export const NODE_START_USAGE =
  'fsmesh node start --data DIR --http HOST:PORT [--listen /ip4/127.0.0.1/tcp/PORT] [--seed MULTIADDR ...] [--role writer|replica] [--cluster-key FILE] [--trusted-writer PEER_ID] [--cluster NAME] [--durability local|quorum] [--members N] [--name NAME] [--shard S] [--fsync per_commit|group] [--group-commit-ms N] [--batch-max-commits N] [--build-interval-ms N] [--scrub-interval-ms N] [--trace none|console|OTLP_URL] [--quiet]';

export function parseHostPort(v: string, flag: string): { host: string; port: number } {
  const m = /^([^:]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535)
    throw new UsageError(`--${flag}: expected HOST:PORT (e.g. 127.0.0.1:8080), got ${JSON.stringify(v)}`);
  return { host: m[1], port: Number(m[2]) };
}

export async function cmdNode(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'start') throw new UsageError(`usage: ${NODE_START_USAGE}`);
  const a = parse(
    rest,
    {
      data: { type: 'string' },
      http: { type: 'string' },
      name: { type: 'string' },
      shard: { type: 'string' },
      role: { type: 'string' },
      fsync: { type: 'string' },
      'group-commit-ms': { type: 'string' },
      'batch-max-commits': { type: 'string' },
      'build-interval-ms': { type: 'string' },
      'scrub-interval-ms': { type: 'string' },
      quiet: { type: 'boolean' },
      listen: { type: 'string' },
      seed: { type: 'string', multiple: true },
      'cluster-key': { type: 'string' },
      'trusted-writer': { type: 'string' },
      cluster: { type: 'string' },
      durability: { type: 'string' },
      members: { type: 'string' },
      'fetch-peers': { type: 'string' },
      trace: { type: 'string' },
    },
    NODE_START_USAGE,
  );
  const dir = requireFlag(a.values.data, 'data', NODE_START_USAGE);
  const { host, port } = parseHostPort(requireFlag(a.values.http, 'http', NODE_START_USAGE), 'http');
  const role = a.values.role ?? 'writer';
  if (role !== 'writer' && role !== 'replica')
    throw new UsageError(`--role: must be writer or replica, got ${JSON.stringify(role)}`);
  const fsyncMode = a.values.fsync ?? 'per_commit';
  if (fsyncMode !== 'per_commit' && fsyncMode !== 'group')
    throw new UsageError(`--fsync: must be per_commit or group`);
  const durability = (a.values.durability as string | undefined) ?? 'local';
  if (durability !== 'local' && durability !== 'quorum')
    throw new UsageError(`--durability: must be local or quorum, got ${JSON.stringify(durability)}`);
  const seeds = (a.values.seed as string[] | undefined) ?? [];
  for (const s of seeds)
    if (!/^\/ip[46]\/[^/]+\/tcp\/\d+\/p2p\/\w+$/.test(s))
      throw new UsageError(`--seed: expected /ip4/HOST/tcp/PORT/p2p/PEER_ID, got ${JSON.stringify(s)}`);
  const listen = a.values.listen as string | undefined;
  if (listen !== undefined && !/^\/ip[46]\/[^/]+\/tcp\/\d+$/.test(listen))
    throw new UsageError(`--listen: expected /ip4/HOST/tcp/PORT, got ${JSON.stringify(listen)}`);
  let clusterKey: Uint8Array | undefined;
  if (typeof a.values['cluster-key'] === 'string') {
    try {
      clusterKey = new Uint8Array(fs.readFileSync(a.values['cluster-key']));
    } catch (err) {
      throw new UsageError(
        `--cluster-key: cannot read ${a.values['cluster-key']}: ${(err as Error).message}`,
      );
    }
    if (!new TextDecoder().decode(clusterKey).startsWith('/key/swarm/psk/1.0.0/'))
      throw new UsageError(
        '--cluster-key: not a libp2p swarm key (expected /key/swarm/psk/1.0.0/ header; create one with `fsmesh cluster-key FILE`)',
      );
  }
  const p2p = listen !== undefined || seeds.length > 0;
  fs.mkdirSync(dir, { recursive: true });
  const traceOpt = a.values.trace as string | undefined;
  if (
    traceOpt !== undefined &&
    traceOpt !== 'none' &&
    traceOpt !== 'console' &&
    !/^https?:\/\//.test(traceOpt)
  ) {
    throw new UsageError(
      `--trace: none, console or an OTLP/HTTP collector URL, got ${JSON.stringify(traceOpt)}`,
    );
  }
  const { configureTracing } = await import('../obs/tracing.ts');
  const tracing = await configureTracing(
    traceOpt === undefined || traceOpt === 'none'
      ? 'none'
      : traceOpt === 'console'
        ? 'console'
        : { otlp_url: traceOpt },
  );
  const nodeConfig = {
    data_dir: dir,
    node_name: (a.values.name as string | undefined) ?? `node-${port}`,
    shard: a.values.shard as string | undefined,
    role,
    fsync: fsyncMode,
    group_commit_ms: intFlag(a.values['group-commit-ms'], 'group-commit-ms'),
    build: {
      ...(a.values['batch-max-commits']
        ? { batch_max_commits: intFlag(a.values['batch-max-commits'], 'batch-max-commits', 1) }
        : {}),
      ...(a.values['build-interval-ms']
        ? { build_interval_ms: intFlag(a.values['build-interval-ms'], 'build-interval-ms') }
        : {}),
    },
    scrub_interval_ms:
      intFlag(a.values['scrub-interval-ms'], 'scrub-interval-ms') ?? NODE_DEFAULTS.cli_scrub_interval_ms,
  } as const;
  if (!p2p && durability === 'quorum')
    throw new UsageError('--durability quorum needs a cluster (--listen / --seed)');
  const { node, cluster, http, stop } = await composeNode({
    node: nodeConfig,
    cluster: p2p
      ? {
          listen: [listen ?? '/ip4/127.0.0.1/tcp/0'],
          seeds,
          cluster_key: clusterKey,
          cluster: a.values.cluster as string | undefined,
          role,
          durability,
          members: intFlag(a.values.members, 'members', 1) ?? seeds.length + 1,
          trusted_writer: a.values['trusted-writer'] as string | undefined,
          fetch_peers: intFlag(a.values['fetch-peers'], 'fetch-peers', 1),
          onProgress: a.values.quiet ? undefined : printBootstrapProgress,
        }
      : undefined,
    http: { host, port },
  });
  if (!a.values.quiet) {
    const log = pino({ base: undefined, timestamp: false, messageKey: 'msg' });
    // Events from start-up (log recovery at open, cluster start) first, then live ones.
    for (const e of node.events.recent) log.info(e);
    node.events.on((e) => log.info(e));
  }
  process.stdout.write(
    `${JSON.stringify({ ready: true, node: node.name, http: http!.url, data: dir, role, pid: process.pid, ...(cluster ? { peer_id: cluster.transport.peerId, multiaddrs: cluster.status().multiaddrs } : {}) })}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await stop();
  await tracing.shutdown();
  process.stdout.write(`${JSON.stringify({ stopped: true, node: node.name })}\n`);
  return 0;
}

function printBootstrapProgress(p: BootstrapProgress): void {
  process.stderr.write(
    `\r[fsmesh ${p.phase}] objects ${p.objects_done}/${p.objects_total}  bytes ${(p.bytes / 1048576).toFixed(1)} MiB  peers ${p.peers}${p.phase === 'done' ? '\n' : ''}`,
  );
}
