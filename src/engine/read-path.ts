/** Read modes (§6): which retained generation a time-travel read uses; waiting for a strict read. */
import { ENGINE_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';
import type { Clock } from '../runtime/index.ts';
import type { GenerationRef, GenerationStore } from '../storage/generations.ts';

/** The newest retained generation with commit_seq_high <= asOf, or an error saying why there is none. */
export function selectAsOf(generations: GenerationStore, logHigh: number, asOf: number): GenerationRef {
  if (!Number.isSafeInteger(asOf) || asOf < 0)
    throw new FsmeshError('invalid_input', `as_of_commit_seq: must be a non-negative integer, got ${asOf}`);
  const head = generations.active?.commit_seq_high ?? 0;
  if (asOf > logHigh && asOf > head) {
    throw new FsmeshError(
      'invalid_input',
      `as_of_commit_seq ${asOf} is beyond the head (commit_seq_high ${Math.max(head, logHigh)})`,
    );
  }
  const ref = generations.findAsOf(asOf);
  if (ref) return ref;
  const oldest = [...generations.retained]
    .filter((r) => !r.rolled_back)
    .sort((a, b) => a.commit_seq_high - b.commit_seq_high)[0];
  throw new FsmeshError(
    'retention_dropped',
    oldest
      ? `no retained generation at or before commit_seq ${asOf}: the oldest retained is ${oldest.generation_id} (commit_seq_high ${oldest.commit_seq_high})`
      : 'no generation has been activated yet',
  );
}

/** A strict read's `min_commit_seq` and `timeout_ms`, checked before anything waits. */
export function checkStrictRead(min: unknown, timeoutMs: unknown): void {
  if (!Number.isSafeInteger(min) || (min as number) < 0)
    throw new FsmeshError('invalid_input', `min_commit_seq: must be a non-negative integer, got ${min}`);
  const max = ENGINE_DEFAULTS.max_strict_read_timeout_ms;
  if (
    timeoutMs !== undefined &&
    (!Number.isSafeInteger(timeoutMs) || (timeoutMs as number) < 0 || (timeoutMs as number) > max)
  )
    throw new FsmeshError(
      'invalid_input',
      `timeout_ms: must be an integer from 0 to ${max}, got ${timeoutMs}`,
    );
}

/** Strict mode: resolve once a generation covering `min` is active, or time out (injected clock). */
export function waitForActivation(
  generations: GenerationStore,
  clock: Clock,
  min: number,
  timeoutMs: number,
): Promise<void> {
  if ((generations.active?.commit_seq_high ?? 0) >= min) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      off();
      reject(
        new FsmeshError(
          'timeout',
          `strict read timed out after ${timeoutMs} ms: commit_seq ${min} is not active yet (active commit_seq_high ${generations.active?.commit_seq_high ?? 0})`,
        ),
      );
    }, timeoutMs);
    const off = generations.onActivate((ref) => {
      if (ref && ref.commit_seq_high >= min) {
        off();
        timer.cancel();
        resolve();
      }
    });
  });
}

/**
 * A snapshot read (docs/sharding.md): exactly the generation named, while it is retained here.
 * Older than anything retained: 410 retention_dropped; newer than the active one: not_found (this
 * node has not activated it yet — another member may have).
 */
export function selectGeneration(generations: GenerationStore, generationId: unknown): GenerationRef {
  if (typeof generationId !== 'string' || !/^gen-[1-9]\d{0,15}$/.test(generationId))
    throw new FsmeshError(
      'invalid_input',
      `generation_id: expected gen-N, got ${JSON.stringify(generationId)}`,
    );
  const ref = generations.retained.find((r) => r.generation_id === generationId && !r.rolled_back);
  if (ref) return ref;
  const seq = Number(generationId.slice(4));
  const active = generations.active;
  if (!active || seq > active.generation_seq)
    throw new FsmeshError(
      'not_found',
      `generation ${generationId} is not active here yet (active: ${active?.generation_id ?? 'none'})`,
    );
  throw new FsmeshError(
    'retention_dropped',
    `generation ${generationId} is no longer retained here (active: ${active.generation_id})`,
  );
}
