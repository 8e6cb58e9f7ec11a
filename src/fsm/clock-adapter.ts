/** xstate's clock interface backed by the injected runtime Clock, so delayed transitions run on simulated time. */
import type { Clock, TimerHandle } from '../runtime/index.ts';

/** The shape xstate's `createActor(..., { clock })` expects. */
export interface XstateClock {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
}

export function xstateClock(clock: Clock): XstateClock {
  return {
    setTimeout: (fn: (...args: unknown[]) => void, ms: number): TimerHandle => clock.setTimeout(fn, ms),
    clearTimeout: (h: unknown) => (h as TimerHandle | undefined)?.cancel(),
  };
}
