/**
 * One fsmesh node: a LocalEngine driven by supervised nact actors (ingest, builder, repair,
 * query), the generation-lifecycle and node-health xstate machines, the observability sinks, and
 * the services composed into it (the cluster, when there is one). `createNode(config)` validates
 * the config, opens the data directory and starts the actors — under a fresh nact system, or under
 * a host application's own actor (`actor_parent`).
 */
import * as path from 'node:path';
import { spawnStateless, start as startSystem, stop as stopActor } from 'nact';
import { type BuilderMsg, type BuildOutcome, spawnBuilderActor } from '../actors/builder-actor.ts';
import type { ActorDeps, NodeHooks } from '../actors/context.ts';
import { type IngestMsg, spawnIngestActor } from '../actors/ingest-actor.ts';
import { BoundedRef } from '../actors/mailbox.ts';
import { type QueryMsg, spawnQueryActor } from '../actors/query-actor.ts';
import { createRepairQueue, type RepairMsg, spawnRepairActor } from '../actors/repair-actor.ts';
import { type CrashReport, DEFAULT_RESTART_POLICY, restartPolicy } from '../actors/supervision.ts';
import { ENGINE_DEFAULTS, NODE_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import type { EngineEvent } from '../engine/engine-events.ts';
import { defaultEngineConfig, LocalEngine, type ReadOptions } from '../engine/local-engine.ts';
import { checkStrictRead, waitForActivation } from '../engine/read-path.ts';
import { DEFAULT_HEALTH_POLICY, type NodeHealth, startNodeHealth } from '../fsm/node-health.ts';
import { NodeEvents } from '../obs/events.ts';
import { NodeMetrics } from '../obs/metrics.ts';
import { RateMeter } from '../obs/rate-meter.ts';
import { type Clock, nodeFsStorage, type Runtime, systemClock, systemRandom } from '../runtime/index.ts';
import { type SearchOptions, type SearchResult, validateSearchOptions } from '../search/searcher.ts';
import type { AppendAck } from '../storage/capsule-log.ts';
import { checkIdempotencyKey, docsToOps } from './doc-input.ts';
import { bridgeEngineEvent } from './engine-event-bridge.ts';
import type { FsmeshNode } from './fsmesh-node.ts';
import { observeHealth, probeDegraded } from './health-observer.ts';
import { type NodeConfig, validateNodeConfig } from './node-config.ts';
import type { NodeComponents, NodeService } from './services.ts';
import { buildNodeStatus } from './status.ts';
import { trackedClock } from './tracked-clock.ts';

export type { FsmeshNode };

export async function createNode(config: NodeConfig): Promise<FsmeshNode> {
  const problems = validateNodeConfig(config);
  if (problems.length)
    throw new FsmeshError('invalid_input', `invalid node config: ${problems.join('; ')}`, { problems });
  const local = await openLocalNode(config);
  const { engine, events, metrics, health, services, timers, name, shard } = local;
  const deps = actorDeps(config, local);
  const actors = spawnActors(config, deps);
  const { ingest, builder, repair, query, repairQueue, crashes, supervisor, ownSystem } = actors;
  // §14 degraded-mode probe: scrub (repairs what it can); a writer then tries one activation.
  local.probe = () => void probeDegraded(deps, repair, builder).catch(() => {});
  const active0 = engine.generations.active;
  metrics.active_generation_seq.set(active0?.generation_seq ?? 0);
  metrics.active_commit_seq_high.set(active0?.commit_seq_high ?? 0);
  metrics.commit_seq_high.set(engine.log.commitSeqHigh);
  metrics.observePostingsCache(engine.postings);
  const strictWait = strictReadWaiter(engine, timers.clock);
  // A local search: strict reads wait for their commit here, not in the query mailbox (bounded in
  // number), so parked reads cannot fill it; the actor then pins the generation covering the commit.
  const queryRate = new RateMeter(timers.clock);
  const searchLocal = async (opts: SearchOptions & ReadOptions) => {
    if (opts.min_commit_seq !== undefined) await strictWait(opts);
    const r = await actors.query.ask<SearchResult>({ type: 'search', opts });
    queryRate.mark();
    return r;
  };
  const setRole = (r: 'writer' | 'replica') => {
    if (r === local.role) return;
    local.role = r;
    deps.role = r;
    // A new writer builds what its log holds beyond the active generation right away (§8.3).
    if (r === 'writer') builder.tell({ type: 'build' });
  };
  const components = nodeComponents(
    local,
    searchLocal,
    () => repairQueue.stats().under_repair,
    setRole,
    () => builder.tell({ type: 'build' }),
    () => queryRate.perSecond(),
  );
  for (const factory of config.services ?? []) services.push(factory(components));
  const byName = new Map(services.map((s) => [s.name, s]));
  invariant(byName.size === services.length, 'service names are unique');

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Services detach first (synchronously up to their first await), then timers and actors.
    const serviceStops = services.map((s) => s.stop?.().catch(() => {}));
    for (const b of [ingest, builder, repair, query]) b.ref = null;
    timers.cancelAll();
    await Promise.all(serviceStops);
    await repairQueue.idle();
    stopActor(supervisor);
    if (ownSystem) stopActor(ownSystem);
    await engine.close();
    health.actor.stop();
  };
  try {
    for (const s of services) await s.start?.();
  } catch (err) {
    await stop();
    throw err;
  }
  // §8.3: commits after the active generation's watermark (a crash mid-build) are built now.
  if (local.role === 'writer' && engine.log.commitSeqHigh > (active0?.commit_seq_high ?? 0))
    builder.tell({ type: 'build' });

  return nodeApi({ local, deps, actors, services: byName, components, stop });
}

