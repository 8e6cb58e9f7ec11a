/**
 * A clock that remembers the timers it started, so stopping a node cancels every one of them — and
 * starts none after: work still finishing when the node stops (an actor handling its last message,
 * a state machine's delayed transition) would otherwise arm a timer that keeps the process alive
 * (a SIGTERMed node hung for the build interval, 10 minutes, on the builder's timer).
 */
import type { Clock, TimerHandle } from '../runtime/index.ts';

export function trackedClock(base: Clock): { clock: Clock; cancelAll(): void } {
  const timers = new Set<TimerHandle>();
  let stopped = false;
  const clock: Clock = {
    nowMs: () => base.nowMs(),
    monotonicMs: () => base.monotonicMs(),
    setTimeout(fn, ms) {
      if (stopped) return { cancel: () => {} };
      const h: TimerHandle = base.setTimeout(() => {
        timers.delete(h);
        fn();
      }, ms);
      timers.add(h);
      return {
        cancel: () => {
          timers.delete(h);
          h.cancel();
        },
      };
    },
    sleep: (ms) => base.sleep(ms),
  };
  return {
    clock,
    cancelAll() {
      stopped = true;
      for (const t of [...timers]) t.cancel();
      timers.clear();
    },
  };
}
