/**
 * One fsmesh node: a LocalEngine driven by supervised nact actors (ingest, builder, repair,
 * query), the generation-lifecycle and node-health xstate machines, and the observability sinks.
 * `createNode(config)` validates the config, opens the data directory and starts the actors —
 * under a fresh nact system, or under a host application's own actor (`actor_parent`).
 */

import * as path from 'node:path';
import { type Ref, spawnStateless, start as startSystem, stop as stopActor } from 'nact';
import { type BuilderMsg, type BuildOutcome, spawnBuilderActor } from './actors/builder-actor.ts';
import type { ActorDeps, BuildPolicy, NodeHooks } from './actors/context.ts';
import { type IngestMsg, spawnIngestActor } from './actors/ingest-actor.ts';
import { BoundedRef } from './actors/mailbox.ts';
import { type QueryMsg, spawnQueryActor } from './actors/query-actor.ts';
import {
  createRepairQueue,
  type RepairHooks,
  type RepairMsg,
  spawnRepairActor,
} from './actors/repair-actor.ts';
import {
  type CrashReport,
  DEFAULT_RESTART_POLICY,
  type RestartPolicy,
  restartPolicy,
} from './actors/supervision.ts';
import type { DocOp } from './core/capsule.ts';
import { docToOp } from './core/docs-input.ts';
import { FsmeshError } from './core/errors.ts';
import {
  defaultEngineConfig,
  type EngineConfig,
  LocalEngine,
  type ReadOptions,
} from './engine/local-engine.ts';
import {
  DEFAULT_HEALTH_POLICY,
  HEALTH_STATES,
  type HealthPolicy,
  type NodeHealth,
  startNodeHealth,
} from './fsm/node-health.ts';
import { NodeEvents } from './obs/events.ts';
import { NodeMetrics } from './obs/metrics.ts';
import {
  type Clock,
  nodeFsStorage,
  type Runtime,
  systemClock,
  systemRandom,
  type TimerHandle,
} from './runtime/index.ts';
import type { SearchOptions, SearchResult } from './search/searcher.ts';
import type { AppendAck } from './storage/capsule-log.ts';
import type { GenerationRef } from './storage/generations.ts';

export interface NodeConfig {
  /** Data directory (required unless `runtime.storage` is given). */
  data_dir?: string;
  node_name?: string;
  shard?: string;
  role?: 'writer' | 'replica';
  /** `fsync` acks each commit after its own fsync; `group` shares fsyncs within group_commit_ms. */
  fsync?: 'per_commit' | 'group';
  group_commit_ms?: number;
  build?: Partial<BuildPolicy>;
  scrub_interval_ms?: number;
  scrub_bytes_per_s?: number;
  mailbox_bound?: number;
  restart_policy?: Partial<RestartPolicy>;
  health_policy?: Partial<HealthPolicy>;
  engine?: Partial<EngineConfig>;
  /** Injected effects (the simulator passes its own). */
  runtime?: Partial<Runtime>;
  /** A host application's nact system or actor to spawn the node's actors under. */
  actor_parent?: Ref<any>;
  repair_hooks?: RepairHooks;
}

const KNOWN_KEYS = new Set<string>([
  'data_dir',
  'node_name',
  'shard',
  'role',
  'fsync',
  'group_commit_ms',
  'build',
  'scrub_interval_ms',
  'scrub_bytes_per_s',
  'mailbox_bound',
  'restart_policy',
  'health_policy',
  'engine',
  'runtime',
  'actor_parent',
  'repair_hooks',
]);

