/** Three real `fsmesh node start --shards 3` processes, node i the writer of shard i, each seeding the others. */
import assert from 'node:assert/strict';
import { freePort, http, type NodeProc, startNodeProc, waitFor } from './proc.ts';
import { cli, tmpDir } from './tmp.ts';

export async function startShardedCluster(procs: NodeProc[], extra: string[] = []): Promise<NodeProc[]> {
  const dirs = [0, 1, 2].map(() => tmpDir('fsmesh-shards-'));
  const ids = dirs.map((d) => {
    const r = cli(['node', 'id', '--data', d]);
    assert.equal(r.code, 0, r.stderr);
    return r.json.peer_id as string;
  });
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  // Every node seeds the other two: each shard's writer is then trusted on first use everywhere.
  return Promise.all(
    [0, 1, 2].map(async (i) => {
      const seeds = [0, 1, 2]
        .filter((j) => j !== i)
        .flatMap((j) => ['--seed', `/ip4/127.0.0.1/tcp/${ports[j]}/p2p/${ids[j]}`]);
      const p = await startNodeProc([
        '--data',
        dirs[i],
        '--http',
        `127.0.0.1:${await freePort()}`,
        '--listen',
        `/ip4/127.0.0.1/tcp/${ports[i]}`,
        ...seeds,
        '--shards',
        '3',
        '--writer-of',
        String(i),
        '--build-interval-ms',
        '100',
        '--compute-threads',
        '0',
        ...extra,
      ]);
      procs.push(p);
      return p;
    }),
  );
}

/** Writers learn each other through the seeds: wait until each node knows every shard's writer. */
export async function waitShardWriters(nodes: NodeProc[]): Promise<void> {
  for (const n of nodes)
    await waitFor(
      async () => {
        const s = (await http('GET', `${n.url}/v1/status`)).json;
        return Object.values(s.shards).every((x: any) => typeof x.writer === 'string');
      },
      30_000,
      'every shard writer known',
    );
}

/** A fourth node of the same collection that carries only `shards` (`--replicate-shards`), seeded with `nodes`. */
export async function startNarrowNode(
  procs: NodeProc[],
  nodes: NodeProc[],
  shards: string,
  extra: string[] = [],
): Promise<NodeProc> {
  const p = await startNodeProc([
    '--data',
    tmpDir('fsmesh-narrow-'),
    '--http',
    `127.0.0.1:${await freePort()}`,
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    ...nodes.flatMap((n) => ['--seed', (n.ready.multiaddrs as string[])[0]]),
    '--shards',
    '3',
    '--replicate-shards',
    shards,
    '--compute-threads',
    '0',
    ...extra,
  ]);
  procs.push(p);
  return p;
}
