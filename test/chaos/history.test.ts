/** The chaos checker's history functions, on hand-made histories. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  duplicateCommitSeqs,
  History,
  lostDocIds,
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
