/**
 * Repair work scheduling with backpressure (§13 "repair storms"): at most `concurrency` repairs
 * run at once; at most `queue_bound` wait. Requests beyond that are *deferred* (kept in an
 * overflow list and admitted as room frees), never dropped. A circuit breaker per object stops
 * repeated repair of an object that keeps failing until an exponential back-off expires.
 */
import type { Clock } from '../runtime/index.ts';

export interface RepairQueueOptions {
  concurrency: number;
  queue_bound: number;
  /** Consecutive failures that open the breaker. */
  breaker_threshold: number;
  breaker_base_ms: number;
  breaker_max_ms: number;
}

export const DEFAULT_REPAIR_QUEUE: RepairQueueOptions = {
  concurrency: 2,
  queue_bound: 64,
  breaker_threshold: 3,
  breaker_base_ms: 1000,
  breaker_max_ms: 5 * 60_000,
};

export type RepairJobResult = 'repaired' | 'ok' | 'failed';

export interface RepairQueueStats {
  running: number;
  queued: number;
  deferred: number;
  completed: number;
  failures_total: number;
  breaker_open: number;
  rejected_by_breaker: number;
  /** Objects queued or being repaired here (at most 16, for status pages). */
  under_repair: string[];
}

interface Breaker {
  failures: number;
  open_until_ms: number;
}

export class RepairQueue {
  private readonly clock: Clock;
  private readonly opts: RepairQueueOptions;
  private readonly run: (key: string) => Promise<RepairJobResult>;
  private readonly queued: string[] = [];
  private readonly deferred: string[] = [];
  private readonly pending = new Set<string>();
  private readonly breakers = new Map<string, Breaker>();
  private readonly waiters = new Map<string, ((r: RepairJobResult | 'breaker_open') => void)[]>();
  private running = 0;
  private completed = 0;
  private failuresTotal = 0;
  private rejectedByBreaker = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    clock: Clock,
    run: (key: string) => Promise<RepairJobResult>,
    opts: Partial<RepairQueueOptions> = {},
  ) {
    this.clock = clock;
    this.run = run;
    this.opts = { ...DEFAULT_REPAIR_QUEUE, ...opts };
  }

  /** Ask for a repair; resolves with its result (or 'breaker_open' when the breaker refuses it). */
  request(key: string): Promise<RepairJobResult | 'breaker_open'> {
    const b = this.breakers.get(key);
    if (b && b.open_until_ms > this.clock.monotonicMs()) {
      this.rejectedByBreaker++;
      return Promise.resolve('breaker_open');
    }
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push(resolve);
      this.waiters.set(key, list);
      if (this.pending.has(key)) return; // coalesce duplicate requests
      this.pending.add(key);
      if (this.queued.length < this.opts.queue_bound) this.queued.push(key);
      else this.deferred.push(key);
      this.pump();
    });
  }

  isBreakerOpen(key: string): boolean {
    const b = this.breakers.get(key);
    return !!b && b.open_until_ms > this.clock.monotonicMs();
  }

  stats(): RepairQueueStats {
    const now = this.clock.monotonicMs();
    return {
      running: this.running,
      queued: this.queued.length,
      deferred: this.deferred.length,
      completed: this.completed,
      failures_total: this.failuresTotal,
      breaker_open: [...this.breakers.values()].filter((b) => b.open_until_ms > now).length,
      rejected_by_breaker: this.rejectedByBreaker,
      under_repair: [...this.pending].sort().slice(0, 16),
    };
  }

  /** Resolves when nothing is running, queued or deferred. */
  idle(): Promise<void> {
    if (this.running === 0 && this.queued.length === 0 && this.deferred.length === 0)
      return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.queued.length > 0) {
      const key = this.queued.shift()!;
      // Admit deferred work as queue room frees.
      if (this.deferred.length > 0) this.queued.push(this.deferred.shift()!);
      this.running++;
      void this.execute(key);
    }
    if (this.running === 0 && this.queued.length === 0 && this.deferred.length === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  private async execute(key: string): Promise<void> {
    let result: RepairJobResult;
    try {
      result = await this.run(key);
    } catch {
      result = 'failed';
    }
    this.running--;
    this.completed++;
    this.pending.delete(key);
    if (result === 'failed') {
      this.failuresTotal++;
      const b = this.breakers.get(key) ?? { failures: 0, open_until_ms: 0 };
      b.failures++;
      if (b.failures >= this.opts.breaker_threshold) {
        const backoff = Math.min(
          this.opts.breaker_max_ms,
          this.opts.breaker_base_ms * 2 ** (b.failures - this.opts.breaker_threshold),
        );
        b.open_until_ms = this.clock.monotonicMs() + backoff;
      }
      this.breakers.set(key, b);
    } else {
      this.breakers.delete(key);
    }
    const ws = this.waiters.get(key) ?? [];
    this.waiters.delete(key);
    for (const w of ws) w(result);
    this.pump();
  }
}
