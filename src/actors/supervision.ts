/**
 * Supervision for the node's actors (nact): each child gets a restart policy. A crash resets the
 * actor (fresh state; durable state lives in the engine) after an exponential back-off on the
 * injected clock, up to `max_restarts` within `window_ms`; beyond that the actor is stopped and
 * reported. The crashing message's caller gets an error instead of hanging.
 */

import { NODE_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';
import type { Clock } from '../runtime/index.ts';

export interface RestartPolicy {
  max_restarts: number;
  window_ms: number;
  backoff_base_ms: number;
  backoff_max_ms: number;
}
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  max_restarts: NODE_DEFAULTS.restart_max_restarts,
  window_ms: NODE_DEFAULTS.restart_window_ms,
  backoff_base_ms: NODE_DEFAULTS.restart_backoff_base_ms,
  backoff_max_ms: NODE_DEFAULTS.restart_backoff_max_ms,
};

export interface CrashReport {
  actor: string;
  error: string;
  restarts_in_window: number;
  action: 'restart' | 'stop';
}

/** Messages that expect an answer carry a `reply` callback. */
export interface Replyable {
  reply?: (r: { ok: true; value: unknown } | { ok: false; error: Error }) => void;
}

// nact's SupervisionContext carries the decision symbols on the context.
type NactSupervisionCtx = { reset: symbol; stop: symbol };

export function restartPolicy(
  clock: Clock,
  actor: string,
  policy: RestartPolicy,
  onReport: (r: CrashReport) => void,
) {
  const crashes: number[] = [];
  return async (msg: unknown, err: unknown, ctx: NactSupervisionCtx): Promise<symbol> => {
    const now = clock.monotonicMs(); // a window of time, not a date: immune to clock steps
    crashes.push(now);
    while (crashes.length && crashes[0] < now - policy.window_ms) crashes.shift();
    const m = msg as Replyable | undefined;
    m?.reply?.({
      ok: false,
      error: new FsmeshError(
        'internal',
        `${actor} actor crashed: ${(err as Error)?.message ?? err}; it is being restarted, retry`,
      ),
    });
    if (crashes.length > policy.max_restarts) {
      onReport({
        actor,
        error: String((err as Error)?.message ?? err),
        restarts_in_window: crashes.length,
        action: 'stop',
      });
      return ctx.stop;
    }
    onReport({
      actor,
      error: String((err as Error)?.message ?? err),
      restarts_in_window: crashes.length,
      action: 'restart',
    });
    await clock.sleep(Math.min(policy.backoff_max_ms, policy.backoff_base_ms * 2 ** (crashes.length - 1)));
    return ctx.reset;
  };
}
