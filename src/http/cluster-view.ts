/**
 * `GET /v1/cluster` (docs/http.md): every member this node knows — itself from its own status,
 * the others as their last head answers told it (attributed to the authenticated peer; shown, not
 * trusted) — in one table: role, health, lag in commits, active generation, commit_seq_high,
 * served queries per second, repairs and fetch progress.
 */
import type { FsmeshNode } from '../node/index.ts';
import type { RoutingState } from '../node/services.ts';

export interface ClusterMember {
  peer_id: string;
  name: string | null;
  self: boolean;
  role: 'writer' | 'replica';
  health: string;
  draining: boolean;
  generation_id: string | null;
  artifact_manifest_id: string | null;
  active_commit_seq_high: number;
  commit_seq_high: number | null;
  /** The writer's commit head minus this member's active generation's (what lags reads). */
  lag_commits: number | null;
  queries_per_s: number;
  repairing: number;
  sync_progress: unknown;
  /** Option B (`artifacts`) or Option A (`commits`), for replicas. */
  replication: 'artifacts' | 'commits';
  /** How old the information is (0 for this node itself). */
  age_ms: number;
}

export interface ClusterView {
  self: string;
  shard: string;
  writer: string | null;
  writer_commit_seq_high: number | null;
  epoch: number;
  members: ClusterMember[];
  /** A multi-shard node (docs/sharding.md): the shard count and each shard's own view. */
  shard_count?: number;
  shards?: Record<string, ClusterView>;
}

/** What the router keeps of each peer's head answer (query-router.ts `members()`). */
type PeerInfo = RoutingState & { writer: string | null; age_ms: number };

export function clusterView(node: FsmeshNode): ClusterView {
  const s = node.status();
  const c = node.serviceStatus() as Record<string, unknown>;
  const selfId = typeof c.peer_id === 'string' ? c.peer_id : s.node;
  const writer =
    typeof c.trusted_writer === 'string' ? c.trusted_writer : s.role === 'writer' ? selfId : null;
  const writerHigh =
    typeof c.writer_commit_seq_high === 'number'
      ? c.writer_commit_seq_high
      : s.role === 'writer'
        ? s.commit_seq_high
        : null;
  const lag = (active: number) => (writerHigh === null ? null : Math.max(0, writerHigh - active));
  const members: ClusterMember[] = [
    {
      peer_id: selfId,
      name: s.node,
      self: true,
      role: s.role,
      health: s.health,
      draining: node.draining,
      generation_id: s.generation_id,
      artifact_manifest_id: s.artifact_manifest_id,
      active_commit_seq_high: s.active_commit_seq_high,
      commit_seq_high: s.commit_seq_high,
      lag_commits: lag(s.active_commit_seq_high),
      queries_per_s: s.queries_per_s ?? 0,
      repairing: s.repair_queue.under_repair.length,
      sync_progress: c.sync_progress ?? null,
      replication: c.replication === 'commits' ? 'commits' : 'artifacts',
      age_ms: 0,
    },
  ];
  const peers = (c.members ?? {}) as Record<string, PeerInfo>;
  for (const [peer, p] of Object.entries(peers))
    members.push({
      peer_id: peer,
      name: null,
      self: false,
      role: p.writer === peer || peer === writer ? 'writer' : 'replica',
      health: p.health,
      draining: p.draining,
      generation_id: p.generation_id,
      artifact_manifest_id: p.artifact_manifest_id,
      active_commit_seq_high: p.active_commit_seq_high,
      commit_seq_high: p.commit_seq_high ?? null,
      lag_commits: lag(p.active_commit_seq_high),
      queries_per_s: p.queries_per_s ?? 0,
      repairing: p.repairing.length,
      sync_progress: p.sync_progress ?? null,
      replication: p.replication ?? 'artifacts',
      age_ms: p.age_ms,
    });
  return {
    self: selfId,
    shard: s.shard,
    writer,
    writer_commit_seq_high: writerHigh,
    epoch: typeof c.epoch === 'number' ? c.epoch : 0,
    members,
  };
}
