/** The health machine's outward effects: degraded-mode events, the health gauge, the probe. */
import type { BuilderMsg, BuildOutcome } from '../actors/builder-actor.ts';
import type { ActorDeps } from '../actors/context.ts';
import type { BoundedRef } from '../actors/mailbox.ts';
import type { RepairMsg } from '../actors/repair-actor.ts';
import { HEALTH_STATES, type NodeHealth } from '../fsm/node-health.ts';
import type { NodeEvents } from '../obs/events.ts';
import type { NodeMetrics } from '../obs/metrics.ts';
import type { GenerationRef } from '../storage/generations.ts';

export /** Degraded-mode entry/exit events (§9) and the health gauge follow the machine. */
function observeHealth(
  health: NodeHealth,
  events: NodeEvents,
  metrics: NodeMetrics,
  active: () => GenerationRef | null,
): void {
  metrics.setHealth(health.state(), HEALTH_STATES);
  let last = health.state();
  health.actor.subscribe((snap) => {
    const st = health.state();
    if (st === last) return;
    const a = active();
    if (st === 'degraded')
      events.emit('read_degraded_mode_entered', {
        generation_id: a?.generation_id,
        commit_seq: a?.commit_seq_high,
        reason: snap.context.reason,
      });
    if (last === 'degraded')
      events.emit('read_degraded_mode_exited', {
        generation_id: a?.generation_id,
        commit_seq: a?.commit_seq_high,
        new_state: st,
      });
    last = st;
    metrics.setHealth(st, HEALTH_STATES);
  });
}

/** One degraded-mode probe: every retained artifact sound (after repairs) and, on a writer, one activation. */
export async function probeDegraded(
  deps: ActorDeps,
  repair: BoundedRef<RepairMsg>,
  builder: BoundedRef<BuilderMsg>,
): Promise<void> {
  const scrub = await repair.ask<{ results: Record<string, string> }>({ type: 'scrub' });
  if (Object.values(scrub.results).some((r) => r !== 'repaired' && r !== 'ok')) return;
  if (deps.role === 'writer') {
    const out = await builder.ask<BuildOutcome>({ type: 'build', probe: true });
    if (!out.built && out.state !== 'up_to_date') return;
  }
  deps.health.send({ type: 'PROBE_SUCCEEDED' });
}
