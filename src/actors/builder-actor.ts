/**
 * Builder actor (§6 step 3-4, §8.3): batches durable commits into a generation by size
 * (`batch_max_commits`) or time (`build_interval_ms`), and drives each generation through the
 * lifecycle machine: building → built → verifying → warming → (flip) active. Builds always start
 * from the active generation's commit_seq_high, so after a crash the work resumes from that
 * watermark; an unfinished candidate is never visible. While the node is degraded activation
 * attempts are suspended (§14).
 */
import { type Ref, spawn } from 'nact';
import { FsmeshError } from '../core/errors.ts';
import { startGenerationLifecycle } from '../fsm/generation-lifecycle.ts';
import { LifecycleTrace } from '../obs/tracing.ts';
import type { TimerHandle } from '../runtime/index.ts';
import type { ActorDeps } from './context.ts';
import type { Replyable } from './supervision.ts';

export type BuilderMsg = (
  | { type: 'commit_durable'; commit_seq: number; durable_at_ms: number }
  | { type: 'build' }
  | { type: 'fail_next_activation'; reason: string }
  | { type: 'crash' }
) &
  Replyable;

interface BuilderState {
  pending: number;
  oldest_pending_ms: number | null;
  timer: TimerHandle | null;
  fail_next: string | null;
  /** Back-off before retrying a failed build (0 = none pending). */
  retry_ms: number;
}

export interface BuildOutcome {
  built: boolean;
  generation_id?: string;
  artifact_manifest_id?: string;
  commit_seq_high?: number;
  state: string;
  reason?: string;
}

export async function runBuild(deps: ActorDeps, st: BuilderState): Promise<BuildOutcome> {
  const { engine, events, metrics, health, clock } = deps;
  if (!health.canActivate())
    return { built: false, state: 'suspended', reason: 'node is degraded: activations suspended' };
  const active = engine.generations.active;
  if ((active?.commit_seq_high ?? 0) >= engine.log.commitSeqHigh)
    return { built: false, state: 'up_to_date' };
  const nextSeq = Math.max(0, ...engine.generations.retained.map((r) => r.generation_seq)) + 1;
  const lc = startGenerationLifecycle(clock, `gen-${nextSeq}`);
  const t0 = clock.monotonicMs();
  lc.send({ type: 'BUILD' });
  const tr = new LifecycleTrace(`gen-${nextSeq}`, { shard: engine.config.shard, role: 'writer' });
  events.emit('generation_build_started', {
    generation_id: `gen-${nextSeq}`,
    commit_seq: engine.log.commitSeqHigh,
    parent_generation_id: active?.generation_id ?? null,
  });
  let cand: Awaited<ReturnType<typeof engine.buildCandidate>> = null;
  let flipped = false;
  try {
    cand = await tr.child('encode', () => engine.buildCandidate());
    if (!cand) {
      tr.end('up_to_date');
      return { built: false, state: 'up_to_date' };
    }
    lc.send({ type: 'BUILT', manifest_id: cand.manifest_id });
    events.emit('generation_build_completed', {
      generation_id: cand.manifest.generation_id,
      commit_seq: cand.manifest.commit_seq_high,
      artifact_manifest_id: cand.manifest_id,
      doc_count: cand.manifest.doc_count,
      build_ms: clock.monotonicMs() - t0,
    });
    const ta = clock.monotonicMs();
    lc.send({ type: 'VERIFY' });
    const manifestId = cand.manifest_id;
    const warmed = await tr.child('verify', () => engine.verifyAndWarm(manifestId), {
      artifact_manifest_id: manifestId,
    });
    try {
      lc.send({ type: 'VERIFIED' });
      if (st.fail_next) {
        const reason = st.fail_next;
        st.fail_next = null;
        throw new FsmeshError('internal', `injected activation failure: ${reason}`);
      }
      if (!lc.canFlip())
        throw new FsmeshError('internal', `lifecycle refused the flip from state ${lc.state()}`);
      const ref = await tr.child('activate', () => engine.flip(manifestId, ta));
      flipped = true;
      lc.send({ type: 'ACTIVATE' });
      const activateMs = clock.monotonicMs() - ta;
      metrics.generation_activate_ms.observe(activateMs);
      metrics.active_generation_seq.set(ref.generation_seq);
      metrics.active_commit_seq_high.set(ref.commit_seq_high);
      if (st.oldest_pending_ms !== null) {
        const lag = clock.nowMs() - st.oldest_pending_ms;
        metrics.commit_lag_ms.set(lag);
        metrics.commit_lag_ms_histogram.observe(lag);
      }
      st.oldest_pending_ms = null;
      health.send({ type: 'ACTIVATION_SUCCEEDED' });
      tr.end('active', {
        commit_seq_high: ref.commit_seq_high,
        artifact_manifest_id: ref.artifact_manifest_id,
      });
      events.emit('generation_activation_succeeded', {
        generation_id: ref.generation_id,
        commit_seq: ref.commit_seq_high,
        artifact_manifest_id: ref.artifact_manifest_id,
        activate_ms: activateMs,
        previous_generation_id: active?.generation_id ?? null,
      });
      return {
        built: true,
        generation_id: ref.generation_id,
        artifact_manifest_id: ref.artifact_manifest_id,
        commit_seq_high: ref.commit_seq_high,
        state: lc.state(),
      };
    } finally {
      warmed.release();
    }
  } catch (err) {
    const reason = (err as Error).message;
    lc.send({ type: 'FAIL', reason });
    tr.end('failed', { reason });
    // §14: if the pointer already moved, move it back atomically; otherwise it never moved.
    if (flipped) await engine.rollback().catch(() => {});
    health.send({ type: 'ACTIVATION_FAILED', reason });
    events.emit('generation_activation_failed', {
      generation_id: cand?.manifest.generation_id ?? `gen-${nextSeq}`,
      commit_seq: cand?.manifest.commit_seq_high ?? engine.log.commitSeqHigh,
      reason,
      serving_generation_id: engine.generations.active?.generation_id ?? null,
    });
    return { built: false, state: lc.state(), reason };
  } finally {
    cand?.release();
  }
}