/** The node's public face over its actors (every request through a bounded mailbox). Table-like: one small method per operation. */
function nodeApi(n: {
  local: LocalNode;
  deps: ActorDeps;
  actors: ReturnType<typeof spawnActors>;
  services: ReadonlyMap<string, NodeService>;
  components: NodeComponents;
  stop: () => Promise<void>;
}): FsmeshNode {
  const { engine, events, metrics, health, name, shard } = n.local;
  const { ingest, builder, repair, query, repairQueue, crashes, supervisor } = n.actors;
  const { deps, stop } = n;
  const services = [...n.services.values()];
  const byName = n.services;
  const clusterOp = async (op: (s: NodeService) => Promise<unknown> | undefined) => {
    for (const s of services) {
      const r = op(s);
      if (r) return r;
    }
    throw new FsmeshError('conflict', 'this node is not in a cluster: nothing to promote');
  };
  const refuseWhileDraining = () => {
    if (n.local.draining)
      throw new FsmeshError(
        'unavailable',
        `${name} is draining: send writes elsewhere, or undrain it (POST /v1/admin/drain)`,
      );
    for (const s of services) s.admitWrite?.();
  };
  return {
    name,
    engine,
    events,
    metrics,
    supervisor,
    health,
    services: byName,
    ingest: async (docs, opts = {}) => {
      refuseWhileDraining();
      checkIdempotencyKey(opts.idempotency_key);
      return ingest.ask<AppendAck>({
        type: 'ingest',
        ops: docsToOps(docs),
        idempotency_key: opts.idempotency_key,
      });
    },
    ingestOps: async (ops, opts = {}) => {
      refuseWhileDraining();
      checkIdempotencyKey(opts.idempotency_key);
      return ingest.ask<AppendAck>({ type: 'ingest', ops, idempotency_key: opts.idempotency_key });
    },
    delete: async (docId) => {
      refuseWhileDraining();
      return ingest.ask<AppendAck>({ type: 'ingest', ops: docsToOps([{ id: docId, delete: true }]) });
    },
    search: async (opts) => {
      const { route, ...rest } = opts;
      if (route !== undefined && route !== 'auto' && route !== 'local')
        throw new FsmeshError(
          'invalid_input',
          `route: must be "auto" or "local", got ${JSON.stringify(route)}`,
        );
      validateSearchOptions(rest);
      // Health-based routing (§12 Phase 2): a service may answer on a better member.
      if (route !== 'local')
        for (const s of services) {
          const r = await s.routeSearch?.(rest, n.components.routingState());
          if (r) return r;
        }
      const r = await n.components.searchLocal(rest);
      return { ...r, served_by: services.find((s) => s.selfId)?.selfId?.() ?? name };
    },
    status: () => ({
      ...buildNodeStatus({ name, shard, role: n.local.role, engine, health, repairQueue, crashes }, [
        ingest,
        builder,
        repair,
        query,
      ]),
      queries_per_s: n.components.routingState().queries_per_s ?? 0,
    }),
    serviceStatus: () => Object.assign({}, ...services.map((s) => s.status?.() ?? {})),
    readiness: () => {
      const stopped = health.context().stopped_actors;
      if (stopped.length) return { ready: false, reason: `actor ${stopped.join(', ')} stopped` };
      if (n.local.draining) return { ready: false, reason: 'draining' };
      if (n.local.role === 'writer' || engine.generations.active) return { ready: true, reason: null };
      if (services.some((s) => s.confirmsEmptyCluster?.())) return { ready: true, reason: null };
      return { ready: false, reason: 'no active generation yet (bootstrapping)' };
    },
    preparePromotion: (ticket) => clusterOp((s) => s.preparePromotion?.(ticket)),
    promote: (signed) => clusterOp((s) => s.promote?.(signed)),
    setDraining: (d) => {
      n.local.draining = d;
      events.emit(d ? 'drain_started' : 'drain_stopped', {});
    },
    get draining() {
      return n.local.draining;
    },
    generations: () => [...engine.generations.retained],
    buildNow: () => builder.ask<BuildOutcome>({ type: 'build' }),
    scrub: () => repair.ask({ type: 'scrub' }),
    requestRepair: (objectId) => repair.ask({ type: 'repair', object_id: objectId }),
    injectFault: (actor) => deps.refs[actor]?.tell({ type: 'crash' }),
    failNextActivation: async (reason) => engine.gate.injectFault('warm', reason),
    noteLatestGeneration: n.components.noteLatestGeneration,
    stop,
  };
}

