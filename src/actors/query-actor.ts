/**
 * Query actor: admits searches (bounded by its mailbox), pins one generation per request
 * (§5.3) and serves the read modes: latest, strict (`min_commit_seq`, waits) and time travel
 * (`as_of_commit_seq`). Waiting strict reads do not block the mailbox.
 */
import { type Ref, spawn } from 'nact';
import type { ReadOptions } from '../engine/local-engine.ts';
import { querySpan } from '../obs/tracing.ts';
import type { SearchOptions, SearchResult } from '../search/searcher.ts';
import type { ActorDeps } from './context.ts';
import type { Replyable } from './supervision.ts';

export type QueryMsg = ({ type: 'search'; opts: SearchOptions & ReadOptions } | { type: 'crash' }) &
  Replyable;

export function readModeOf(o: ReadOptions): 'latest' | 'strict' | 'time_travel' {
  return o.as_of_commit_seq !== undefined
    ? 'time_travel'
    : o.min_commit_seq !== undefined
      ? 'strict'
      : 'latest';
}

export function spawnQueryActor(
  parent: Ref<any>,
  deps: ActorDeps,
  onCrash: (...a: any[]) => any,
): Ref<QueryMsg> {
  return spawn(
    parent,
    (state: null, msg: QueryMsg) => {
      if (msg.type === 'crash') throw new Error('injected fault in query actor');
      const t0 = deps.clock.monotonicMs();
      const span = querySpan({
        mode: msg.opts.mode ?? 'hybrid',
        read_mode: readModeOf(msg.opts),
        as_of_commit_seq: msg.opts.as_of_commit_seq,
        min_commit_seq: msg.opts.min_commit_seq,
      });
      deps.engine
        .search(msg.opts)
        .then((r: SearchResult) => {
          deps.metrics.query_latency_ms.observe(
            { mode: readModeOf(msg.opts) },
            deps.clock.monotonicMs() - t0,
          );
          const used = Number(r.generation_id.slice(4));
          deps.metrics.query_generation_skew.observe(Math.max(0, deps.latest_known_generation_seq() - used));
          span.setAttributes({
            generation_id: r.generation_id,
            commit_seq_high: r.commit_seq_high,
            hits: r.hits.length,
          });
          span.end();
          msg.reply?.({ ok: true, value: r });
        })
        .catch((error: Error) => {
          span.recordException(error);
          span.setStatus({ code: 2, message: error.message });
          span.end();
          msg.reply?.({ ok: false, error });
        });
      return state;
    },
    'query',
    { onCrash, initialState: null },
  ) as Ref<QueryMsg>;
}
