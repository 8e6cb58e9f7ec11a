/**
 * Services composed into a node, the way js-libp2p composes its own: each capability (the cluster,
 * a host's extension) is a factory that receives the node's components and returns the few
 * capabilities it provides. The node calls them through this interface only; no service reaches
 * into another's internals or replaces another's hooks.
 */
import type { ActivationGate } from '../engine/activation-gate.ts';
import type { LocalEngine, ReadOptions } from '../engine/local-engine.ts';
import type { NodeHealth } from '../fsm/node-health.ts';
import type { NodeEvents } from '../obs/events.ts';
import type { NodeMetrics } from '../obs/metrics.ts';
import type { Clock, Random, Storage } from '../runtime/index.ts';
import type { SearchOptions, SearchResult } from '../search/searcher.ts';
import type { AppendAck, CapsuleLog } from '../storage/capsule-log.ts';
import type { GenerationStore } from '../storage/generations.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { SymbolStore } from '../storage/symbol-store.ts';

/** What a service may use. Each service declares the subset it needs (see src/p2p/services/). */
export interface NodeComponents {
  name: string;
  shard: string;
  role: 'writer' | 'replica';
  clock: Clock;
  random: Random;
  storage: Storage;
  log: CapsuleLog;
  objects: ObjectStore;
  symbols: SymbolStore;
  generations: GenerationStore;
  gate: ActivationGate;
  /** Build a candidate and check embedder gates (capsule replay); nothing else of the engine. */
  builds: Pick<LocalEngine, 'buildCandidate' | 'checkEmbedderGate'>;
  events: NodeEvents;
  metrics: NodeMetrics;
  health: NodeHealth;
  /** Raise the highest generation known in the cluster (query skew metric). */
  noteLatestGeneration(generation_seq: number): void;
  /** Failover moved the writer role: the node's actors follow (ingest accepted or refused, builds). */
  setRole(role: 'writer' | 'replica'): void;
  /** Ask the builder to build now (a writer whose fence lifted). */
  requestBuild(): void;
  /** Serve a search here, never forwarded (a routed query arriving from a peer). */
  searchLocal(opts: SearchOptions & ReadOptions): Promise<SearchResult>;
  /** This node's state as peers see it for routing: health, draining, active commit. */
  routingState(): RoutingState;
}

export interface RoutingState {
  health: string;
  draining: boolean;
  active_commit_seq_high: number;
  generation_id: string | null;
  artifact_manifest_id: string | null;
  /** Objects this node is repairing now (at most 16): the cluster status shows repairs per member. */
  repairing: string[];
  /** Its capsule log's head (commits held, built or not). */
  commit_seq_high?: number;
  /** Queries it served per second (10 s window). */
  queries_per_s?: number;
  /** The last bootstrap / catch-up fetch progress of a replica (null when none ran yet). */
  sync_progress?: SyncProgress | null;
  /** How it replicates generations: fetched artifacts (Option B) or rebuilt commits (Option A). */
  replication?: 'artifacts' | 'commits';
}

export interface SyncProgress {
  phase: string;
  objects_done: number;
  objects_total: number;
  bytes: number;
  peers: number;
}

export interface NodeService {
  readonly name: string;
  /** After the actors run; a failure fails node creation. */
  start?(): Promise<void>;
  /** Called first when the node stops; detaches synchronously before its first await. */
  stop?(): Promise<void>;
  /** False while this node must not build or activate (a fenced writer). */
  buildAllowed?(): boolean;
  /** Backpressure: throw (busy) to refuse a write before it is committed. */
  admitWrite?(): void;
  /** Durability (§6): awaited after each local commit before the write is acknowledged. */
  awaitDurable?(ack: AppendAck): Promise<void>;
  /** Peer repair (§8.1): restore an object from elsewhere; true when restored. */
  fetchObject?(objectId: string): Promise<boolean>;
  /** Fields merged into the node's `/v1/status`. */
  status?(): Record<string, unknown>;
  /** Readiness (replicas): the writer confirmed that no generation exists yet (an empty cluster). */
  confirmsEmptyCluster?(): boolean;
  /**
   * Health-based routing (§12 Phase 2): answer the query on a better member, or null to serve it
   * here. The answer still comes from exactly one generation, on exactly one node.
   */
  routeSearch?(opts: SearchOptions & ReadOptions, local: RoutingState): Promise<RoutedResult | null>;
  /** Who serves locally, as peers know this node (its peer id). */
  selfId?(): string;
  /** Failover, step 1: collect a majority's commits; what the admin key must sign. */
  preparePromotion?(ticket: unknown): Promise<unknown>;
  /** Failover, step 2: install an admin-signed handover naming this node. */
  promote?(signed: unknown): Promise<unknown>;
}

export type ServiceFactory = (components: NodeComponents) => NodeService;

export type RoutedResult = SearchResult & { served_by: string };