export function validateNodeConfig(c: NodeConfig): string[] {
  const p: string[] = [];
  if (typeof c !== 'object' || c === null) return ['config: must be an object'];
  for (const k of Object.keys(c)) if (!KNOWN_KEYS.has(k)) p.push(`${k}: unknown option`);
  if (c.data_dir === undefined && !c.runtime?.storage) p.push('data_dir: required (or pass runtime.storage)');
  if (c.data_dir !== undefined && (typeof c.data_dir !== 'string' || c.data_dir === ''))
    p.push('data_dir: must be a non-empty path');
  if (
    c.node_name !== undefined &&
    (typeof c.node_name !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(c.node_name))
  )
    p.push('node_name: 1-128 of [A-Za-z0-9._-]');
  if (c.shard !== undefined && (typeof c.shard !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(c.shard)))
    p.push('shard: must match [a-z0-9][a-z0-9_-]{0,63}');
  if (c.role !== undefined && c.role !== 'writer' && c.role !== 'replica')
    p.push('role: must be "writer" or "replica"');
  if (c.fsync !== undefined && c.fsync !== 'per_commit' && c.fsync !== 'group')
    p.push('fsync: must be "per_commit" or "group"');
  const nat = (v: unknown, k: string, min = 0) => {
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min))
      p.push(`${k}: must be an integer >= ${min}`);
  };
  nat(c.group_commit_ms, 'group_commit_ms');
  nat(c.scrub_interval_ms, 'scrub_interval_ms');
  nat(c.scrub_bytes_per_s, 'scrub_bytes_per_s');
  nat(c.mailbox_bound, 'mailbox_bound', 1);
  nat(c.build?.batch_max_commits, 'build.batch_max_commits', 1);
  nat(c.build?.build_interval_ms, 'build.build_interval_ms');
  return p;
}

export interface NodeStatus {
  node: string;
  shard: string;
  role: 'writer' | 'replica';
  health: string;
  health_reason: string | null;
  generation_id: string | null;
  generation_seq: number | null;
  artifact_manifest_id: string | null;
  commit_seq_high: number;
  active_commit_seq_high: number;
  lag_commits: number;
  retained_generations: number;
  mailboxes: Record<string, { inflight: number; bound: number; rejected: number }>;
  repair_queue: ReturnType<ReturnType<typeof createRepairQueue>['stats']>;
  crashes: CrashReport[];
}

export type DocInput = {
  id: string;
  text?: string;
  title?: string;
  fields?: Record<string, unknown>;
  delete?: true;
};

export interface FsmeshNode {
  readonly name: string;
  readonly engine: LocalEngine;
  readonly events: NodeEvents;
  readonly metrics: NodeMetrics;
  ingest(docs: DocInput[], opts?: { idempotency_key?: string }): Promise<AppendAck>;
  ingestOps(ops: DocOp[], opts?: { idempotency_key?: string }): Promise<AppendAck>;
  delete(docId: string): Promise<AppendAck>;
  search(opts: SearchOptions & ReadOptions): Promise<SearchResult>;
  status(): NodeStatus;
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
  /** Hooks the p2p layer fills in (quorum acks, peer repair). */
  readonly hooks: NodeHooks;
  readonly health: NodeHealth;
  /** The node's actor tree root (for a host that wants to watch or stop it). */
  readonly supervisor: Ref<any>;
  stop(): Promise<void>;
}

/** Turn user docs into ops with per-item errors ("docs[3].text: must be a string"). */
export function docsToOps(docs: unknown): DocOp[] {
  if (!Array.isArray(docs)) throw new FsmeshError('invalid_input', 'documents: must be an array');
  if (docs.length === 0) throw new FsmeshError('invalid_input', 'documents: must not be empty');
  const ops: DocOp[] = [];
  const problems: string[] = [];
  docs.forEach((d, i) => {
    const r = docToOp(d, `docs[${i}]`);
    if (r.op) ops.push(r.op);
    else problems.push(...r.problems);
  });
  if (problems.length)
    throw new FsmeshError(
      'invalid_input',
      `${problems.length} problem(s), nothing committed: ${problems.slice(0, 20).join('; ')}`,
      { problems },
    );
  return ops;
}

