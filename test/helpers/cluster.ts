/** Start real 3-node clusters (separate processes, libp2p over TCP on 127.0.0.1) for e2e tests. */
import * as path from 'node:path';
import { freePort, http, type NodeProc, startNodeProc, waitFor } from './proc.ts';

export interface ClusterProcs {
  writer: NodeProc;
  replicas: NodeProc[];
  dirs: string[];
  writerAddr: string;
  httpPorts: number[];
  p2pPorts: number[];
}

export async function startReplica(
  dir: string,
  httpPort: number,
  p2pPort: number,
  seeds: string[],
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<NodeProc> {
  return startNodeProc(
    [
      '--data',
      dir,
      '--http',
      `127.0.0.1:${httpPort}`,
      '--listen',
      `/ip4/127.0.0.1/tcp/${p2pPort}`,
      '--role',
      'replica',
      ...seeds.flatMap((s) => ['--seed', s]),
      ...extra,
    ],
    30_000,
    env,
  );
}

export async function startCluster(
  root: string,
  opts: {
    replicas?: number;
    writerArgs?: string[];
    replicaArgs?: string[];
    /** Environment of the replicas (e.g. FSMESH_FAILPOINTS). */
    replicaEnv?: Record<string, string>;
  } = {},
): Promise<ClusterProcs> {
  const n = opts.replicas ?? 2;
  // Ports below the kernel's ephemeral range (freeLoopbackPort): a concurrent test's port-0 bind can
  // never take them — not before the node binds them, nor while it is down for a restart on the
  // same address (a port 0 the kernel gave once can be handed to another process meanwhile; seen
  // as a rare failed restart in the failover test).
  const dirs = Array.from({ length: n + 1 }, (_, i) => path.join(root, `node-${i}`));
  const writer = await startNodeProc([
    '--data',
    dirs[0],
    '--http',
    `127.0.0.1:${await freePort()}`,
    '--listen',
    `/ip4/127.0.0.1/tcp/${await freePort()}`,
    '--role',
    'writer',
    '--build-interval-ms',
    '30',
    '--members',
    String(n + 1),
    ...(opts.writerArgs ?? []),
  ]);
  const writerAddr = (writer.ready.multiaddrs as string[])[0];
  const replicas = await Promise.all(
    Array.from({ length: n }, async (_, i) =>
      startReplica(
        dirs[i + 1],
        await freePort(),
        await freePort(),
        [writerAddr],
        opts.replicaArgs,
        opts.replicaEnv,
      ),
    ),
  );
  const procs = [writer, ...replicas];
  return {
    writer,
    replicas,
    dirs,
    writerAddr,
    httpPorts: procs.map(httpPortOf),
    p2pPorts: procs.map(p2pPortOf),
  };
}

/** The HTTP port a started node bound. */
export function httpPortOf(p: NodeProc): number {
  return Number(new URL(p.url).port);
}

/** The TCP port of a started node's first libp2p address. */
export function p2pPortOf(p: NodeProc): number {
  const m = /\/tcp\/(\d+)/.exec(((p.ready.multiaddrs as string[]) ?? [])[0] ?? '');
  if (!m) throw new Error(`no TCP address in ${JSON.stringify(p.ready.multiaddrs)}`);
  return Number(m[1]);
}

/** Start the cluster's writer again on its data dir and addresses (after a kill). */
export function restartWriter(c: ClusterProcs, extra: string[]): Promise<NodeProc> {
  return startNodeProc([
    '--data',
    c.dirs[0],
    '--http',
    `127.0.0.1:${c.httpPorts[0]}`,
    '--listen',
    `/ip4/127.0.0.1/tcp/${c.p2pPorts[0]}`,
    '--role',
    'writer',
    ...extra,
  ]);
}

/** Wait until the node at `url` has a generation covering `minCommit` active; its status then. */
export async function activeAt(url: string, minCommit: number, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const s = (await http('GET', `${url}/v1/status`)).json;
      return s.active_commit_seq_high >= minCommit ? s : null;
    },
    timeoutMs,
    `${url} to activate commit_seq ${minCommit}`,
  );
}

export async function status(p: NodeProc) {
  return (await http('GET', `${p.url}/v1/status`)).json;
}

export async function waitForManifest(p: NodeProc, manifestId: string, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const s = await status(p);
      return s?.artifact_manifest_id === manifestId ? s : null;
    },
    timeoutMs,
    `node ${p.url} to activate ${manifestId.slice(0, 12)}`,
  );
}

export async function stopAll(c: { writer: NodeProc; replicas: NodeProc[] }) {
  await Promise.all([c.writer, ...c.replicas].map((p) => p.kill('SIGTERM')));
}