export function spawnBuilderActor(
  parent: Ref<any>,
  deps: ActorDeps,
  onCrash: (...a: any[]) => any,
): Ref<BuilderMsg> {
  const self: { ref: Ref<BuilderMsg> | null } = { ref: null };
  self.ref = spawn(
    parent,
    async (st: BuilderState, msg: BuilderMsg): Promise<BuilderState> => {
      switch (msg.type) {
        case 'crash':
          throw new Error('injected fault in builder actor');
        case 'fail_next_activation':
          st.fail_next = msg.reason;
          msg.reply?.({ ok: true, value: null });
          return st;
        case 'commit_durable':
          if (deps.role !== 'writer') return st;
          st.pending++;
          if (st.oldest_pending_ms === null) st.oldest_pending_ms = msg.durable_at_ms;
          if (st.pending >= deps.build.batch_max_commits) {
            deps.refs.builder?.tell({ type: 'build' });
          } else if (!st.timer) {
            st.timer = deps.clock.setTimeout(
              () => deps.refs.builder?.tell({ type: 'build' }),
              deps.build.build_interval_ms,
            );
          }
          return st;
        case 'build': {
          st.timer?.cancel();
          st.timer = null;
          st.pending = 0;
          const out = await runBuild(deps, st);
          // A failed build (disk full, a peer-held object missing, ...) is retried with back-off
          // until it succeeds: commits never wait for the next ingest to become searchable (found
          // by the simulator's ENOSPC fault).
          if (out.state === 'failed' && deps.role === 'writer') {
            st.retry_ms = Math.min(30_000, Math.max(250, st.retry_ms * 2));
            st.timer = deps.clock.setTimeout(() => deps.refs.builder?.tell({ type: 'build' }), st.retry_ms);
          } else if (out.built || out.state === 'up_to_date') st.retry_ms = 0;
          msg.reply?.({ ok: true, value: out });
          return st;
        }
      }
    },
    'builder',
    {
      onCrash,
      initialStateFunc: () => ({
        pending: 0,
        oldest_pending_ms: null,
        timer: null,
        fail_next: null,
        retry_ms: 0,
      }),
    },
  ) as Ref<BuilderMsg>;
  return self.ref;
}
