/**
 * Generation lifecycle (§6, §8.3, §14), one machine per generation:
 *   pending → building → built → verifying → warming → active → retired
 * with `failed` (build or activation failed: the pointer never moved, or was reverted) and
 * `quarantined` (the manifest is divergent or failed validation/signature: never activated, its
 * objects kept aside for inspection, §8.4). Only `warming → active` (event ACTIVATE) flips the
 * pointer: callers check `canFlip()` first, so the rule is enforced by the machine, not by habit.
 */
import { assign, createActor, type SnapshotFrom, setup } from 'xstate';
import type { Clock } from '../runtime/index.ts';
import { xstateClock } from './clock-adapter.ts';

export const GENERATION_STATES = [
  'pending',
  'building',
  'built',
  'verifying',
  'warming',
  'active',
  'retired',
  'failed',
  'quarantined',
] as const;
export type GenerationState = (typeof GENERATION_STATES)[number];

export type GenerationEvent =
  | { type: 'BUILD' }
  | { type: 'BUILT'; manifest_id: string }
  | { type: 'VERIFY' }
  | { type: 'VERIFIED' }
  | { type: 'ACTIVATE' }
  | { type: 'RETIRE' }
  | { type: 'FAIL'; reason: string }
  | { type: 'QUARANTINE'; reason: string };

export interface GenerationContext {
  generation_id: string;
  manifest_id: string | null;
  failure_reason: string | null;
}

export const generationLifecycleMachine = setup({
  types: {} as {
    context: GenerationContext;
    events: GenerationEvent;
    input: { generation_id: string; manifest_id?: string };
  },
  actions: {
    recordManifest: assign({
      manifest_id: ({ event }) => (event.type === 'BUILT' ? event.manifest_id : null),
    }),
    recordFailure: assign({
      failure_reason: ({ event }) =>
        event.type === 'FAIL' || event.type === 'QUARANTINE' ? event.reason : null,
    }),
  },
}).createMachine({
  id: 'generation_lifecycle',
  initial: 'pending',
  context: ({ input }) => ({
    generation_id: input.generation_id,
    manifest_id: input.manifest_id ?? null,
    failure_reason: null,
  }),
  states: {
    pending: {
      on: {
        BUILD: 'building',
        VERIFY: 'verifying',
        FAIL: { target: 'failed', actions: 'recordFailure' },
        QUARANTINE: { target: 'quarantined', actions: 'recordFailure' },
      },
    },
    building: {
      on: {
        BUILT: { target: 'built', actions: 'recordManifest' },
        FAIL: { target: 'failed', actions: 'recordFailure' },
      },
    },
    built: {
      on: {
        VERIFY: 'verifying',
        FAIL: { target: 'failed', actions: 'recordFailure' },
        QUARANTINE: { target: 'quarantined', actions: 'recordFailure' },
      },
    },
    verifying: {
      on: {
        VERIFIED: 'warming',
        FAIL: { target: 'failed', actions: 'recordFailure' },
        QUARANTINE: { target: 'quarantined', actions: 'recordFailure' },
      },
    },
    warming: { on: { ACTIVATE: 'active', FAIL: { target: 'failed', actions: 'recordFailure' } } },
    // A failure reported after the flip reverts the pointer to the last healthy generation (§14).
    active: { on: { RETIRE: 'retired', FAIL: { target: 'failed', actions: 'recordFailure' } } },
    retired: { type: 'final' },
    failed: { type: 'final' },
    quarantined: { type: 'final' },
  },
});

export type GenerationSnapshot = SnapshotFrom<typeof generationLifecycleMachine>;

export function startGenerationLifecycle(clock: Clock, generation_id: string, manifest_id?: string) {
  const actor = createActor(generationLifecycleMachine, {
    input: { generation_id, manifest_id },
    clock: xstateClock(clock),
  });
  actor.start();
  return {
    actor,
    send: (e: GenerationEvent) => actor.send(e),
    state: (): GenerationState => actor.getSnapshot().value as GenerationState,
    /** The pointer may flip only from `warming`. */
    canFlip: () => actor.getSnapshot().can({ type: 'ACTIVATE' }),
    context: () => actor.getSnapshot().context,
  };
}
export type GenerationLifecycle = ReturnType<typeof startGenerationLifecycle>;