export async function createNode(config: NodeConfig): Promise<FsmeshNode> {
  const problems = validateNodeConfig(config);
  if (problems.length)
    throw new FsmeshError('invalid_input', `invalid node config: ${problems.join('; ')}`, { problems });
  // Every timer the node's actors start goes through this clock, so stop() can cancel them all.
  const baseClock = config.runtime?.clock ?? systemClock;
  const timers = new Set<TimerHandle>();
  const clock: Clock = {
    nowMs: () => baseClock.nowMs(),
    monotonicMs: () => baseClock.monotonicMs(),
    setTimeout(fn, ms) {
      const h: TimerHandle = baseClock.setTimeout(() => {
        timers.delete(h);
        fn();
      }, ms);
      timers.add(h);
      return {
        cancel: () => {
          timers.delete(h);
          h.cancel();
        },
      };
    },
    sleep: (ms) => baseClock.sleep(ms),
  };
  const runtime: Runtime = {
    clock,
    random: config.runtime?.random ?? systemRandom(),
    storage: config.runtime?.storage ?? nodeFsStorage(path.resolve(config.data_dir!)),
  };
  const name = config.node_name ?? 'node';
  const shard = config.shard ?? config.engine?.shard ?? 'default';
  const role = config.role ?? 'writer';
  const events = new NodeEvents(clock, name, shard);
  const metrics = new NodeMetrics({ node: name, shard });
  const engine = await LocalEngine.open(
    runtime,
    defaultEngineConfig({
      shard,
      created_by: name,
      role,
      durability:
        config.fsync === 'group'
          ? { mode: 'group', group_commit_ms: config.group_commit_ms ?? 2 }
          : { mode: 'fsync' },
      ...config.engine,
    }),
    {
      warn: (msg, details) =>
        events.emit(msg.includes('repaired') ? 'artifact_repair_completed' : 'artifact_repair_started', {
          ...details,
          note: msg,
        }),
    },
  );
  const startsEmpty = engine.generations.active === null;
  const health = startNodeHealth(
    clock,
    { ...DEFAULT_HEALTH_POLICY, ...config.health_policy },
    role === 'replica' && startsEmpty ? 'bootstrapping' : 'healthy',
  );
  metrics.setHealth(health.state(), HEALTH_STATES);
  let lastHealth = health.state();
  health.actor.subscribe((snap) => {
    const st = snap.value as string;
    if (st === lastHealth) return;
    const active = engine.generations.active;
    if (st === 'degraded')
      events.emit('read_degraded_mode_entered', {
        generation_id: active?.generation_id,
        commit_seq: active?.commit_seq_high,
        reason: snap.context.reason,
      });
    if (lastHealth === 'degraded')
      events.emit('read_degraded_mode_exited', {
        generation_id: active?.generation_id,
        commit_seq: active?.commit_seq_high,
        new_state: st,
      });
    lastHealth = st as typeof lastHealth;
    metrics.setHealth(st, HEALTH_STATES);
  });
  let latestKnown = engine.generations.active?.generation_seq ?? 0;
  const deps: ActorDeps = {
    engine,
    clock,
    events,
    metrics,
    health,
    role,
    build: { batch_max_commits: 64, build_interval_ms: 200, ...config.build },
    scrub_interval_ms: config.scrub_interval_ms ?? 0,
    scrub_bytes_per_s: config.scrub_bytes_per_s ?? 64 << 20,
    refs: {},
    hooks: { fetchFromPeers: config.repair_hooks?.fetchFromPeers },
    latest_known_generation_seq: () => Math.max(latestKnown, engine.generations.active?.generation_seq ?? 0),
  };
  const ownSystem = config.actor_parent ? null : startSystem();
  const parent = config.actor_parent ?? ownSystem!;
  const bound = config.mailbox_bound ?? 1024;
  const policy = { ...DEFAULT_RESTART_POLICY, ...config.restart_policy };
  const crashes: CrashReport[] = [];
  const report = (r: CrashReport) => {
    crashes.push(r);
    if (crashes.length > 100) crashes.shift();
  };
  // The node supervisor: a parent for the four workers, each with its own restart policy.
  const supervisor = spawnStateless(parent, () => {}, `fsmesh-${name}`);
  const ingest = new BoundedRef<IngestMsg>('ingest', bound);
  const builder = new BoundedRef<BuilderMsg>('builder', bound);
  const repair = new BoundedRef<RepairMsg>('repair', bound);
  const query = new BoundedRef<QueryMsg>('query', bound);
  deps.refs = { ingest, builder, repair, query };
  const repairQueue = createRepairQueue(deps, deps.hooks);
  ingest.ref = spawnIngestActor(supervisor, deps, restartPolicy(clock, 'ingest', policy, report));
  builder.ref = spawnBuilderActor(supervisor, deps, restartPolicy(clock, 'builder', policy, report));
  repair.ref = spawnRepairActor(
    supervisor,
    deps,
    repairQueue,
    restartPolicy(clock, 'repair', policy, report),
  );
  query.ref = spawnQueryActor(supervisor, deps, restartPolicy(clock, 'query', policy, report));
  const active0 = engine.generations.active;
  metrics.active_generation_seq.set(active0?.generation_seq ?? 0);
  metrics.active_commit_seq_high.set(active0?.commit_seq_high ?? 0);
  metrics.commit_seq_high.set(engine.log.commitSeqHigh);
  // §8.3: commits after the active generation's watermark (a crash mid-build) are built now.
  if (role === 'writer' && engine.log.commitSeqHigh > (active0?.commit_seq_high ?? 0))
    builder.tell({ type: 'build' });

  let stopped = false;
  const node: FsmeshNode = {
    name,
    engine,
    events,
    metrics,
    supervisor,
    hooks: deps.hooks,
    health,
    ingest: async (docs, opts = {}) =>
      ingest.ask<AppendAck>({ type: 'ingest', ops: docsToOps(docs), idempotency_key: opts.idempotency_key }),
    ingestOps: (ops, opts = {}) =>
      ingest.ask<AppendAck>({ type: 'ingest', ops, idempotency_key: opts.idempotency_key }),
    delete: async (docId) =>
      ingest.ask<AppendAck>({ type: 'ingest', ops: docsToOps([{ id: docId, delete: true }]) }),
    search: (opts) => query.ask<SearchResult>({ type: 'search', opts }),
    status: () => {
      const a = engine.generations.active;
      const hc = health.context();
      return {
        node: name,
        shard,
        role,
        health: health.state(),
        health_reason: hc.reason,
        generation_id: a?.generation_id ?? null,
        generation_seq: a?.generation_seq ?? null,
        artifact_manifest_id: a?.artifact_manifest_id ?? null,
        commit_seq_high: engine.log.commitSeqHigh,
        active_commit_seq_high: a?.commit_seq_high ?? 0,
        lag_commits: engine.log.commitSeqHigh - (a?.commit_seq_high ?? 0),
        retained_generations: engine.generations.retained.length,
        mailboxes: Object.fromEntries(
          [ingest, builder, repair, query].map((b) => [
            b.name,
            { inflight: b.inflight, bound: b.bound, rejected: b.rejected },
          ]),
        ),
        repair_queue: repairQueue.stats(),
        crashes: [...crashes],
      };
    },
    generations: () => [...engine.generations.retained],
    buildNow: () => builder.ask<BuildOutcome>({ type: 'build' }),
    scrub: () => repair.ask({ type: 'scrub' }),
    requestRepair: (objectId) => repair.ask({ type: 'repair', object_id: objectId }),
    injectFault: (actor) => deps.refs[actor]?.tell({ type: 'crash' }),
    failNextActivation: async (reason) => {
      await builder.ask({ type: 'fail_next_activation', reason });
    },
    noteLatestGeneration: (seq) => {
      latestKnown = Math.max(latestKnown, seq);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const b of [ingest, builder, repair, query]) b.ref = null;
      for (const t of [...timers]) t.cancel();
      timers.clear();
      await repairQueue.idle();
      stopActor(supervisor);
      if (ownSystem) stopActor(ownSystem);
      await engine.close();
      health.actor.stop();
    },
  };
  return node;
}
