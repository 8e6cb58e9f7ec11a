/**
 * The status of a multi-shard node (`/v1/status`, `fsmesh status`; docs/sharding.md): per shard
 * carried here its role, trusted writer, members, health, active generation and lag, and the
 * failover epochs; per shard only followed, its writer and the newest signed generation heard of.
 */
import { shardName } from '../core/sharding.ts';
import type { LocalShard, RemoteShard } from './shard-handles.ts';

/** Healths in which a shard answers reads. */
export const SERVING = new Set(['healthy', 'catching_up']);

function carriedStatus(l: LocalShard): Record<string, unknown> {
  const s = l.node.status();
  const c = l.cluster.status() as Record<string, unknown>;
  return {
    role: s.role,
    writer: c.trusted_writer ?? null,
    members: Object.keys((c.members as Record<string, unknown>) ?? {}),
    health: s.health,
    generation_id: s.generation_id,
    active_commit_seq_high: s.active_commit_seq_high,
    commit_seq_high: s.commit_seq_high,
    writer_commit_seq_high: c.writer_commit_seq_high ?? null,
    lag_commits: c.lag_commits ?? s.lag_commits,
    // Failover per shard (`fsmesh promote --shard K` reads these).
    epoch: c.epoch ?? 0,
    promised_epoch: c.promised_epoch ?? 0,
  };
}

export function shardSetStatus(
  set: { shards: number; writer_of: number | null },
  local: LocalShard[],
  remote: RemoteShard[],
  servedBy: ReadonlyMap<number, string>,
): Record<string, unknown> {
  const shards: Record<string, Record<string, unknown>> = {};
  for (const l of local) shards[shardName(l.shard)] = carriedStatus(l);
  const healths = local.map((l) => shards[shardName(l.shard)].health as string);
  // Shards not carried here: who writes them and the newest generation heard of (signed).
  for (const r of remote) {
    const latest = r.trust.latest();
    shards[shardName(r.shard)] = {
      role: 'not_carried',
      writer: r.trust.writer(),
      generation_id: latest?.generation_id ?? null,
      writer_commit_seq_high: latest?.commit_seq_high ?? null,
      served_by: servedBy.get(r.shard) ?? null,
    };
  }
  return {
    shard_count: set.shards,
    writer_of: set.writer_of,
    // Failover may have moved writes here or away since start: the shards' roles say.
    role: local.some((l) => shards[shardName(l.shard)].role === 'writer') ? 'writer' : 'replica',
    health:
      healths.find((h) => !SERVING.has(h)) ??
      (healths.every((h) => h === 'healthy') ? 'healthy' : 'catching_up'),
    shards: Object.fromEntries(Object.entries(shards).sort((a, b) => Number(a[0]) - Number(b[0]))),
  };
}
