/** The node's `/v1/status` body (the local part; services add theirs). */
import type { BoundedRef } from '../actors/mailbox.ts';
import type { CrashReport } from '../actors/supervision.ts';
import type { LocalEngine } from '../engine/local-engine.ts';
import type { NodeHealth } from '../fsm/node-health.ts';
import type { RepairQueue } from '../storage/repair-queue.ts';

export interface NodeStatus {
  node: string;
  shard: string;
  role: 'writer' | 'replica';
  health: string;
  health_reason: string | null;
  /** Consecutive failed activations (the health machine degrades at its threshold). */
  activation_failures: number;
  generation_id: string | null;
  generation_seq: number | null;
  artifact_manifest_id: string | null;
  commit_seq_high: number;
  active_commit_seq_high: number;
  lag_commits: number;
  retained_generations: number;
  mailboxes: Record<string, { inflight: number; bound: number; rejected: number }>;
  repair_queue: ReturnType<RepairQueue['stats']>;
  /** Objects whose repair symbols are still being encoded in the background (after a fetch). */
  repair_symbols_pending: number;
  crashes: CrashReport[];
  /** Queries this node served per second (10 s window). */
  queries_per_s?: number;
}

export function buildNodeStatus(
  n: {
    name: string;
    shard: string;
    role: 'writer' | 'replica';
    engine: LocalEngine;
    health: NodeHealth;
    repairQueue: RepairQueue;
    crashes: CrashReport[];
  },
  mailboxes: BoundedRef<any>[],
): NodeStatus {
  const a = n.engine.generations.active;
  const log = n.engine.log;
  return {
    node: n.name,
    shard: n.shard,
    role: n.role,
    health: n.health.state(),
    health_reason: n.health.context().reason,
    activation_failures: n.health.context().activation_failures,
    generation_id: a?.generation_id ?? null,
    generation_seq: a?.generation_seq ?? null,
    artifact_manifest_id: a?.artifact_manifest_id ?? null,
    commit_seq_high: log.commitSeqHigh,
    active_commit_seq_high: a?.commit_seq_high ?? 0,
    lag_commits: log.commitSeqHigh - (a?.commit_seq_high ?? 0),
    retained_generations: n.engine.generations.retained.length,
    repair_symbols_pending: n.engine.symbols.background_pending,
    mailboxes: Object.fromEntries(
      mailboxes.map((b) => [b.name, { inflight: b.inflight, bound: b.bound, rejected: b.rejected }]),
    ),
    repair_queue: n.repairQueue.stats(),
    crashes: [...n.crashes],
  };
}
