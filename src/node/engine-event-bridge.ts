/**
 * Engine events → node events, metrics and health, one to one (no message matching): each typed
 * engine event has exactly one node event name, and activations drive the §9 metrics and the
 * health machine here, whichever path (build, sync, replay) went through the gate.
 */
import type { EngineEvent } from '../engine/engine-events.ts';
import type { NodeHealth } from '../fsm/node-health.ts';
import type { NodeEventName, NodeEvents } from '../obs/events.ts';
import type { NodeMetrics } from '../obs/metrics.ts';
import type { GenerationRef } from '../storage/generations.ts';

/** The node event each engine event becomes (exhaustive: a new engine event fails to compile here). */
export const NODE_EVENT_OF: Record<EngineEvent['type'], NodeEventName> = {
  log_torn_tail_cut: 'log_torn_tail_cut',
  log_torn_segment_removed: 'log_torn_segment_removed',
  log_segment_repaired: 'log_segment_repaired',
  log_segment_unrepairable: 'log_segment_unrepairable',
  log_segment_protect_failed: 'log_segment_protect_failed',
  artifact_repair_started: 'artifact_repair_started',
  artifact_repair_completed: 'artifact_repair_completed',
  artifact_repair_failed: 'artifact_repair_failed',
  generation_activated: 'generation_activation_succeeded',
  generation_activation_failed: 'generation_activation_failed',
};

export interface BridgeTargets {
  events: NodeEvents;
  metrics: NodeMetrics;
  health: NodeHealth;
  active(): GenerationRef | null;
}

export function bridgeEngineEvent(t: BridgeTargets, e: EngineEvent): void {
  const name = NODE_EVENT_OF[e.type];
  const active = t.active();
  const at = { generation_id: active?.generation_id ?? null, commit_seq: active?.commit_seq_high ?? null };
  switch (e.type) {
    case 'generation_activated': {
      const { ref } = e;
      t.metrics.generation_activate_ms.observe(e.activate_ms);
      t.metrics.active_generation_seq.set(ref.generation_seq);
      t.metrics.active_commit_seq_high.set(ref.commit_seq_high);
      t.health.send({ type: 'ACTIVATION_SUCCEEDED' });
      t.events.emit(name, {
        ...e.details,
        generation_id: ref.generation_id,
        commit_seq: ref.commit_seq_high,
        artifact_manifest_id: ref.artifact_manifest_id,
        activate_ms: e.activate_ms,
        previous_generation_id: e.previous_generation_id,
        source: e.source,
      });
      return;
    }
    case 'generation_activation_failed':
      t.health.send({ type: 'ACTIVATION_FAILED', reason: e.reason });
      t.events.emit(name, {
        ...e.details,
        generation_id: e.generation_id,
        commit_seq: e.commit_seq,
        reason: e.reason,
        source: e.source,
        serving_generation_id: e.serving_generation_id,
      });
      return;
    default: {
      const { type: _type, ...fields } = e;
      t.events.emit(name, { ...at, ...fields });
    }
  }
}
