/**
 * `fsmesh node start --data DIR --http 127.0.0.1:PORT [...]`: run one node until SIGINT/SIGTERM.
 * Prints one JSON line `{"ready":true,...}` when serving; node events go to stdout as JSON lines
 * (pino) unless `--quiet`. Shutdown finishes in-flight requests, fsyncs and closes.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import pino from 'pino';
import { type ComposeOptions, composeNode } from '../compose/compose-node.ts';
import { NODE_DEFAULTS } from '../core/defaults.ts';
import type { NodeConfig } from '../node/index.ts';
import type { ClusterServiceConfig } from '../p2p/cluster.ts';
import type { BootstrapProgress } from '../p2p/cluster-options.ts';
import { intFlag, parse, requireFlag, UsageError } from './args.ts';
import { parseFailpointSpec } from './failpoints.ts';
import { type Progress, ttyProgress } from './progress.ts';
import { semanticEmbedder } from './semantic.ts';
import {
  cmdNodeId,
  NODE_ID_USAGE,
  runShardedNode,
  type ShardedPlan,
  shardFlags,
} from './sharded-node-cmd.ts';

export const NODE_START_USAGE =
  'fsmesh node start --data DIR --http HOST:PORT [--listen /ip4/127.0.0.1/tcp/PORT] [--announce /ip4/HOST/tcp/PORT ...] [--seed MULTIADDR ...] [--role writer|replica] [--cluster-key FILE] [--trusted-writer PEER_ID] [--cluster NAME] [--durability local|quorum] [--members N|PEER_ID,...] [--name NAME] [--shard S] [--fsync per_commit|group] [--group-commit-ms N] [--batch-max-commits N] [--build-interval-ms N] [--scrub-interval-ms N] [--first-scrub-delay-ms N] [--trace none|console|OTLP_URL] [--trace-sample-ratio R] [--http-token FILE] [--http-allowed-hosts NAME,...] [--insecure] [--max-replica-lag-commits N] [--route-lag-commits N] [--admin-pub HEX] [--degraded-probe-interval-ms N] [--max-activation-failures N] [--replication artifacts|commits] [--semantic] [--compute-threads N] [--serve-rate-limit MB/s] [--no-bulk-lane] [--bulk-lane-port N] [--reader-cache-mb N] [--postings-cache-mb N] [--shards S] [--writer-of K] [--replicate-shards LIST] [--quiet]';

export function parseHostPort(v: string, flag: string): { host: string; port: number } {
  const m = /^([^:]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535)
    throw new UsageError(`--${flag}: expected HOST:PORT (e.g. 127.0.0.1:8080), got ${JSON.stringify(v)}`);
  return { host: m[1], port: Number(m[2]) };
}

const NODE_START_FLAGS = {
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
  'first-scrub-delay-ms': { type: 'string' },
  quiet: { type: 'boolean' },
  listen: { type: 'string' },
  announce: { type: 'string', multiple: true },
  seed: { type: 'string', multiple: true },
  'cluster-key': { type: 'string' },
  'trusted-writer': { type: 'string' },
  cluster: { type: 'string' },
  durability: { type: 'string' },
  members: { type: 'string' },
  'fetch-peers': { type: 'string' },
  trace: { type: 'string' },
  'trace-sample-ratio': { type: 'string' },
  'http-token': { type: 'string' },
  'http-allowed-hosts': { type: 'string' },
  insecure: { type: 'boolean' },
  'no-bulk-lane': { type: 'boolean' },
  'bulk-lane-port': { type: 'string' },
  'max-replica-lag-commits': { type: 'string' },
  'route-lag-commits': { type: 'string' },
  'admin-pub': { type: 'string' },
  'degraded-probe-interval-ms': { type: 'string' },
  'max-activation-failures': { type: 'string' },
  replication: { type: 'string' },
  semantic: { type: 'boolean' },
  'compute-threads': { type: 'string' },
  'serve-rate-limit': { type: 'string' },
  'reader-cache-mb': { type: 'string' },
  'postings-cache-mb': { type: 'string' },
  shards: { type: 'string' },
  'writer-of': { type: 'string' },
  'replicate-shards': { type: 'string' },
} as const;

type Flags = Record<string, string | string[] | boolean | undefined>;

function oneOf<T extends string>(v: unknown, flag: string, allowed: readonly T[], dflt: T): T {
  const x = (v as string | undefined) ?? dflt;
  if (!allowed.includes(x as T))
    throw new UsageError(`--${flag}: must be ${allowed.join(' or ')}, got ${JSON.stringify(x)}`);
  return x as T;
}

function readClusterKey(file: string): Uint8Array {
  let key: Uint8Array;
  try {
    key = new Uint8Array(fs.readFileSync(file));
  } catch (err) {
    throw new UsageError(`--cluster-key: cannot read ${file}: ${(err as Error).message}`);
  }
  if (!new TextDecoder().decode(key).startsWith('/key/swarm/psk/1.0.0/'))
    throw new UsageError(
      '--cluster-key: not a libp2p swarm key (expected /key/swarm/psk/1.0.0/ header; create one with `fsmesh cluster-key FILE`)',
    );
  return key;
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function readHttpToken(file: string): string {
  let token: string;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--http-token: cannot read ${file}: ${(err as Error).message}`);
  }
  if (token.length < 16 || /\s/.test(token))
    throw new UsageError(
      `--http-token: ${file} must hold one token of at least 16 characters (create one with \`fsmesh http-token FILE\`)`,
    );
  return token;
}

/** `--members N` (a count) or `--members PEER_ID,...` (who may acknowledge quorum writes). */
function parseMembers(v: string | undefined, seeds: number): { members: number; member_ids?: string[] } {
  if (v === undefined) return { members: seeds + 1 };
  if (/^\d+$/.test(v)) return { members: intFlag(v, 'members', 1)! };
  const ids = v.split(',').map((s) => s.trim());
  for (const id of ids)
    if (!/^[1-9A-HJ-NP-Za-km-z]{46,60}$/.test(id))
      throw new UsageError(
        `--members: expected a count or comma-separated peer ids, got ${JSON.stringify(id)}`,
      );
  return { members: new Set(ids).size + 1, member_ids: [...new Set(ids)] };
}

