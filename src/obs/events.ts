/**
 * Structured events (§9, plus the critical events of §8.4 and the lag alert of §7.3). Every event
 * carries `event`, `node`, `shard`, `generation_id`, `commit_seq` and `ts_ms` plus its own fields.
 * Library users subscribe (`on`, or `for await` over `stream()`); the CLI also writes them as JSON
 * lines through pino.
 */
import type { Clock } from '../runtime/index.ts';

export const SPEC_EVENTS = [
  'generation_build_started',
  'generation_build_completed',
  'generation_activation_succeeded',
  'generation_activation_failed',
  'artifact_repair_started',
  'artifact_repair_completed',
  'artifact_repair_failed',
  'read_degraded_mode_entered',
  'read_degraded_mode_exited',
] as const;
export const CRITICAL_EVENTS = [
  'manifest_divergence_detected',
  'manifest_rejected',
  'writer_key_changed',
  'actor_stopped',
] as const;
export const ALERT_EVENTS = ['commit_lag_alert'] as const;
/** Operator actions and flow control (issue: liveness). */
export const OPERATION_EVENTS = [
  'drain_started',
  'drain_stopped',
  'write_backpressure_engaged',
  'write_backpressure_released',
  'writer_handover',
  'writer_promise',
  'log_suffix_truncated',
] as const;
/** What recovery at open and the protection of sealed log segments did (beyond §9). */
export const RECOVERY_EVENTS = [
  'log_torn_tail_cut',
  'log_torn_segment_removed',
  'log_segment_repaired',
  'log_segment_unrepairable',
  'log_segment_protect_failed',
] as const;
export type NodeEventName =
  | (typeof SPEC_EVENTS)[number]
  | (typeof CRITICAL_EVENTS)[number]
  | (typeof ALERT_EVENTS)[number]
  | (typeof RECOVERY_EVENTS)[number]
  | (typeof OPERATION_EVENTS)[number];

export interface NodeEvent {
  event: NodeEventName;
  node: string;
  shard: string;
  generation_id: string | null;
  commit_seq: number | null;
  ts_ms: number;
  severity: 'info' | 'warn' | 'critical';
  [field: string]: unknown;
}

type Listener = (e: NodeEvent) => void;

export class NodeEvents {
  private readonly listeners = new Set<Listener>();
  private readonly clock: Clock;
  readonly node: string;
  readonly shard: string;
  /** The most recent events, for status pages and tests (bounded). */
  readonly recent: NodeEvent[] = [];
  private readonly recentMax = 1000;

  constructor(clock: Clock, node: string, shard: string) {
    this.clock = clock;
    this.node = node;
    this.shard = shard;
  }

  emit(
    event: NodeEventName,
    fields: { generation_id?: string | null; commit_seq?: number | null; [k: string]: unknown } = {},
  ): NodeEvent {
    const severity = (CRITICAL_EVENTS as readonly string[]).includes(event)
      ? 'critical'
      : event.endsWith('_failed') ||
          event.endsWith('_unrepairable') ||
          event.startsWith('log_torn_') ||
          event === 'read_degraded_mode_entered' ||
          event === 'commit_lag_alert'
        ? 'warn'
        : 'info';
    const e: NodeEvent = {
      ...fields,
      event,
      node: this.node,
      shard: this.shard,
      generation_id: fields.generation_id ?? null,
      commit_seq: fields.commit_seq ?? null,
      ts_ms: this.clock.nowMs(),
      severity,
    };
    this.recent.push(e);
    if (this.recent.length > this.recentMax) this.recent.shift();
    for (const l of this.listeners) l(e);
    return e;
  }

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Async iterable of events from now on (ends when `signal` aborts). */
  async *stream(signal?: AbortSignal): AsyncGenerator<NodeEvent> {
    const queue: NodeEvent[] = [];
    let wake: (() => void) | null = null;
    const off = this.on((e) => {
      queue.push(e);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      while (!signal?.aborted) {
        if (queue.length) {
          yield queue.shift()!;
          continue;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = null;
      }
    } finally {
      off();
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
