/** What the node's actors share: the engine, the machines and the observability sinks. */
import type { LocalEngine } from '../engine/local-engine.ts';
import type { NodeHealth } from '../fsm/node-health.ts';
import type { NodeEvents } from '../obs/events.ts';
import type { NodeMetrics } from '../obs/metrics.ts';
import type { Clock } from '../runtime/index.ts';
import type { BoundedRef } from './mailbox.ts';

export interface BuildPolicy {
  /** Build as soon as this many commits are waiting. */
  batch_max_commits: number;
  /** Otherwise build this long after the first waiting commit. */
  build_interval_ms: number;
}

export interface ActorDeps {
  engine: LocalEngine;
  clock: Clock;
  events: NodeEvents;
  metrics: NodeMetrics;
  health: NodeHealth;
  build: BuildPolicy;
  /** Replicas do not build: generations come from the writer (p2p). */
  role: 'writer' | 'replica';
  scrub_interval_ms: number;
  scrub_bytes_per_s: number;
  /** The first scrub after start (when scrub_interval_ms > 0): min(this, scrub_interval_ms). */
  first_scrub_delay_ms: number;
  /** Set by the node: lets actors notify each other. */
  refs: {
    ingest?: BoundedRef<any>;
    builder?: BoundedRef<any>;
    repair?: BoundedRef<any>;
    query?: BoundedRef<any>;
  };
  /** Set by the p2p layer: awaited after a local commit before acknowledging (quorum durability). */
  hooks: NodeHooks;
  /** Highest generation_seq known in the cluster (query skew); the p2p layer raises it. */
  latest_known_generation_seq: () => number;
}

export interface NodeHooks {
  /** False while builds must wait (a restarted writer confirming its epoch with the cluster). */
  buildAllowed?: () => boolean;
  afterLocalCommit?: (ack: import('../storage/capsule-log.ts').AppendAck) => Promise<void>;
  fetchFromPeers?: (objectId: string) => Promise<boolean>;
}