/** Strict reads wait for their commit outside the query mailbox, bounded in number. */
function strictReadWaiter(engine: LocalEngine, clock: Clock): (opts: ReadOptions) => Promise<void> {
  let strictWaiters = 0;
  return async (opts: ReadOptions) => {
    checkStrictRead(opts.min_commit_seq, opts.timeout_ms);
    if (strictWaiters >= NODE_DEFAULTS.max_strict_waiters)
      throw new FsmeshError('busy', `${strictWaiters} strict reads are already waiting; retry`);
    strictWaiters++;
    try {
      await waitForActivation(
        engine.generations,
        clock,
        opts.min_commit_seq!,
        opts.timeout_ms ?? ENGINE_DEFAULTS.strict_read_timeout_ms,
      );
    } finally {
      strictWaiters--;
    }
  };
}

/** The local parts before any actor runs: effects, observability, the engine, the health machine. */
interface LocalNode {
  name: string;
  shard: string;
  role: 'writer' | 'replica';
  timers: ReturnType<typeof trackedClock>;
  runtime: Runtime;
  events: NodeEvents;
  metrics: NodeMetrics;
  engine: LocalEngine;
  health: NodeHealth;
  services: NodeService[];
  latest_known_generation_seq: number;
  probe: () => void;
  draining: boolean;
}

