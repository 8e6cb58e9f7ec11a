/** The chaos checker's history functions, on hand-made histories. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ackedWhileWriterIsolated,
  duplicateCommitSeqs,
  History,
  lostDocIds,
  maxAckLatencyMs,
  maxUnavailableMs,
  recoveryMs,
  type WriteOp,
} from '../../chaos/history.ts';

const op = (
  start: number,
  end: number,
  outcome: WriteOp['outcome'],
  seq?: number,
  ids = [`d${start}`],
): WriteOp => ({
  doc_ids: ids,
  start_ms: start,
  end_ms: end,
  outcome,
  commit_seq: seq,
  detail: '',
});

test('chaos history: unavailability, recovery after heals, lost and duplicate acknowledgements', () => {
  const h = new History();
  h.writes.push(
    op(0, 10, 'ok', 1),
    op(20, 30, 'failed'),
    op(40, 50, 'unknown'),
    op(60, 70, 'ok', 2),
    op(80, 85, 'failed'),
  );
  assert.equal(maxUnavailableMs(h.writes), 50, 'from the first failure (20) to the next success (70)');
  assert.deepEqual(h.ackedDocIds(), ['d0', 'd60']);
  h.faults.push({ cycle: 1, kind: 'kill_writer', node: 'writer', start_ms: 15, healed_ms: 35 });
  h.faults.push({ cycle: 2, kind: 'pause', node: 'replica-1', start_ms: 75, healed_ms: 78 });
  assert.deepEqual(recoveryMs(h), [
    { cycle: 1, kind: 'kill_writer', recovery_ms: 35 },
    { cycle: 2, kind: 'pause', recovery_ms: Number.POSITIVE_INFINITY },
  ]);
  assert.deepEqual(lostDocIds(['a', 'b', 'c'], new Set(['a', 'c'])), ['b']);
  assert.deepEqual(duplicateCommitSeqs([op(0, 1, 'ok', 5), op(2, 3, 'ok', 5), op(4, 5, 'failed', 5)]), [5]);
  assert.equal(maxUnavailableMs([op(0, 1, 'failed'), op(5, 9, 'failed')]), 9, 'a run that ends unavailable');
});

test('chaos history: a quorum writer cut off from every member must not acknowledge new writes', () => {
  const h = new History();
  h.faults.push({
    cycle: 1,
    kind: 'partition',
    node: 'writer',
    start_ms: 100,
    healed_ms: 200,
    isolated: ['writer'],
  });
  h.faults.push({
    cycle: 2,
    kind: 'partition',
    node: 'replica-1',
    start_ms: 300,
    healed_ms: 400,
    isolated: ['replica-1'],
  });
  h.writes.push(
    op(90, 150, 'ok', 1), // started before the cut: may have reached a replica
    op(110, 190, 'ok', 2), // started and acknowledged inside the cut: unsafe
    op(120, 250, 'ok', 3), // waited out the cut: fine
    op(310, 390, 'ok', 4), // a replica was cut, not the writer: fine
    op(130, 160, 'failed'),
  );
  assert.deepEqual(
    ackedWhileWriterIsolated(h, 'writer', 3).map((w) => w.commit_seq),
    [2],
  );
  // With five members the writer plus one other is still a minority.
  h.faults[0].isolated = ['writer', 'replica-2'];
  assert.deepEqual(
    ackedWhileWriterIsolated(h, 'writer', 5).map((w) => w.commit_seq),
    [2],
  );
  // ... but with three members, two of them are a majority: acknowledging is allowed.
  assert.deepEqual(ackedWhileWriterIsolated(h, 'writer', 3), []);
  assert.equal(maxAckLatencyMs(h.writes), 130);
});
