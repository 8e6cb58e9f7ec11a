/**
 * Node health (§8.1, §14 degraded mode, §7.2 bootstrap, §7.3 catch-up):
 *   bootstrapping → catching_up → healthy ⇄ degraded
 * In `degraded` the node serves its last healthy generation, keeps ingesting, and suspends
 * activation attempts; it enters when activation failures or unrepaired corruption pass the
 * policy thresholds and leaves when a repair succeeds.
 */
import { assign, createActor, setup } from 'xstate';
import { NODE_DEFAULTS } from '../core/defaults.ts';
import type { Clock } from '../runtime/index.ts';
import { xstateClock } from './clock-adapter.ts';

export const HEALTH_STATES = ['bootstrapping', 'catching_up', 'healthy', 'degraded'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

export interface HealthPolicy {
  /** Consecutive failed activations that demote the node. */
  max_activation_failures: number;
  /** Unrepaired corrupt objects that demote the node. */
  max_corruptions: number;
  /** While degraded, probe (scrub, retry activation) this often; 0 = never (an operator repairs). */
  degraded_probe_interval_ms?: number;
}
export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  max_activation_failures: NODE_DEFAULTS.max_activation_failures,
  max_corruptions: NODE_DEFAULTS.max_corruptions,
};

export type HealthEvent =
  | { type: 'BOOTSTRAPPED' }
  | { type: 'CAUGHT_UP' }
  | { type: 'FELL_BEHIND' }
  | { type: 'ACTIVATION_SUCCEEDED' }
  | { type: 'ACTIVATION_FAILED'; reason: string }
  | { type: 'CORRUPTION_DETECTED'; object_id: string }
  | { type: 'REPAIR_SUCCEEDED' }
  /** A degraded-mode probe found every artifact sound and activation working again. */
  | { type: 'PROBE_SUCCEEDED' }
  /** The supervisor gave up on an actor: the node cannot do that work until restarted. */
  | { type: 'ACTOR_STOPPED'; actor: string };

export interface HealthContext {
  policy: HealthPolicy;
  start_in: 'bootstrapping' | 'healthy';
  activation_failures: number;
  corruptions: number;
  reason: string | null;
  probes: number;
  onProbe: (() => void) | null;
  stopped_actors: string[];
}

export const nodeHealthMachine = setup({
  types: {} as {
    context: HealthContext;
    events: HealthEvent;
    input: { policy: HealthPolicy; initial?: 'bootstrapping' | 'healthy'; onProbe?: () => void };
  },
  delays: {
    degraded_probe: ({ context }) => context.policy.degraded_probe_interval_ms ?? 0,
  },
  guards: {
    noStoppedActors: ({ context }) => context.stopped_actors.length === 0,
    /** Degraded by failed activations only: a successful activation heals it. */
    degradedByActivationsOnly: ({ context }) =>
      context.stopped_actors.length === 0 && context.corruptions < context.policy.max_corruptions,
    probingEnabled: ({ context }) =>
      context.onProbe !== null && (context.policy.degraded_probe_interval_ms ?? 0) > 0,
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
    recordStoppedActor: assign({
      stopped_actors: ({ context, event }) =>
        event.type === 'ACTOR_STOPPED'
          ? [...new Set([...context.stopped_actors, event.actor])]
          : context.stopped_actors,
      reason: ({ context, event }) =>
        event.type === 'ACTOR_STOPPED' ? `actor ${event.actor} stopped by its supervisor` : context.reason,
    }),
    resetCounters: assign({ activation_failures: 0, corruptions: 0, reason: null, probes: 0 }),
    probe: assign({
      probes: ({ context }) => {
        context.onProbe?.();
        return context.probes + 1;
      },
    }),
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
    probes: 0,
    onProbe: input.onProbe ?? null,
    stopped_actors: [],
  }),
  // A stopped actor degrades the node from any state (requests to it fail fast meanwhile).
  on: { ACTOR_STOPPED: { target: '.degraded', actions: 'recordStoppedActor' } },
  states: {
    starting: { always: [{ guard: 'startsBootstrapping', target: 'bootstrapping' }, { target: 'healthy' }] },
    bootstrapping: { on: { BOOTSTRAPPED: 'catching_up', ACTIVATION_SUCCEEDED: 'catching_up' } },
    // Found by the strict-read routing test: failures here went uncounted, so a replica whose
    // activations kept failing while behind never degraded nor alerted.
    catching_up: {
      on: {
        CAUGHT_UP: 'healthy',
        CORRUPTION_DETECTED: { target: 'degraded', actions: 'countCorruption' },
        ACTIVATION_SUCCEEDED: { actions: 'resetActivationFailures' },
        ACTIVATION_FAILED: [
          { guard: 'activationFailuresPastThreshold', target: 'degraded', actions: 'countActivationFailure' },
          { actions: 'countActivationFailure' },
        ],
      },
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
    // §14: serve the last healthy generation; activations are suspended. With probing enabled the
    // machine asks for a probe every interval (on the injected clock); a passing probe heals.
    degraded: {
      initial: 'choosing',
      states: {
        choosing: { always: [{ guard: 'probingEnabled', target: 'waiting' }, { target: 'manual' }] },
        waiting: { after: { degraded_probe: { target: 'waiting', reenter: true, actions: 'probe' } } },
        manual: {},
      },
      on: {
        ACTIVATION_FAILED: { actions: 'countActivationFailure' },
        CORRUPTION_DETECTED: { actions: 'countCorruption' },
        REPAIR_SUCCEEDED: { guard: 'noStoppedActors', target: 'healthy', actions: 'resetCounters' },
        PROBE_SUCCEEDED: { guard: 'noStoppedActors', target: 'healthy', actions: 'resetCounters' },
        ACTOR_STOPPED: { actions: 'recordStoppedActor' },
        ACTIVATION_SUCCEEDED: {
          guard: 'degradedByActivationsOnly',
          target: 'healthy',
          actions: 'resetCounters',
        },
      },
    },
  },
});

/** The top-level state name (degraded has sub-states for its probing policy). */
export function healthStateOf(value: unknown): HealthState {
  return (typeof value === 'string' ? value : Object.keys(value as object)[0]) as HealthState;
}

export function startNodeHealth(
  clock: Clock,
  policy: Partial<HealthPolicy> = DEFAULT_HEALTH_POLICY,
  initial: 'bootstrapping' | 'healthy' = 'healthy',
  onProbe?: () => void,
) {
  const actor = createActor(nodeHealthMachine, {
    input: { policy: { ...DEFAULT_HEALTH_POLICY, ...policy }, initial, onProbe },
    clock: xstateClock(clock),
  });
  actor.start();
  const state = (): HealthState => healthStateOf(actor.getSnapshot().value);
  return {
    actor,
    send: (e: HealthEvent) => actor.send(e),
    state,
    context: () => actor.getSnapshot().context,
    /** Activations are suspended while degraded (§14). */
    canActivate: () => state() !== 'degraded',
  };
}
export type NodeHealth = ReturnType<typeof startNodeHealth>;
