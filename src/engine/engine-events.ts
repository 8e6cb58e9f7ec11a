/**
 * What the engine reports, as typed events (no message strings to match): recovery of the capsule
 * log, repairs of artifacts and sealed log segments, and the outcome of every activation through
 * the gate. The node maps each one to a node event 1:1 (src/node/engine-event-bridge.ts).
 */
import type { ObjectId } from '../core/ids.ts';
import type { GenerationManifest } from '../core/manifest.ts';
import type { LogRecoveryEvent } from '../storage/capsule-log.ts';
import type { GenerationRef } from '../storage/generations.ts';

/** Every path that can make a generation live; all of them go through the ActivationGate. */
export const ACTIVATION_SOURCES = ['build', 'peer_sync', 'capsule_replay', 'cli_ingest', 'rollback'] as const;
export type ActivationSource = (typeof ACTIVATION_SOURCES)[number];

export type EngineEvent =
  | LogRecoveryEvent
  | { type: 'log_segment_repaired'; segment: string; object_id: ObjectId }
  | { type: 'log_segment_unrepairable'; segment: string; object_id: ObjectId; outcome: string }
  | { type: 'log_segment_protect_failed'; segment: string; error: string }
  | { type: 'artifact_repair_started'; object_id: ObjectId; trigger: 'read' }
  | {
      type: 'artifact_repair_completed';
      object_id: ObjectId;
      source: 'local_symbols' | 'peers';
      repaired_bytes?: number;
    }
  | { type: 'artifact_repair_failed'; object_id: ObjectId; outcome: string }
  | {
      type: 'generation_activated';
      ref: GenerationRef;
      manifest: GenerationManifest;
      source: ActivationSource;
      activate_ms: number;
      previous_generation_id: string | null;
      details: Record<string, unknown>;
    }
  | {
      type: 'generation_activation_failed';
      generation_id: string;
      commit_seq: number;
      source: ActivationSource;
      reason: string;
      serving_generation_id: string | null;
      details: Record<string, unknown>;
    };

export type EngineEventType = EngineEvent['type'];
export type EngineEventListener = (e: EngineEvent) => void;
