/**
 * The activation gate (§6 step 4, §8.3, §8.5, §14): the one path by which any generation becomes
 * live — a local build, a peer sync, a capsule replay, the CLI's ingest, a rollback. In order:
 * the lifecycle machine enters `verifying`; the manifest is validated, the shard and embedder
 * revision gates pass and every artifact is re-hashed (opening the reader); a probe query warms
 * it; the machine must allow the flip (`warming` → `active`); the pointer flips atomically; the
 * outcome is reported as one typed engine event. A failure leaves the previous generation serving
 * (a pointer that already moved is moved back).
 */
import { FsmeshError, invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import type { GenerationManifest } from '../core/manifest.ts';
import { type GenerationLifecycle, startGenerationLifecycle } from '../fsm/generation-lifecycle.ts';
import type { LifecycleTrace } from '../obs/tracing.ts';
import type { Clock } from '../runtime/index.ts';
import type { GenerationRef } from '../storage/generations.ts';
import type { ActivationSource, EngineEvent } from './engine-events.ts';

/** What the gate needs from the engine (narrow on purpose: the gate owns the order, not the I/O). */
export interface GateEngine {
  readonly clock: Clock;
  active(): GenerationRef | null;
  loadManifest(manifestId: ObjectId): Promise<GenerationManifest>;
  /** Validate + re-hash + warm; the returned pin keeps the reader open until released. */
  verifyAndWarm(
    manifestId: ObjectId,
    opts?: { hashed_ids?: ReadonlySet<ObjectId> },
  ): Promise<{ release(): void }>;
  flipPointer(manifestId: ObjectId, opts?: { allowOlder?: boolean }): Promise<GenerationRef>;
  rollbackTarget(): GenerationRef;
  rollbackPointer(): Promise<{ from: GenerationRef; to: GenerationRef }>;
  /** After a flip: collect what no retained generation needs (failures are not the flip's). */
  afterFlip(): Promise<void>;
  emit(e: EngineEvent): void;
}

export interface ActivationRequest {
  manifest_id: ObjectId;
  source: ActivationSource;
  /** The caller's machine when it already drove building/built; else the gate starts one. */
  lifecycle?: GenerationLifecycle;
  trace?: LifecycleTrace;
  /** Extra fields for the activation event (bytes fetched, peers, build time, ...). */
  details?: Record<string, unknown>;
  /** Replace an active generation a failover cut, even with fewer commits (never otherwise). */
  replaces_cut_history?: boolean;
  /**
   * Artifacts the caller assembled and hashed against their ids moments ago (a peer sync's fetch).
   * When they cover every vector artifact, the vectors are read after the flip rather than before
   * it: they are verified already, and a vector query meanwhile waits for them.
   */
  hashed_ids?: ReadonlySet<ObjectId>;
}

export type GateStage = 'verify' | 'warm' | 'flip';

export class ActivationGate {
  private readonly engine: GateEngine;
  private fault: { stage: GateStage; reason: string; remaining: number; skip: number } | null = null;
  private readonly reported = new WeakSet<object>();

  constructor(engine: GateEngine) {
    this.engine = engine;
  }

  /**
   * Fault injection for tests, the simulator and operators' failpoints: after `skip` activations
   * pass `stage`, the next `times` fail there (Infinity: until cleared with `clearFault`). Every
   * activation path is affected alike.
   */
  injectFault(stage: GateStage, reason: string, times = 1, skip = 0): void {
    invariant(times >= 1, 'fault injection needs at least one activation');
    invariant(Number.isSafeInteger(skip) && skip >= 0, 'fault injection skip is a count');
    this.fault = { stage, reason, remaining: times, skip };
  }
  clearFault(): void {
    this.fault = null;
  }

  async activate(req: ActivationRequest): Promise<GenerationRef> {
    const manifest = await this.engine.loadManifest(req.manifest_id).catch((err) => {
      this.reportFailure({ ...req, generation_id: 'unknown', commit_seq: 0 }, err);
      throw err;
    });
    return this.pass(req, manifest, () =>
      this.engine.flipPointer(req.manifest_id, { allowOlder: req.replaces_cut_history === true }),
    );
  }

  /** §14: make the previous retained generation live again, through the same checks. */
  async rollback(
    req: Omit<ActivationRequest, 'manifest_id' | 'source'> = {},
  ): Promise<{ from: GenerationRef; to: GenerationRef }> {
    const target = this.engine.rollbackTarget();
    const manifest = await this.engine.loadManifest(target.artifact_manifest_id);
    let out: { from: GenerationRef; to: GenerationRef } | null = null;
    await this.pass(
      { ...req, manifest_id: target.artifact_manifest_id, source: 'rollback' },
      manifest,
      async () => {
        out = await this.engine.rollbackPointer();
        return out.to;
      },
    );
    invariant(out !== null, 'rollback flipped the pointer');
    return out;
  }

  /**
   * Report a failure that happened before the gate (a fetch, a build) so it is counted, traced and
   * evented exactly like one inside it. Errors the gate already reported are ignored.
   */
  reportFailure(
    req: Omit<ActivationRequest, 'manifest_id'> & { generation_id: string; commit_seq: number },
    err: unknown,
  ): void {
    if (typeof err === 'object' && err !== null) {
      if (this.reported.has(err)) return;
      this.reported.add(err);
    }
    const reason = (err as Error)?.message ?? String(err);
    const lc = req.lifecycle;
    if (lc && !['failed', 'quarantined', 'retired'].includes(lc.state())) lc.send({ type: 'FAIL', reason });
    req.trace?.end(lc?.state() ?? 'failed', { reason });
    this.engine.emit({
      type: 'generation_activation_failed',
      generation_id: req.generation_id,
      commit_seq: req.commit_seq,
      source: req.source,
      reason,
      serving_generation_id: this.engine.active()?.generation_id ?? null,
      details: req.details ?? {},
    });
  }

  private async pass(
    req: ActivationRequest,
    manifest: GenerationManifest,
    flip: () => Promise<GenerationRef>,
  ): Promise<GenerationRef> {
    const { engine } = this;
    const lc =
      req.lifecycle ?? startGenerationLifecycle(engine.clock, manifest.generation_id, req.manifest_id);
    const step = <T>(name: 'verify' | 'activate', fn: () => Promise<T>) =>
      req.trace ? req.trace.child(name, fn, { artifact_manifest_id: req.manifest_id }) : fn();
    const previous = engine.active();
    const t0 = engine.clock.monotonicMs();
    let warmed: { release(): void } | null = null;
    let flipped = false;
    try {
      lc.send({ type: 'VERIFY' });
      invariant(lc.state() === 'verifying', `lifecycle entered verifying (was ${lc.state()})`);
      this.trip('verify');
      warmed = await step('verify', () =>
        engine.verifyAndWarm(req.manifest_id, req.hashed_ids ? { hashed_ids: req.hashed_ids } : undefined),
      );
      this.trip('warm');
      lc.send({ type: 'VERIFIED' });
      if (!lc.canFlip()) throw new FsmeshError('internal', `lifecycle refused the flip from ${lc.state()}`);
      this.trip('flip');
      const ref = await step('activate', flip);
      flipped = true;
      lc.send({ type: 'ACTIVATE' });
      invariant(lc.state() === 'active', 'lifecycle is active after the flip');
      invariant(
        engine.active()?.artifact_manifest_id === req.manifest_id,
        'the pointer names the activated manifest',
      );
      await engine.afterFlip();
      const activate_ms = engine.clock.monotonicMs() - t0;
      req.trace?.end('active', {
        commit_seq_high: ref.commit_seq_high,
        artifact_manifest_id: ref.artifact_manifest_id,
      });
      engine.emit({
        type: 'generation_activated',
        ref,
        manifest,
        source: req.source,
        activate_ms,
        previous_generation_id: previous?.generation_id ?? null,
        details: req.details ?? {},
      });
      return ref;
    } catch (err) {
      // §14: a pointer that already moved goes back to the last healthy generation.
      if (flipped && req.source !== 'rollback') await engine.rollbackPointer().catch(() => {});
      this.reportFailure(
        {
          ...req,
          lifecycle: lc,
          generation_id: manifest.generation_id,
          commit_seq: manifest.commit_seq_high,
        },
        err,
      );
      throw err;
    } finally {
      warmed?.release();
    }
  }

  private trip(stage: GateStage): void {
    const f = this.fault;
    if (!f || f.stage !== stage) return;
    if (f.skip > 0) {
      f.skip--;
      return;
    }
    if (--f.remaining <= 0) this.fault = null;
    throw new FsmeshError('internal', `injected activation failure at ${stage}: ${f.reason}`);
  }
}
