/**
 * Multi-shard search at the engine level: a corpus split by `shardOf` over three engines,
 * merged with collection-wide statistics, ranks exactly as one engine over the whole corpus.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DocOp } from '../../src/core/capsule.ts';
import { shardOf, splitOpsByShard } from '../../src/core/sharding.ts';
import type { LocalEngine } from '../../src/engine/local-engine.ts';
import { sumLexicalStats } from '../../src/search/lexical/scoring.ts';
import { mergeShardLists } from '../../src/search/multi-shard.ts';
import { HashedEmbedder } from '../../src/search/vector/embedder.ts';
import { syntheticDocs } from '../helpers/synthetic-corpus.ts';
import { openEngine, tmpDir } from '../helpers/tmp.ts';

function corpus(n: number, seed = 7): DocOp[] {
  return syntheticDocs(n, seed).map(({ id, ...d }) => ({ op: 'upsert' as const, doc_id: id, ...d }));
}

async function shardedSearch(engines: LocalEngine[], q: string, k: number, mode: 'lexical' | 'hybrid') {
  const shares = await Promise.all(engines.map((e) => e.shardStats({ q, k, mode })));
  const stats = sumLexicalStats(shares.map((s) => s.stats));
  const lists = await Promise.all(
    engines.map((e, i) => e.shardLists({ q, k, mode, generation_id: shares[i].generation_id }, stats)),
  );
  return mergeShardLists(lists, { q, k, mode }, new HashedEmbedder(), undefined);
}

test('shardOf is stable, in range and spreads ids evenly', () => {
  // Pinned values: the placement of a document must never change for a given shard count.
  const ids = ['a', 'doc-1', 'raft', 'ünïcode', 'x'];
  assert.deepEqual(
    ids.map((id) => shardOf(id, 3)),
    [0, 2, 0, 2, 1],
  );
  assert.deepEqual(
    ids.map((id) => shardOf(id, 7)),
    [5, 4, 3, 2, 6],
  );
  assert.equal(shardOf('anything', 1), 0);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 8000; i++) counts[shardOf(`id-${i}`, 4)]++;
  for (const c of counts) assert.ok(c > 1800 && c < 2200, `uneven placement ${counts}`);
  const parts = splitOpsByShard(corpus(50), 3);
  assert.deepEqual([...parts.keys()], [0, 1, 2]);
  for (const [k, ops] of parts) for (const op of ops) assert.equal(shardOf(op.doc_id, 3), k);
});

test('three shards merged with global BM25 statistics rank exactly as one index', async () => {
  // Words that are also names on Object.prototype: statistics maps must not see those.
  const protoWords = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'];
  const ops: DocOp[] = [
    ...corpus(1500),
    ...protoWords.flatMap((w, i) =>
      Array.from({ length: 3 + i }, (_, j) => ({
        op: 'upsert' as const,
        doc_id: `proto-${w}-${j}`,
        text: `${w} w1 ${w}`,
      })),
    ),
  ];
  const single = await openEngine(tmpDir());
  await single.ingest(ops);
  await single.buildAndActivate();
  const parts = splitOpsByShard(ops, 3);
  const engines: LocalEngine[] = [];
  for (const [k, part] of parts) {
    const e = await openEngine(tmpDir(), { shard: String(k) });
    await e.ingest(part);
    await e.buildAndActivate();
    engines.push(e);
  }
  for (const q of [
    'w0',
    'w1 w2',
    'w3 w40 w200',
    'w399 w0',
    'w7 w8 w9 w10',
    'nothing-here',
    'w150',
    ...protoWords,
    'constructor valueof w1',
  ]) {
    for (const k of [1, 10, 57]) {
      const one = await single.search({ q, k, mode: 'lexical' });
      const many = await shardedSearch(engines, q, k, 'lexical');
      assert.deepEqual(
        many.hits.map((h) => h.doc_id),
        one.hits.map((h) => h.doc_id),
        `${q} k=${k}`,
      );
      many.hits.forEach((h, i) =>
        assert.ok(Math.abs(h.score - one.hits[i].score) < 1e-9, `${q}: score ${i}`),
      );
    }
  }
  // Without the global statistics each shard's idf differs: the control that the test can fail.
  const local = await Promise.all(engines.map((e) => e.search({ q: 'w3 w40 w200', k: 10, mode: 'lexical' })));
  const naive = local.flatMap((r) => r.hits).sort((a, b) => b.score - a.score);
  const one = await single.search({ q: 'w3 w40 w200', k: 10, mode: 'lexical' });
  assert.notDeepEqual(
    naive.slice(0, 10).map((h) => h.score),
    one.hits.map((h) => h.score),
  );
  const hybrid = await shardedSearch(engines, 'w1 w2', 10, 'hybrid');
  assert.equal(hybrid.hits.length, 10);
  assert.deepEqual(hybrid.tiers, ['lexical', 'vector:fsmesh-hash-ngram-256', 'rrf']);
  for (const e of [single, ...engines]) await e.close();
});

test('a snapshot read names one retained generation; a dropped or future one is refused', async () => {
  const e = await openEngine(tmpDir());
  await e.ingest(corpus(20));
  await e.buildAndActivate();
  const first = await e.shardStats({ q: 'w1', mode: 'lexical' });
  await e.ingest(corpus(30, 9).map((op) => ({ ...op, doc_id: `more-${op.doc_id}` })));
  await e.buildAndActivate();
  const pinned = await e.search({ q: 'w1', k: 50, mode: 'lexical', generation_id: first.generation_id });
  assert.equal(pinned.generation_id, first.generation_id);
  assert.ok(pinned.hits.every((h) => h.doc_id.startsWith('doc-')));
  await assert.rejects(e.search({ q: 'w1', generation_id: 'gen-99' }), /not active here yet/);
  await assert.rejects(e.search({ q: 'w1', generation_id: 'nope' }), /generation_id: expected gen-N/);
  await assert.rejects(
    e.search({ q: 'w1', generation_id: 'gen-1', min_commit_seq: 1 }),
    /cannot be combined/,
  );
  await e.close();
});
