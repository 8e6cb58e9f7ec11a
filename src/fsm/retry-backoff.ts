/**
 * Retry with back-off as a machine (lifecycle policy, not ad-hoc loops): `idle` until a FAILED
 * attempt, then `backing_off` for a delay that grows with each consecutive failure (exponential or
 * linear, capped), then `onRetry` fires and the machine waits for the attempt's outcome. After
 * `max_attempts` consecutive failures it `gave_up` until RESET. Delays run on the injected clock,
 * so the simulator controls them.
 */
import { assign, createActor, setup } from 'xstate';
import type { Clock } from '../runtime/index.ts';
import { xstateClock } from './clock-adapter.ts';

export interface RetryPolicy {
  base_ms: number;
  max_ms: number;
  growth: 'exponential' | 'linear';
  /** Consecutive failures before giving up (Infinity: never). */
  max_attempts: number;
}

export type RetryEvent = { type: 'FAILED' } | { type: 'SUCCEEDED' } | { type: 'RESET' };

interface RetryContext {
  policy: RetryPolicy;
  failures: number;
  onRetry: () => void;
}

/** Delay before the retry that follows the `failures`-th consecutive failure (failures >= 1). */
export function backoffDelayMs(p: RetryPolicy, failures: number): number {
  const raw = p.growth === 'exponential' ? p.base_ms * 2 ** (failures - 1) : p.base_ms * failures;
  return Math.min(p.max_ms, raw);
}

export const retryBackoffMachine = setup({
  types: {} as {
    context: RetryContext;
    events: RetryEvent;
    input: { policy: RetryPolicy; onRetry: () => void };
  },
  delays: { backoff: ({ context }) => backoffDelayMs(context.policy, context.failures) },
  guards: { exhausted: ({ context }) => context.failures + 1 >= context.policy.max_attempts },
  actions: {
    countFailure: assign({ failures: ({ context }) => context.failures + 1 }),
    reset: assign({ failures: 0 }),
    retry: ({ context }) => context.onRetry(),
  },
}).createMachine({
  id: 'retry_backoff',
  initial: 'idle',
  context: ({ input }) => ({ policy: input.policy, failures: 0, onRetry: input.onRetry }),
  states: {
    idle: {
      on: {
        FAILED: [
          { guard: 'exhausted', target: 'gave_up', actions: 'countFailure' },
          { target: 'backing_off', actions: 'countFailure' },
        ],
        SUCCEEDED: { actions: 'reset' },
        RESET: { actions: 'reset' },
      },
    },
    backing_off: {
      after: { backoff: { target: 'idle', actions: 'retry' } },
      on: {
        // A failure from another trigger restarts the wait with the longer delay.
        FAILED: [
          { guard: 'exhausted', target: 'gave_up', actions: 'countFailure' },
          { target: 'backing_off', reenter: true, actions: 'countFailure' },
        ],
        SUCCEEDED: { target: 'idle', actions: 'reset' },
        RESET: { target: 'idle', actions: 'reset' },
      },
    },
    gave_up: {
      on: { RESET: { target: 'idle', actions: 'reset' }, SUCCEEDED: { target: 'idle', actions: 'reset' } },
    },
  },
});

export function startRetryBackoff(clock: Clock, policy: RetryPolicy, onRetry: () => void) {
  const actor = createActor(retryBackoffMachine, { input: { policy, onRetry }, clock: xstateClock(clock) });
  actor.start();
  return {
    actor,
    send: (e: RetryEvent) => actor.send(e),
    state: () => actor.getSnapshot().value as 'idle' | 'backing_off' | 'gave_up',
    failures: () => actor.getSnapshot().context.failures,
    stop: () => actor.stop(),
  };
}
export type RetryBackoff = ReturnType<typeof startRetryBackoff>;
