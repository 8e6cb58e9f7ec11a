/** What a node offers its host (library users, the HTTP API, the cluster service). */
import type { Ref } from 'nact';
import type { BuildOutcome } from '../actors/builder-actor.ts';
import type { DocOp } from '../core/capsule.ts';
import type { LocalEngine, ReadOptions } from '../engine/local-engine.ts';
import type { NodeHealth } from '../fsm/node-health.ts';
import type { NodeEvents } from '../obs/events.ts';
import type { NodeMetrics } from '../obs/metrics.ts';
import type { SearchOptions, SearchResult } from '../search/searcher.ts';
import type { AppendAck } from '../storage/capsule-log.ts';
import type { GenerationRef } from '../storage/generations.ts';
import type { DocInput } from './doc-input.ts';
import type { NodeService } from './services.ts';
import type { NodeStatus } from './status.ts';

export interface FsmeshNode {
  readonly name: string;
  readonly engine: LocalEngine;
  readonly events: NodeEvents;
  readonly metrics: NodeMetrics;
  ingest(docs: DocInput[], opts?: { idempotency_key?: string }): Promise<AppendAck>;
  ingestOps(ops: DocOp[], opts?: { idempotency_key?: string }): Promise<AppendAck>;
  delete(docId: string): Promise<AppendAck>;
  /**
   * One generation, on one node: `served_by` names it (its peer id in a cluster). `route: 'local'`
   * never forwards; the default may route to a healthier member (§12 Phase 2).
   */
  search(
    opts: SearchOptions & ReadOptions & { route?: 'auto' | 'local' },
  ): Promise<SearchResult & { served_by: string }>;
  status(): NodeStatus;
  /** Status fields of the composed services (the cluster's peers, trust, durability ...). */
  serviceStatus(): Record<string, unknown>;
  /**
   * Can this node serve its role (`/readyz`)? A writer: its log is open and its actors run. A
   * replica: it has an active generation, or the writer confirmed none exists yet. Not while draining.
   */
  readiness(): { ready: boolean; reason: string | null };
  /** Failover (docs/protocols.md §failover): delegated to the cluster service. */
  /** Failover step 1, with the admin-signed prepare ticket (docs/protocols.md). */
  preparePromotion(ticket: unknown): Promise<unknown>;
  promote(signed: unknown): Promise<unknown>;
  /** Draining: reads are routed away and a draining writer refuses writes (`/v1/admin/drain`). */
  setDraining(draining: boolean): void;
  readonly draining: boolean;
  generations(): GenerationRef[];
  /** Build and activate now (writer), instead of waiting for the batch trigger. */
  buildNow(): Promise<BuildOutcome>;
  scrub(): Promise<unknown>;
  requestRepair(objectId: string): Promise<unknown>;
  /** Test hook: crash an actor with an injected fault (it is restarted by its supervisor). */
  injectFault(actor: 'ingest' | 'builder' | 'repair' | 'query'): void;
  /** Test hook: make the next activation fail after verification (exercises §14 revert). */
  failNextActivation(reason: string): Promise<void>;
  /** Raise the highest generation known in the cluster (p2p), for skew metrics. */
  noteLatestGeneration(seq: number): void;
  readonly health: NodeHealth;
  /** The composed services, by name. */
  readonly services: ReadonlyMap<string, NodeService>;
  /** The node's actor tree root (for a host that wants to watch or stop it). */
  readonly supervisor: Ref<any>;
  stop(): Promise<void>;
}