/**
 * Secure by default (docs/security.md): a node reachable from other machines must authenticate
 * them — the cluster key for libp2p, a bearer token for HTTP — unless `--insecure` says otherwise.
 */
function checkExposure(o: {
  httpHost: string;
  listen: string | undefined;
  token: string | undefined;
  clusterKey: Uint8Array | undefined;
  quorumByCount: boolean;
  insecure: boolean;
}): void {
  if (o.insecure) return;
  if (!isLoopbackHost(o.httpHost) && o.token === undefined)
    throw new UsageError(
      `--http ${o.httpHost} is reachable from other machines: add --http-token FILE (create one with \`fsmesh http-token FILE\`), or --insecure`,
    );
  const listenHost = o.listen?.split('/')[2];
  if (listenHost !== undefined && !isLoopbackHost(listenHost) && o.clusterKey === undefined)
    throw new UsageError(
      `--listen ${o.listen} is reachable from other machines: add --cluster-key FILE (create one with \`fsmesh cluster-key FILE\`), or --insecure`,
    );
  if (o.quorumByCount && o.clusterKey === undefined)
    throw new UsageError(
      '--durability quorum with --members N counts acks from any peer: add --cluster-key FILE so only key holders count, or name the members (--members PEER_ID,...)',
    );
}

function parseTrace(v: string | undefined): 'none' | 'console' | { otlp_url: string } {
  if (v === undefined || v === 'none') return 'none';
  if (v === 'console') return 'console';
  if (/^https?:\/\//.test(v)) return { otlp_url: v };
  throw new UsageError(`--trace: none, console or an OTLP/HTTP collector URL, got ${JSON.stringify(v)}`);
}

/** `--trace-sample-ratio R`: the fraction of queries traced (lifecycle spans always are). */
function parseSampleRatio(v: unknown, trace: ReturnType<typeof parseTrace>): number | undefined {
  if (v === undefined) return undefined;
  const r = typeof v === 'string' && /^(0(\.\d+)?|1(\.0+)?)$/.test(v) ? Number(v) : Number.NaN;
  if (Number.isNaN(r))
    throw new UsageError(
      `--trace-sample-ratio: expected a number from 0 to 1 (e.g. 0.1), got ${JSON.stringify(v)}`,
    );
  if (trace === 'none') throw new UsageError('--trace-sample-ratio needs --trace console or a collector URL');
  return r;
}

/** Every flag checked (each error names its flag) and turned into composition options. */
interface NodeStartPlan {
  dir: string;
  trace: ReturnType<typeof parseTrace>;
  /** Fraction of queries traced; undefined: the exporter's default. */
  query_sample_ratio: number | undefined;
  compose: ComposeOptions;
  /** Worker threads for builds and repair encoding (0: everything on the main thread). */
  compute_threads: number;
  /** A multi-shard collection (`--shards S`, S >= 2): the count and the shard written here. */
  sharded: ShardedPlan | null;
}

function planNodeStart(v: Flags): NodeStartPlan {
  const dir = requireFlag(v.data as string | undefined, 'data', NODE_START_USAGE);
  const http = requireFlag(v.http as string | undefined, 'http', NODE_START_USAGE);
  const { host, port } = parseHostPort(http, 'http');
  const role = oneOf(v.role, 'role', ['writer', 'replica'] as const, 'writer');
  const fsync = oneOf(v.fsync, 'fsync', ['per_commit', 'group'] as const, 'per_commit');
  const durability = oneOf(v.durability, 'durability', ['local', 'quorum'] as const, 'local');
  const { seeds, listen, announce } = p2pAddresses(v);
  const clusterKey = typeof v['cluster-key'] === 'string' ? readClusterKey(v['cluster-key']) : undefined;
  const p2p = listen !== undefined || seeds.length > 0;
  if (!p2p && durability === 'quorum')
    throw new UsageError('--durability quorum needs a cluster (--listen / --seed)');
  const int = (flag: string, min?: number) => intFlag(v[flag] as string | undefined, flag, min);
  const token = typeof v['http-token'] === 'string' ? readHttpToken(v['http-token']) : undefined;
  const members = parseMembers(v.members as string | undefined, seeds.length);
  checkExposure({
    httpHost: host,
    listen,
    token,
    clusterKey,
    quorumByCount: durability === 'quorum' && members.member_ids === undefined && members.members > 1,
    insecure: v.insecure === true,
  });
  const adminPub = v['admin-pub'] as string | undefined;
  if (adminPub !== undefined && !/^[0-9a-f]{64}$/.test(adminPub))
    throw new UsageError(
      '--admin-pub: expected 64 hex digits (the public_key `fsmesh admin-key FILE` prints)',
    );
  const allowedHosts =
    typeof v['http-allowed-hosts'] === 'string' ? v['http-allowed-hosts'].split(',') : undefined;
  const trace = parseTrace(v.trace as string | undefined);
  const query_sample_ratio = parseSampleRatio(v['trace-sample-ratio'], trace);
  const { transfer, computeThreads, engine } = resourceFlags(v, int);
  const node: NodeConfig = {
    data_dir: dir,
    node_name: (v.name as string | undefined) ?? `node-${port}`,
    shard: v.shard as string | undefined,
    role,
    fsync,
    group_commit_ms: int('group-commit-ms'),
    build: {
      ...(v['batch-max-commits'] ? { batch_max_commits: int('batch-max-commits', 1) } : {}),
      ...(v['build-interval-ms'] ? { build_interval_ms: int('build-interval-ms') } : {}),
    },
    scrub_interval_ms: int('scrub-interval-ms') ?? NODE_DEFAULTS.cli_scrub_interval_ms,
    first_scrub_delay_ms: int('first-scrub-delay-ms'),
    health_policy: healthPolicyOf(int),
    engine,
  };
  const cluster: ClusterServiceConfig | undefined = p2p
    ? {
        listen: [listen ?? '/ip4/127.0.0.1/tcp/0'],
        ...(announce.length ? { announce } : {}),
        seeds,
        cluster_key: clusterKey,
        cluster: v.cluster as string | undefined,
        role,
        durability,
        ...members,
        trusted_writer: v['trusted-writer'] as string | undefined,
        fetch_peers: int('fetch-peers', 1),
        ...transfer,
        max_replica_lag_commits: int('max-replica-lag-commits', 0),
        route_lag_commits: int('route-lag-commits', 0),
        admin_pub: adminPub,
        replication: oneOf(v.replication, 'replication', ['artifacts', 'commits'] as const, 'artifacts'),
        onProgress: v.quiet || !process.stderr.isTTY ? undefined : bootstrapProgressBar(),
      }
    : undefined;
  const security = { token, allowed_hosts: allowedHosts?.map((h) => h.trim().toLowerCase()) };
  return {
    sharded: shardFlags(v, p2p),
    dir,
    trace,
    query_sample_ratio,
    compose: { node, cluster, http: { host, port, security } },
    compute_threads: computeThreads,
  };
}

/** `--seed`, `--listen`, `--announce`: multiaddrs checked by shape, each error naming its flag. */
function p2pAddresses(v: Flags): { seeds: string[]; listen: string | undefined; announce: string[] } {
  const seeds = (v.seed as string[] | undefined) ?? [];
  for (const s of seeds)
    if (!/^\/ip[46]\/[^/]+\/tcp\/\d+\/p2p\/\w+$/.test(s))
      throw new UsageError(`--seed: expected /ip4/HOST/tcp/PORT/p2p/PEER_ID, got ${JSON.stringify(s)}`);
  const listen = v.listen as string | undefined;
  if (listen !== undefined && !/^\/ip[46]\/[^/]+\/tcp\/\d+$/.test(listen))
    throw new UsageError(`--listen: expected /ip4/HOST/tcp/PORT, got ${JSON.stringify(listen)}`);
  const announce = (v.announce as string[] | undefined) ?? [];
  for (const a of announce)
    if (!/^\/ip[46]\/[^/]+\/tcp\/\d+$/.test(a))
      throw new UsageError(`--announce: expected /ip4/HOST/tcp/PORT, got ${JSON.stringify(a)}`);
  if (announce.length > 0 && listen === undefined)
    throw new UsageError('--announce needs --listen (the address the node really binds)');
  return { seeds, listen, announce };
}

/**
 * `--compute-threads N`, `--serve-rate-limit MB/s`, `--no-bulk-lane`, `--bulk-lane-port N`,
 * `--reader-cache-mb N`, `--postings-cache-mb N`: what the node may use of the machine and its network.
 */
function resourceFlags(v: Flags, int: (flag: string, min?: number) => number | undefined) {
  // Default: a thread per core but one, which the main loop keeps for queries and HTTP.
  const computeThreads = int('compute-threads') ?? Math.max(1, availableParallelism() - 1);
  if (computeThreads > 256) throw new UsageError(`--compute-threads: at most 256, got ${computeThreads}`);
  const cacheMb = int('reader-cache-mb');
  const postingsMb = int('postings-cache-mb');
  const lanePort = int('bulk-lane-port');
  if (lanePort !== undefined && lanePort > 65_535)
    throw new UsageError(`--bulk-lane-port: a TCP port is at most 65535, got ${lanePort}`);
  return {
    computeThreads,
    transfer: {
      serve_rate_limit_bytes_per_s: serveRateOf(v['serve-rate-limit']),
      ...(v['no-bulk-lane'] ? { bulk_lane: false } : {}),
      ...(lanePort !== undefined ? { bulk_lane_port: lanePort } : {}),
    },
    engine: {
      ...(cacheMb === undefined ? {} : { reader_cache_bytes: cacheMb * 2 ** 20 }),
      ...(postingsMb === undefined ? {} : { postings_cache_bytes: postingsMb * 2 ** 20 }),
    },
  };
}

/** `--serve-rate-limit MB/s` (decimal megabytes per second) as bytes/s. */
function serveRateOf(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const mb = typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : Number.NaN;
  if (!(mb > 0) || mb > 100_000)
    throw new UsageError(
      `--serve-rate-limit: expected megabytes per second (e.g. 10 or 2.5), got ${JSON.stringify(v)}`,
    );
  return Math.round(mb * 1e6);
}

/** `--degraded-probe-interval-ms`, `--max-activation-failures`: only what was given. */
function healthPolicyOf(int: (flag: string, min?: number) => number | undefined) {
  const probe = int('degraded-probe-interval-ms');
  const failures = int('max-activation-failures', 1);
  return {
    ...(probe !== undefined ? { degraded_probe_interval_ms: probe } : {}),
    ...(failures !== undefined ? { max_activation_failures: failures } : {}),
  };
}

export async function cmdNode(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'id') return cmdNodeId(rest);
  if (sub !== 'start') throw new UsageError(`usage: ${NODE_START_USAGE}\n       ${NODE_ID_USAGE}`);
  const a = parse(rest, NODE_START_FLAGS, NODE_START_USAGE);
  const plan = planNodeStart(a.values as Flags);
  // The semantic quality tier (the same vectors on every node: builds must be reproducible).
  if (a.values.semantic)
    plan.compose.node.engine = { ...plan.compose.node.engine, quality_embedder: await semanticEmbedder() };
  const failpoints = parseFailpointSpec(process.env.FSMESH_FAILPOINTS);
  fs.mkdirSync(plan.dir, { recursive: true });
  const { configureTracing } = await import('../obs/tracing.ts');
  const tracing = await configureTracing(plan.trace, { query_sample_ratio: plan.query_sample_ratio });
  // Builds and repair encoding run on worker threads: queries never wait for them.
  const compute =
    plan.compute_threads > 0
      ? (await import('../engine/compute-pool.ts')).workerCompute({ threads: plan.compute_threads })
      : undefined;
  if (compute) plan.compose.node.runtime = { ...plan.compose.node.runtime, compute };
  if (plan.sharded) {
    await runShardedNode(plan, plan.sharded, a.values.quiet === true);
    await compute?.close();
    await tracing.shutdown();
    return 0;
  }
  const { node, cluster, http, stop } = await composeNode(plan.compose);
  const { activation: failpoint, build_perturb: perturb } = failpoints;
  if (failpoint || perturb)
    process.stderr.write(
      `fsmesh: FSMESH_FAILPOINTS is set: ${process.env.FSMESH_FAILPOINTS} (chaos testing only)\n`,
    );
  if (failpoint)
    node.engine.gate.injectFault(failpoint.stage, 'FSMESH_FAILPOINTS', failpoint.times, failpoint.skip);
  if (perturb) node.engine.perturbBuilds(perturb.times, perturb.skip);
  if (!a.values.quiet) {
    const log = pino({ base: undefined, timestamp: false, messageKey: 'msg' });
    // Events from start-up (log recovery at open, cluster start) first, then live ones.
    for (const e of node.events.recent) log.info(e);
    node.events.on((e) => log.info(e));
  }
  const p2p = cluster ? { peer_id: cluster.transport.peerId, multiaddrs: cluster.status().multiaddrs } : {};
  process.stdout.write(
    `${JSON.stringify({ ready: true, node: node.name, http: http!.url, data: plan.dir, role: plan.compose.node.role, pid: process.pid, ...p2p })}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await stop();
  await compute?.close();
  await tracing.shutdown();
  process.stdout.write(`${JSON.stringify({ stopped: true, node: node.name })}\n`);
  return 0;
}

/** Bootstrap / catch-up fetch progress as a bar on a terminal (nothing when stderr is not one). */
function bootstrapProgressBar(): (p: BootstrapProgress) => void {
  let bar: Progress | null = null;
  return (p) => {
    if (p.phase === 'done') {
      bar?.update(p.objects_done, p.objects_total, 'done');
      bar?.stop();
      bar = null;
      return;
    }
    bar ??= ttyProgress('fetch', p.objects_total);
    bar.update(
      p.objects_done,
      p.objects_total,
      `${(p.bytes / 1048576).toFixed(1)} MiB from ${p.peers} peer(s)`,
    );
  };
}
