/**
 * `fsmesh node start --data DIR --http 127.0.0.1:PORT [...]`: run one node until SIGINT/SIGTERM.
 * Prints one JSON line `{"ready":true,...}` when serving; node events go to stdout as JSON lines
 * (pino) unless `--quiet`. Shutdown finishes in-flight requests, fsyncs and closes.
 */
import * as fs from 'node:fs';
import pino from 'pino';
import { startHttpServer } from '../http/server.ts';
import { createNode } from '../node.ts';
import { intFlag, parse, requireFlag, UsageError } from './args.ts';

export const NODE_START_USAGE =
  'fsmesh node start --data DIR --http HOST:PORT [--name NAME] [--shard S] [--role writer|replica] [--fsync per_commit|group] [--group-commit-ms N] [--batch-max-commits N] [--build-interval-ms N] [--scrub-interval-ms N] [--quiet]';

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
  fs.mkdirSync(dir, { recursive: true });
  const node = await createNode({
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
    scrub_interval_ms: intFlag(a.values['scrub-interval-ms'], 'scrub-interval-ms') ?? 600_000,
  });
  if (!a.values.quiet) {
    const log = pino({ base: undefined, timestamp: false, messageKey: 'msg' });
    node.events.on((e) => log.info(e));
  }
  const http = await startHttpServer(node, { host, port });
  process.stdout.write(
    `${JSON.stringify({ ready: true, node: node.name, http: http.url, data: dir, role, pid: process.pid })}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await http.close();
  await node.stop();
  process.stdout.write(`${JSON.stringify({ stopped: true, node: node.name })}\n`);
  return 0;
}
