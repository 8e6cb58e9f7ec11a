/**
 * A cap on what a node uploads to peers (`node start --serve-rate-limit MB/s`): a realistic WAN
 * link, and what makes fetching from several peers measurable on one machine. The link is modelled
 * as a queue: each answer takes its size / rate of link time and leaves at the end of its slot.
 * When the queue is longer than `max_queue_ms` the request is refused at once (busy), so the asker
 * moves to another peer instead of waiting out its deadline.
 */
import { FsmeshError, invariant } from '../core/errors.ts';
import type { Clock } from '../runtime/index.ts';

export class ServeRateLimit {
  private readonly clock: Clock;
  readonly bytes_per_s: number;
  private readonly maxQueueMs: number;
  /** When the link is next free (monotonic ms). */
  private freeAtMs = 0;

  constructor(clock: Clock, bytesPerS: number, maxQueueMs = 4_000) {
    invariant(Number.isFinite(bytesPerS) && bytesPerS > 0, 'serve rate limit must be a positive rate');
    this.clock = clock;
    this.bytes_per_s = bytesPerS;
    this.maxQueueMs = maxQueueMs;
  }

  /** Wait until `bytes` may leave; refuse (busy) when the link is booked too far ahead. */
  async take(bytes: number): Promise<void> {
    const now = this.clock.monotonicMs();
    const start = Math.max(now, this.freeAtMs);
    if (start - now > this.maxQueueMs)
      throw new FsmeshError(
        'busy',
        `upload capped at ${(this.bytes_per_s / 1e6).toFixed(2)} MB/s: ${Math.round(start - now)} ms already queued`,
      );
    this.freeAtMs = start + (bytes / this.bytes_per_s) * 1000;
    const wait = this.freeAtMs - now;
    if (wait >= 1) await this.clock.sleep(wait);
  }
}

/** The total size of response frames, as the limiter counts them. */
export function framesBytes(frames: Uint8Array[]): number {
  let n = 0;
  for (const f of frames) n += f.length;
  return n;
}

/** The node's cap from its options (none when unset). */
export function serveRateLimitOf(bytesPerS: number | undefined, clock: Clock): ServeRateLimit | undefined {
  return bytesPerS === undefined ? undefined : new ServeRateLimit(clock, bytesPerS);
}
