/**
 * Events per second over a sliding window of one-second buckets, on monotonic time (served
 * queries per second in the status, head answers and the console).
 */
import type { Clock } from '../runtime/index.ts';

export class RateMeter {
  private readonly clock: Clock;
  private readonly counts: number[];
  private second = 0; // the bucket of counts[0]'s second, advanced lazily

  constructor(clock: Clock, window_s = 10) {
    this.clock = clock;
    this.counts = new Array(window_s).fill(0);
    this.second = Math.floor(clock.monotonicMs() / 1000);
  }

  private advance(): number {
    const now = Math.floor(this.clock.monotonicMs() / 1000);
    const steps = Math.min(this.counts.length, Math.max(0, now - this.second));
    for (let i = 0; i < steps; i++) {
      this.counts.pop();
      this.counts.unshift(0);
    }
    if (now > this.second) this.second = now;
    return now;
  }

  mark(n = 1): void {
    this.advance();
    this.counts[0] += n;
  }

  /** The mean over the completed seconds of the window (the current second is still filling). */
  perSecond(): number {
    this.advance();
    let sum = 0;
    for (let i = 1; i < this.counts.length; i++) sum += this.counts[i];
    return Math.round((sum / (this.counts.length - 1)) * 100) / 100;
  }
}