async function openLocalNode(config: NodeConfig): Promise<LocalNode> {
  // Every timer the node starts goes through this clock, so stop() can cancel them all.
  const timers = trackedClock(config.runtime?.clock ?? systemClock);
  const clock = timers.clock;
  const runtime: Runtime = {
    clock,
    random: config.runtime?.random ?? systemRandom(),
    storage: config.runtime?.storage ?? nodeFsStorage(path.resolve(config.data_dir!)),
    compute: config.runtime?.compute,
  };
  const name = config.node_name ?? NODE_DEFAULTS.node_name;
  const shard = config.shard ?? config.engine?.shard ?? ENGINE_DEFAULTS.shard;
  const role = config.role ?? NODE_DEFAULTS.role;
  const events = new NodeEvents(clock, name, shard);
  const metrics = new NodeMetrics({ node: name, shard });
  const services: NodeService[] = [];
  // Engine events before the health machine exists (log recovery at open) are evented only.
  let onEngineEvent: (e: EngineEvent) => void = (e) =>
    bridgeEngineEvent({ events, metrics, health: noHealth, active: () => null }, e);
  const engine = await LocalEngine.open(
    runtime,
    defaultEngineConfig({
      shard,
      created_by: name,
      role,
      durability:
        config.fsync === 'group'
          ? { mode: 'group', group_commit_ms: config.group_commit_ms ?? ENGINE_DEFAULTS.group_commit_ms }
          : { mode: 'fsync' },
      ...config.engine,
    }),
    { onEvent: (e) => onEngineEvent(e), peer_repair: (id) => fetchFromServices(services, id) },
  );
  const local: LocalNode = {
    name,
    shard,
    role,
    timers,
    runtime,
    events,
    metrics,
    engine,
    services,
    health: noHealth,
    latest_known_generation_seq: engine.generations.active?.generation_seq ?? 0,
    probe: () => {},
    draining: false,
  };
  local.health = startNodeHealth(
    clock,
    {
      ...DEFAULT_HEALTH_POLICY,
      degraded_probe_interval_ms: NODE_DEFAULTS.degraded_probe_interval_ms,
      ...config.health_policy,
    },
    role === 'replica' && engine.generations.active === null ? 'bootstrapping' : 'healthy',
    () => local.probe(),
  );
  const health = local.health;
  onEngineEvent = (e) =>
    bridgeEngineEvent({ events, metrics, health, active: () => engine.generations.active }, e);
  observeHealth(health, events, metrics, () => engine.generations.active);
  return local;
}

function actorDeps(config: NodeConfig, n: LocalNode): ActorDeps {
  const { engine, services } = n;
  const hooks: NodeHooks = {
    afterLocalCommit: async (ack) => {
      for (const s of services) if (s.awaitDurable) await s.awaitDurable(ack);
    },
    fetchFromPeers: config.repair_hooks?.fetchFromPeers ?? ((id) => fetchFromServices(services, id)),
    buildAllowed: () => services.every((s) => s.buildAllowed?.() ?? true),
  };
  return {
    engine,
    clock: n.timers.clock,
    events: n.events,
    metrics: n.metrics,
    health: n.health,
    role: n.role,
    build: {
      batch_max_commits: NODE_DEFAULTS.batch_max_commits,
      build_interval_ms: NODE_DEFAULTS.build_interval_ms,
      ...config.build,
    },
    scrub_interval_ms: config.scrub_interval_ms ?? NODE_DEFAULTS.scrub_interval_ms,
    scrub_bytes_per_s: config.scrub_bytes_per_s ?? NODE_DEFAULTS.scrub_bytes_per_s,
    first_scrub_delay_ms: config.first_scrub_delay_ms ?? NODE_DEFAULTS.first_scrub_delay_ms,
    refs: {},
    hooks,
    latest_known_generation_seq: () =>
      Math.max(n.latest_known_generation_seq, engine.generations.active?.generation_seq ?? 0),
  };
}

