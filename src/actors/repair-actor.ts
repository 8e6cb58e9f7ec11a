/**
 * Repair actor (§8.1, §13): runs the periodic scrub (bytes/s budget) and on-demand repairs
 * through a RepairQueue (bounded concurrency, deferral, circuit breaker). Objects it cannot
 * rebuild from local symbols are reported as corruption to the health machine — past the policy
 * threshold the node goes degraded — and handed to `fetchFromPeers` when the p2p layer provides it.
 */
import { type Ref, spawn } from 'nact';
import type { ObjectId } from '../core/ids.ts';
import type { TimerHandle } from '../runtime/index.ts';
import { RepairQueue } from '../storage/repair-queue.ts';
import type { ActorDeps } from './context.ts';
import type { Replyable } from './supervision.ts';

export type RepairMsg = ({ type: 'scrub' } | { type: 'repair'; object_id: ObjectId } | { type: 'crash' }) &
  Replyable;

export interface RepairHooks {
  /** Fetch an object's symbols from peers and reconstruct it; true when restored. */
  fetchFromPeers?: (objectId: ObjectId) => Promise<boolean>;
}

export function createRepairQueue(deps: ActorDeps, hooks: RepairHooks): RepairQueue {
  const { engine, events, metrics, health, clock } = deps;
  return new RepairQueue(clock, async (objectId) => {
    const active = engine.generations.active;
    events.emit('artifact_repair_started', {
      generation_id: active?.generation_id,
      commit_seq: active?.commit_seq_high,
      object_id: objectId,
    });
    const local = await engine.symbols.checkAndRepairLocally('artifact', objectId);
    let outcome = local.outcome;
    let source = 'local_symbols';
    if ((outcome === 'unrepairable' || outcome === 'missing') && hooks.fetchFromPeers) {
      source = 'peers';
      if (await hooks.fetchFromPeers(objectId)) outcome = 'repaired';
    }
    if (outcome === 'ok') return 'ok';
    if (outcome === 'repaired') {
      const size = await engine.objects.size('artifact', objectId).catch(() => 0);
      metrics.recordRepair(size, 0);
      events.emit('artifact_repair_completed', {
        generation_id: active?.generation_id,
        commit_seq: active?.commit_seq_high,
        object_id: objectId,
        repaired_bytes: size,
        source,
      });
      const wasDegraded = health.state() === 'degraded';
      health.send({ type: 'REPAIR_SUCCEEDED' });
      if (wasDegraded && health.state() === 'healthy') deps.refs.builder?.tell({ type: 'build' });
      return 'repaired';
    }
    metrics.repair_failures_total.inc();
    events.emit('artifact_repair_failed', {
      generation_id: active?.generation_id,
      commit_seq: active?.commit_seq_high,
      object_id: objectId,
      reason: outcome,
    });
    health.send({ type: 'CORRUPTION_DETECTED', object_id: objectId });
    return 'failed';
  });
}

export function spawnRepairActor(
  parent: Ref<any>,
  deps: ActorDeps,
  queue: RepairQueue,
  onCrash: (...a: any[]) => any,
): Ref<RepairMsg> {
  let timer: TimerHandle | null = null;
  const schedule = (delay_ms = deps.scrub_interval_ms) => {
    if (deps.scrub_interval_ms > 0)
      timer = deps.clock.setTimeout(() => deps.refs.repair?.tell({ type: 'scrub' }), delay_ms);
  };
  const ref = spawn(
    parent,
    async (state: null, msg: RepairMsg) => {
      switch (msg.type) {
        case 'crash':
          throw new Error('injected fault in repair actor');
        case 'repair': {
          // Do not hold the mailbox while the queue works: backpressure lives in the queue.
          queue.request(msg.object_id).then((r) => msg.reply?.({ ok: true, value: r }));
          return state;
        }
        case 'scrub': {
          timer?.cancel();
          // Only generations this node activated: a candidate still being fetched (a leased manifest)
          // lacks objects by design, which is no corruption (found by the simulator's failover fault:
          // a promoted writer's stale sync degraded it and stopped its builds).
          const { artifacts } = await deps.engine.generations.referencedObjects({ retainedOnly: true });
          let checked = 0;
          const results: Record<string, string> = {};
          for (const id of [...artifacts].sort()) {
            const ok = await deps.engine.objects.check('artifact', id);
            checked += ok === 'ok' ? await deps.engine.objects.size('artifact', id) : 0;
            if (ok !== 'ok') results[id] = await queue.request(id);
            if (deps.scrub_bytes_per_s > 0) await deps.clock.sleep((checked / deps.scrub_bytes_per_s) * 1000);
          }
          deps.metrics.recordRepair(0, checked);
          schedule();
          msg.reply?.({ ok: true, value: { objects_checked: artifacts.size, results } });
          return state;
        }
      }
    },
    'repair',
    { onCrash, initialState: null },
  ) as Ref<RepairMsg>;
  // The first scrub comes soon after start: damage in a page no query reads is found then.
  schedule(Math.min(deps.first_scrub_delay_ms, deps.scrub_interval_ms));
  return ref;
}
