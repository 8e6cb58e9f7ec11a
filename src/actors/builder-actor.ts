/**
 * Builder actor (§6 step 3-4, §8.3): batches durable commits into a generation by size
 * (`batch_max_commits`) or time (`build_interval_ms`), builds the candidate and hands it to the
 * engine's activation gate (verify → warm → lifecycle flip). Builds always start from the active
 * generation's commit_seq_high, so after a crash the work resumes from that watermark; an unfinished
 * candidate is never visible. While the node is degraded activation attempts are suspended (§14),
 * except a degraded-mode probe. A failed build is retried by the retry/back-off machine.
 */
import { type Ref, spawn } from 'nact';
import { NODE_DEFAULTS } from '../core/defaults.ts';
import { startGenerationLifecycle } from '../fsm/generation-lifecycle.ts';
import { type RetryBackoff, startRetryBackoff } from '../fsm/retry-backoff.ts';
import { LifecycleTrace } from '../obs/tracing.ts';
import type { TimerHandle } from '../runtime/index.ts';
import type { ActorDeps } from './context.ts';
import type { Replyable } from './supervision.ts';

export type BuilderMsg = (
  | { type: 'commit_durable'; commit_seq: number; durable_at_ms: number }
  /** `probe`: a degraded-mode probe may try one activation although activations are suspended. */
  | { type: 'build'; probe?: boolean }
  | { type: 'crash' }
) &
  Replyable;

interface BuilderState {
  pending: number;
  oldest_pending_ms: number | null;
  timer: TimerHandle | null;
  retry: RetryBackoff | null;
}

export interface BuildOutcome {
  built: boolean;
  generation_id?: string;
  artifact_manifest_id?: string;
  commit_seq_high?: number;
  state: string;
  reason?: string;
}

export async function runBuild(
  deps: ActorDeps,
  st: Pick<BuilderState, 'oldest_pending_ms'>,
  opts: { probe?: boolean } = {},
): Promise<BuildOutcome> {
  const { engine, events, metrics, health, clock } = deps;
  if (!health.canActivate() && !opts.probe)
    return { built: false, state: 'suspended', reason: 'node is degraded: activations suspended' };
  if (deps.hooks.buildAllowed && !deps.hooks.buildAllowed())
    return { built: false, state: 'fenced', reason: 'the writer is confirming its epoch with the cluster' };
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
    // The writer may have lost its lease while building (paused, or replaced): do not go live.
    if (deps.hooks.buildAllowed && !deps.hooks.buildAllowed()) {
      lc.send({ type: 'FAIL', reason: 'the writer lost its lease during the build' });
      tr.end('fenced');
      return { built: false, state: 'fenced', reason: 'the writer lost its lease during the build' };
    }
    const ref = await engine.gate.activate({
      manifest_id: cand.manifest_id,
      source: 'build',
      lifecycle: lc,
      trace: tr,
    });
    if (st.oldest_pending_ms !== null) {
      const lag = Math.max(0, clock.nowMs() - st.oldest_pending_ms); // wall clock: may step back
      metrics.commit_lag_ms.set(lag);
      metrics.commit_lag_ms_histogram.observe(lag);
    }
    st.oldest_pending_ms = null;
    return {
      built: true,
      generation_id: ref.generation_id,
      artifact_manifest_id: ref.artifact_manifest_id,
      commit_seq_high: ref.commit_seq_high,
      state: lc.state(),
    };
  } catch (err) {
    engine.gate.reportFailure(
      {
        source: 'build',
        lifecycle: lc,
        trace: tr,
        generation_id: cand?.manifest.generation_id ?? `gen-${nextSeq}`,
        commit_seq: cand?.manifest.commit_seq_high ?? engine.log.commitSeqHigh,
      },
      err,
    );
    return { built: false, state: lc.state(), reason: (err as Error).message };
  } finally {
    cand?.release();
  }
}

export function spawnBuilderActor(
  parent: Ref<any>,
  deps: ActorDeps,
  onCrash: (...a: any[]) => any,
): Ref<BuilderMsg> {
  const tellBuild = () => deps.refs.builder?.tell({ type: 'build' });
  return spawn(
    parent,
    async (st: BuilderState, msg: BuilderMsg): Promise<BuilderState> => {
      switch (msg.type) {
        case 'crash':
          throw new Error('injected fault in builder actor');
        case 'commit_durable':
          if (deps.role !== 'writer') return st;
          st.pending++;
          if (st.oldest_pending_ms === null) st.oldest_pending_ms = msg.durable_at_ms;
          if (st.pending >= deps.build.batch_max_commits) tellBuild();
          else if (!st.timer) st.timer = deps.clock.setTimeout(tellBuild, deps.build.build_interval_ms);
          return st;
        case 'build': {
          st.timer?.cancel();
          st.timer = null;
          st.pending = 0;
          const out = await runBuild(deps, st, { probe: msg.probe });
          // A failed build (disk full, a peer-held object missing, ...) is retried with back-off
          // until it succeeds: commits never wait for the next ingest to become searchable (found
          // by the simulator's ENOSPC fault). The policy is the retry machine's.
          if (deps.role === 'writer') {
            st.retry ??= startRetryBackoff(
              deps.clock,
              {
                base_ms: NODE_DEFAULTS.build_retry_min_ms,
                max_ms: NODE_DEFAULTS.build_retry_max_ms,
                growth: 'exponential',
                max_attempts: Number.POSITIVE_INFINITY,
              },
              tellBuild,
            );
            if (out.state === 'failed') st.retry.send({ type: 'FAILED' });
            else if (out.built || out.state === 'up_to_date') st.retry.send({ type: 'SUCCEEDED' });
          }
          msg.reply?.({ ok: true, value: out });
          return st;
        }
      }
    },
    'builder',
    {
      onCrash,
      initialStateFunc: () => ({ pending: 0, oldest_pending_ms: null, timer: null, retry: null }),
    },
  ) as Ref<BuilderMsg>;
}