function nodeComponents(
  n: LocalNode,
  searchLocal: (opts: SearchOptions & ReadOptions) => Promise<SearchResult>,
  repairing: () => string[],
  setRole: (r: 'writer' | 'replica') => void,
  requestBuild: () => void,
  queriesPerS: () => number,
): NodeComponents {
  const { engine } = n;
  return {
    setRole,
    requestBuild,
    searchLocal,
    routingState: () => ({
      health: n.health.state(),
      draining: n.draining,
      active_commit_seq_high: engine.generations.active?.commit_seq_high ?? 0,
      generation_id: engine.generations.active?.generation_id ?? null,
      artifact_manifest_id: engine.generations.active?.artifact_manifest_id ?? null,
      repairing: repairing(),
      commit_seq_high: engine.log.commitSeqHigh,
      queries_per_s: queriesPerS(),
    }),
    name: n.name,
    shard: n.shard,
    get role() {
      return n.role; // changes on failover
    },
    clock: n.timers.clock,
    random: n.runtime.random,
    storage: n.runtime.storage,
    log: engine.log,
    objects: engine.objects,
    symbols: engine.symbols,
    generations: engine.generations,
    gate: engine.gate,
    builds: engine,
    events: n.events,
    metrics: n.metrics,
    health: n.health,
    noteLatestGeneration: (seq) => {
      n.latest_known_generation_seq = Math.max(n.latest_known_generation_seq, seq);
    },
  };
}

const noHealth = { send: () => {} } as unknown as NodeHealth;

async function fetchFromServices(services: NodeService[], objectId: string): Promise<boolean> {
  for (const s of services) if (s.fetchObject && (await s.fetchObject(objectId))) return true;
  return false;
}

/** The supervisor and its four workers, each with its own restart policy and bounded mailbox. */
function spawnActors(config: NodeConfig, deps: ActorDeps) {
  const ownSystem = config.actor_parent ? null : startSystem();
  const parent = config.actor_parent ?? ownSystem!;
  const bound = config.mailbox_bound ?? NODE_DEFAULTS.mailbox_bound;
  const policy = { ...DEFAULT_RESTART_POLICY, ...config.restart_policy };
  const crashes: CrashReport[] = [];
  const refs: Record<string, BoundedRef<any>> = {};
  const report = (r: CrashReport) => {
    crashes.push(r);
    if (crashes.length > 100) crashes.shift();
    if (r.action !== 'stop') return;
    // The supervisor gave up: requests fail fast (503 over HTTP), the node is degraded, and say so.
    refs[r.actor]?.stop(`${r.restarts_in_window} crashes within the restart window (last: ${r.error})`);
    deps.events.emit('actor_stopped', {
      actor: r.actor,
      error: r.error,
      restarts_in_window: r.restarts_in_window,
    });
    deps.health.send({ type: 'ACTOR_STOPPED', actor: r.actor });
  };
  const supervisor = spawnStateless(parent, () => {}, `fsmesh-${deps.events.node}`);
  const ingest = new BoundedRef<IngestMsg>('ingest', bound);
  const builder = new BoundedRef<BuilderMsg>('builder', bound);
  const repair = new BoundedRef<RepairMsg>('repair', bound);
  const query = new BoundedRef<QueryMsg>('query', bound);
  deps.refs = { ingest, builder, repair, query };
  Object.assign(refs, deps.refs);
  const repairQueue = createRepairQueue(deps, deps.hooks);
  const onCrash = (actor: string) => restartPolicy(deps.clock, actor, policy, report);
  ingest.ref = spawnIngestActor(supervisor, deps, onCrash('ingest'));
  builder.ref = spawnBuilderActor(supervisor, deps, onCrash('builder'));
  repair.ref = spawnRepairActor(supervisor, deps, repairQueue, onCrash('repair'));
  query.ref = spawnQueryActor(supervisor, deps, onCrash('query'));
  return { ingest, builder, repair, query, repairQueue, crashes, supervisor, ownSystem };
}
