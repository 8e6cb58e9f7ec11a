/**
 * Clock: the only way production code reads time or schedules work.
 * The simulator (sim/) passes a virtual clock; production passes systemClock.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch (wall time, for records and lag). */
  nowMs(): number;
  /** Monotonic milliseconds, for measuring durations. */
  monotonicMs(): number;
  /** Run `fn` after `delayMs`. */
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  /** Resolve after `delayMs`. */
  sleep(delayMs: number): Promise<void>;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout(fn, delayMs) {
    const t = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(t) };
  },
  sleep: (delayMs) => new Promise((resolve) => setTimeout(resolve, delayMs)),
};
