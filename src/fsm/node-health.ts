/**
 * Node health (§8.1, §14 degraded mode, §7.2 bootstrap, §7.3 catch-up):
 *   bootstrapping → catching_up → healthy ⇄ degraded
 * In `degraded` the node serves its last healthy generation, keeps ingesting, and suspends
 * activation attempts; it enters when activation failures or unrepaired corruption pass the
 * policy thresholds and leaves when a repair succeeds.
 */
import { assign, createActor, setup } from 'xstate';
import type { Clock } from '../runtime/index.ts';
import { xstateClock } from './clock-adapter.ts';

export const HEALTH_STATES = ['bootstrapping', 'catching_up', 'healthy', 'degraded'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

export interface HealthPolicy {
  /** Consecutive failed activations that demote the node. */
  max_activation_failures: number;
  /** Unrepaired corrupt objects that demote the node. */
  max_corruptions: number;
}
export const DEFAULT_HEALTH_POLICY: HealthPolicy = { max_activation_failures: 3, max_corruptions: 1 };

export type HealthEvent =
  | { type: 'BOOTSTRAPPED' }
  | { type: 'CAUGHT_UP' }
  | { type: 'FELL_BEHIND' }
  | { type: 'ACTIVATION_SUCCEEDED' }
  | { type: 'ACTIVATION_FAILED'; reason: string }
  | { type: 'CORRUPTION_DETECTED'; object_id: string }
  | { type: 'REPAIR_SUCCEEDED' };

export interface HealthContext {
  policy: HealthPolicy;
  start_in: 'bootstrapping' | 'healthy';
  activation_failures: number;
  corruptions: number;
  reason: string | null;
}

export const nodeHealthMachine = setup({
  types: {} as {
    context: HealthContext;
    events: HealthEvent;
    input: { policy: HealthPolicy; initial?: 'bootstrapping' | 'healthy' };
  },
  guards: {
    startsBootstrapping: ({ context }) => context.start_in === 'bootstrapping',
    activationFailuresPastThreshold: ({ context }) =>
      context.activation_failures + 1 >= context.policy.max_activation_failures,
    corruptionsPastThreshold: ({ context }) => context.corruptions + 1 >= context.policy.max_corruptions,
  },
  actions: {
    countActivationFailure: assign({
      activation_failures: ({ context }) => context.activation_failures + 1,
      reason: ({ event }) =>
        event.type === 'ACTIVATION_FAILED' ? `activation failed: ${event.reason}` : null,
    }),
    countCorruption: assign({
      corruptions: ({ context }) => context.corruptions + 1,
      reason: ({ event }) =>
        event.type === 'CORRUPTION_DETECTED' ? `unrepaired corruption in ${event.object_id}` : null,
    }),
    resetActivationFailures: assign({ activation_failures: 0 }),
    resetCounters: assign({ activation_failures: 0, corruptions: 0, reason: null }),
  },
}).createMachine({
  id: 'node_health',
  initial: 'starting',
  context: ({ input }) => ({
    policy: input.policy,
    start_in: input.initial ?? 'healthy',
    activation_failures: 0,
    corruptions: 0,
    reason: null,
  }),
  states: {
    starting: { always: [{ guard: 'startsBootstrapping', target: 'bootstrapping' }, { target: 'healthy' }] },
    bootstrapping: { on: { BOOTSTRAPPED: 'catching_up', ACTIVATION_SUCCEEDED: 'catching_up' } },
    catching_up: {
      on: { CAUGHT_UP: 'healthy', CORRUPTION_DETECTED: { target: 'degraded', actions: 'countCorruption' } },
    },
    healthy: {
      on: {
        FELL_BEHIND: 'catching_up',
        ACTIVATION_SUCCEEDED: { actions: 'resetActivationFailures' },
        ACTIVATION_FAILED: [
          { guard: 'activationFailuresPastThreshold', target: 'degraded', actions: 'countActivationFailure' },
          { actions: 'countActivationFailure' },
        ],
        CORRUPTION_DETECTED: [
          { guard: 'corruptionsPastThreshold', target: 'degraded', actions: 'countCorruption' },
          { actions: 'countCorruption' },
        ],
        REPAIR_SUCCEEDED: { actions: 'resetCounters' },
      },
    },
    degraded: {
      on: {
        ACTIVATION_FAILED: { actions: 'countActivationFailure' },
        CORRUPTION_DETECTED: { actions: 'countCorruption' },
        REPAIR_SUCCEEDED: { target: 'healthy', actions: 'resetCounters' },
      },
    },
  },
});

export function startNodeHealth(
  clock: Clock,
  policy: HealthPolicy = DEFAULT_HEALTH_POLICY,
  initial: 'bootstrapping' | 'healthy' = 'healthy',
) {
  const actor = createActor(nodeHealthMachine, { input: { policy, initial }, clock: xstateClock(clock) });
  actor.start();
  return {
    actor,
    send: (e: HealthEvent) => actor.send(e),
    state: (): HealthState => actor.getSnapshot().value as HealthState,
    context: () => actor.getSnapshot().context,
    /** Activations are suspended while degraded (§14). */
    canActivate: () => actor.getSnapshot().value !== 'degraded',
  };
}
export type NodeHealth = ReturnType<typeof startNodeHealth>;
