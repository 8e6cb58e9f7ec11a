/** Read options of a multi-shard query: one value per shard, every mistake named. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shardReadOptions } from '../../src/shards/read-vectors.ts';

test('snapshot, write token and as-of vectors become per-shard read options', () => {
  const q = { q: 'x', k: 5, mode: 'lexical' as const };
  assert.deepEqual(shardReadOptions({ ...q, snapshot: { 0: 'gen-3', 1: 'none', 2: 'gen-1' } }, 3).perShard, [
    { generation_id: 'gen-3' },
    { generation_id: 'none' },
    { generation_id: 'gen-1' },
  ]);
  assert.deepEqual(shardReadOptions({ ...q, min_commit_seqs: { 2: 9 }, timeout_ms: 500 }, 3).perShard, [
    {},
    {},
    { min_commit_seq: 9, timeout_ms: 500 },
  ]);
  assert.deepEqual(shardReadOptions({ ...q, as_of_commit_seq: { 0: 4, 1: 0 } }, 2).perShard, [
    { as_of_commit_seq: 4 },
    { as_of_commit_seq: 0 },
  ]);
  assert.deepEqual(shardReadOptions(q, 2).search, {
    q: 'x',
    k: 5,
    mode: 'lexical',
    tier: undefined,
    rrf_k: undefined,
  });
});

test('malformed vectors are refused with what is wrong', () => {
  const q = { q: 'x' };
  const bad = (o: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => shardReadOptions({ ...q, ...o } as never, 3), re);
  bad({ snapshot: { 0: 'gen-1' } }, /must name a generation for each of the 3 shards/);
  bad(
    { snapshot: { 0: 'gen-1', 1: 'gen-1', 7: 'gen-1' } },
    /snapshot key: a shard number from 0 to 2, got "7"/,
  );
  bad({ snapshot: { 0: 'gen-1', 1: 'gen-1', 2: '../x' } }, /snapshot\["2"\]: unexpected value/);
  bad({ snapshot: [1, 2] }, /snapshot: expected a JSON object/);
  bad({ min_commit_seqs: { 0: -1 } }, /min_commit_seqs\["0"\]/);
  bad({ min_commit_seq: 3 }, /takes min_commit_seqs, the write token/);
  bad({ as_of_commit_seq: 3 }, /takes a vector/);
  bad({ snapshot: { 0: 'gen-1', 1: 'gen-1', 2: 'gen-1' }, min_commit_seqs: { 0: 1 } }, /cannot be combined/);
  bad(
    { min_commit_seqs: { 1: 2 }, as_of_commit_seq: { 1: 1 } },
    /shard 1: as_of_commit_seq and min_commit_seqs cannot be combined/,
  );
  bad({ min_commit_seqs: { 1: 2 }, timeout_ms: 4294967296 }, /timeout_ms: must be an integer from 0 to/);
});
