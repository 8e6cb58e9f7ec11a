/**
 * Virtual time for the simulator: an event queue ordered by (time, sequence). Nothing happens
 * until the runner pops the next event, so a run is a pure function of its seed.
 */
import type { Clock, TimerHandle } from '../src/runtime/index.ts';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private now = 1_700_000_000_000; // a fixed epoch: wall time is virtual too
  private seq = 0;
  private heap: Timer[] = [];

  nowMs(): number {
    return this.now;
  }
  monotonicMs(): number {
    return this.now;
  }
  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const t: Timer = { at: this.now + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }
  sleep(delayMs: number): Promise<void> {
    return new Promise((r) => this.setTimeout(r, delayMs));
  }
  get pending(): number {
    return this.heap.filter((t) => !t.cancelled).length;
  }
  /** Pop and run the next timer; false when none is left before `limitMs`. */
  step(limitMs = Number.POSITIVE_INFINITY): boolean {
    for (;;) {
      const t = this.pop();
      if (!t) return false;
      if (t.cancelled) continue;
      if (t.at > limitMs) {
        this.push(t);
        this.now = Math.max(this.now, limitMs);
        return false;
      }
      this.now = Math.max(this.now, t.at);
      t.fn();
      return true;
    }
  }
  advanceTo(ms: number): void {
    this.now = Math.max(this.now, ms);
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  private pop(): Timer | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * One node's view of virtual time: its wall clock may be skewed (`skew_ms`, clock skew between
 * nodes; monotonic time is not), and the node can be paused like a SIGSTOPped process or a long
 * GC — its timers are held while paused and run, in order, when it resumes.
 */
export class NodeClock implements Clock {
  readonly base: VirtualClock;
  skew_ms = 0;
  private paused = false;
  private held: (() => void)[] = [];

  constructor(base: VirtualClock) {
    this.base = base;
  }
  nowMs(): number {
    return this.base.nowMs() + this.skew_ms;
  }
  monotonicMs(): number {
    return this.base.monotonicMs();
  }
  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    let cancelled = false;
    const h = this.base.setTimeout(() => {
      if (cancelled) return;
      if (this.paused) this.held.push(() => !cancelled && fn());
      else fn();
    }, delayMs);
    return {
      cancel: () => {
        cancelled = true;
        h.cancel();
      },
    };
  }
  sleep(delayMs: number): Promise<void> {
    return new Promise((r) => this.setTimeout(r, delayMs));
  }
  get isPaused(): boolean {
    return this.paused;
  }
  pause(): void {
    this.paused = true;
  }
  /** Resume: held timers run now, in the order they came due. */
  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const fn of held) this.base.setTimeout(fn, 0);
  }
}
