/**
 * The multi-shard side of `fsmesh node` (docs/sharding.md): `--shards S --writer-of K` checked,
 * the sharded node run until a signal, and `fsmesh node id` to plan seeds before any node starts.
 */
import * as fs from 'node:fs';
import pino from 'pino';
import type { ComposeOptions } from '../compose/compose-node.ts';
import { MAX_SHARDS } from '../core/sharding.ts';
import { nodeFsStorage } from '../runtime/index.ts';
import { intFlag, parse, requireFlag, UsageError } from './args.ts';

type Flags = Record<string, string | string[] | boolean | undefined>;

/** The multi-shard count and the shard written here (`--shards S --writer-of K`). */
export type ShardedPlan = { shards: number; writer_of: number | null; replicate?: number[] };

/**
 * `--shards S [--writer-of K] [--replicate-shards LIST]` (docs/sharding.md). Flags that name one
 * shard's writer or role do not apply to a multi-shard node and are refused by name.
 */
export function shardFlags(v: Flags, p2p: boolean): ShardedPlan | null {
  const int = (flag: string, min?: number) => intFlag(v[flag] as string | undefined, flag, min);
  const shards = int('shards', 1);
  if (shards === undefined || shards === 1) {
    for (const f of ['writer-of', 'replicate-shards'])
      if (v[f] !== undefined) throw new UsageError(`--${f} needs --shards S (2 or more)`);
    return null;
  }
  if (shards > MAX_SHARDS) throw new UsageError(`--shards: at most ${MAX_SHARDS}, got ${shards}`);
  if (!p2p)
    throw new UsageError('--shards needs a cluster (--listen / --seed): shards replicate peer to peer');
  for (const f of ['role', 'shard', 'trusted-writer'])
    if (v[f] !== undefined)
      throw new UsageError(
        `--${f} does not apply with --shards: use --writer-of K for the shard this node writes (writers are trusted per shard, on first use from the seeds)`,
      );
  const w = int('writer-of', 0);
  if (w !== undefined && w >= shards)
    throw new UsageError(`--writer-of: a shard number from 0 to ${shards - 1}, got ${w}`);
  const list = v['replicate-shards'] as string | undefined;
  let replicate: number[] | undefined;
  if (list !== undefined) {
    // `--replicate-shards ''` (none): a node that carries only the shard it writes.
    replicate =
      list === ''
        ? []
        : list.split(',').map((x) => {
            const t = x.trim();
            if (!/^\d{1,2}$/.test(t) || Number(t) >= shards)
              throw new UsageError(
                `--replicate-shards: shard numbers from 0 to ${shards - 1}, comma-separated, got ${JSON.stringify(x)}`,
              );
            return Number(t);
          });
    if (replicate.length === 0 && w === undefined)
      throw new UsageError(
        '--replicate-shards: a node carries at least one shard (replicate one, or --writer-of K)',
      );
  }
  return { shards, writer_of: w ?? null, ...(replicate ? { replicate } : {}) };
}

export const NODE_ID_USAGE = 'fsmesh node id --data DIR';

/**
 * `fsmesh node id --data DIR`: the node's peer id (its key is created on first use), so seeds can
 * be planned before any node starts — a multi-shard cluster trusts each shard's writer on first
 * use only from the seeds (docs/sharding.md).
 */
export async function cmdNodeId(argv: string[]): Promise<number> {
  const a = parse(argv, { data: { type: 'string' } }, NODE_ID_USAGE);
  const dir = requireFlag(a.values.data as string | undefined, 'data', NODE_ID_USAGE);
  fs.mkdirSync(dir, { recursive: true });
  const { loadOrCreateIdentity } = await import('../p2p/identity.ts');
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
  const key = await loadOrCreateIdentity(nodeFsStorage(dir));
  process.stdout.write(`${JSON.stringify({ peer_id: peerIdFromPrivateKey(key).toString(), data: dir })}\n`);
  return 0;
}

/** A multi-shard node (docs/sharding.md): every shard's node over one host, until a signal. */
export async function runShardedNode(
  plan: { dir: string; compose: ComposeOptions },
  sharded: ShardedPlan,
  quiet: boolean,
): Promise<void> {
  const { composeShardedNode } = await import('../compose/compose-sharded-node.ts');
  const n = await composeShardedNode({
    ...sharded,
    node: plan.compose.node,
    cluster: plan.compose.cluster!,
    http: plan.compose.http,
  });
  if (!quiet) {
    const log = pino({ base: undefined, timestamp: false, messageKey: 'msg' });
    for (const c of n.shards) {
      for (const e of c.node.events.recent) log.info(e);
      c.node.events.on((e) => log.info(e));
    }
  }
  const name = n.shards[0].node.name;
  process.stdout.write(
    `${JSON.stringify({ ready: true, node: name, http: n.http!.url, data: plan.dir, shards: sharded.shards, writer_of: sharded.writer_of, role: sharded.writer_of === null ? 'replica' : 'writer', pid: process.pid, peer_id: n.peer_id, multiaddrs: n.multiaddrs() })}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await n.stop();
  process.stdout.write(`${JSON.stringify({ stopped: true, node: name })}\n`);
}
