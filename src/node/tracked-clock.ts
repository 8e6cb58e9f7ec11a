/** A clock that remembers the timers it started, so stopping a node cancels every one of them. */
import type { Clock, TimerHandle } from '../runtime/index.ts';

export function trackedClock(base: Clock): { clock: Clock; cancelAll(): void } {
  const timers = new Set<TimerHandle>();
  const clock: Clock = {
    nowMs: () => base.nowMs(),
    monotonicMs: () => base.monotonicMs(),
    setTimeout(fn, ms) {
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
      for (const t of [...timers]) t.cancel();
      timers.clear();
    },
  };
}
