/**
 * Ingest actor: validates document ops and appends them as one capsule. It does not wait for the
 * fsync inside its handler (so concurrent requests share group commits); the caller's reply comes
 * when the commit is durable per the node's durability mode, carrying its commit_seq.
 */
import { type Ref, spawn } from 'nact';
import type { DocOp } from '../core/capsule.ts';
import { FsmeshError } from '../core/errors.ts';
import type { AppendAck } from '../storage/capsule-log.ts';
import type { ActorDeps } from './context.ts';
import type { Replyable } from './supervision.ts';

export type IngestMsg = ({ type: 'ingest'; ops: DocOp[]; idempotency_key?: string } | { type: 'crash' }) &
  Replyable;

export function spawnIngestActor(
  parent: Ref<any>,
  deps: ActorDeps,
  onCrash: (...a: any[]) => any,
): Ref<IngestMsg> {
  return spawn(
    parent,
    (state: null, msg: IngestMsg) => {
      if (msg.type === 'crash') throw new Error('injected fault in ingest actor');
      if (deps.role !== 'writer') {
        msg.reply?.({
          ok: false,
          error: new FsmeshError('conflict', 'this node is a replica: send writes to the shard writer'),
        });
        return state;
      }
      // Bad input is an error reply, never a crash (five crashes stop the actor for good).
      Promise.resolve()
        .then(() => deps.engine.ingest(msg.ops, { idempotency_key: msg.idempotency_key }))
        .then(async (ack: AppendAck) => {
          // Quorum durability: the p2p layer resolves once a majority has fsync'd the commit.
          if (deps.hooks.afterLocalCommit) await deps.hooks.afterLocalCommit(ack);
          return ack;
        })
        .then((ack: AppendAck) => {
          if (!ack.deduplicated) {
            deps.metrics.ingest_commits_total.inc();
            deps.metrics.ingest_docs_total.inc(msg.ops.length);
            deps.metrics.commit_seq_high.set(deps.engine.log.commitSeqHigh);
            deps.refs.builder?.tell({
              type: 'commit_durable',
              commit_seq: ack.commit_seq,
              durable_at_ms: deps.clock.nowMs(),
            });
          }
          msg.reply?.({ ok: true, value: ack });
        })
        .catch((error: Error) => msg.reply?.({ ok: false, error }));
      return state;
    },
    'ingest',
    { onCrash, initialState: null },
  ) as Ref<IngestMsg>;
}
