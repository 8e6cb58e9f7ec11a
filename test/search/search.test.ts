import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { nodeFsStorage } from '../../src/runtime/index.ts';
import { classifyQuery, reciprocalRankFusion } from '../../src/search/searcher.ts';
import { tokenize } from '../../src/search/text.ts';
import { HashedEmbedder } from '../../src/search/vector/embedder.ts';
import type { VectorShard } from '../../src/search/vector/fsvi.ts';
import { buildHnswFile, HnswGraph } from '../../src/search/vector/hnsw.ts';
import { openEngine, tmpDir } from '../helpers/tmp.ts';

const CORPUS = [
  { doc_id: 'd1', text: 'the quick brown fox', title: 'fox' },
  { doc_id: 'd2', text: 'the lazy dog sleeps' },
  { doc_id: 'd3', text: 'quick quick dog' },
];

/** Reference BM25 written straight from the formula, on the same tokens. */
function referenceBm25(
  docs: { doc_id: string; text: string; title?: string }[],
  query: string,
  k1 = 1.2,
  b = 0.75,
  tb = 2,
) {
  const toks = docs.map((d) => ({
    id: d.doc_id,
    text: tokenize(d.text),
    title: d.title ? tokenize(d.title) : [],
  }));
  const N = toks.length;
  const len = (t: (typeof toks)[0]) => t.text.length + tb * t.title.length;
  const avgdl = toks.reduce((s, t) => s + len(t), 0) / N;
  const scores = new Map<string, number>();
  for (const q of new Set(tokenize(query))) {
    const df = toks.filter((t) => t.text.includes(q) || t.title.includes(q)).length;
    if (df === 0) continue;
    const idf = Math.log(1 + (N - df + 0.5) / (df + 0.5));
    for (const t of toks) {
      const tf = t.text.filter((x) => x === q).length + tb * t.title.filter((x) => x === q).length;
      if (tf === 0) continue;
      scores.set(
        t.id,
        (scores.get(t.id) ?? 0) + (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * len(t)) / avgdl)),
      );
    }
  }
  return scores;
}

test('BM25 scores equal a hand-computed reference on a tiny corpus', async () => {
  const e = await openEngine(tmpDir());
  await e.ingest(CORPUS.map((d) => ({ op: 'upsert', ...d })));
  await e.buildAndActivate();
  // Hand check for "fox" on d1: N=3, df=1, idf=ln(1+2.5/1.5); tf = 1 (text) + 2*1 (title) = 3,
  // dl = 4 + 2*1 = 6, avgdl = (6+4+3)/3.
  const idf = Math.log(1 + 2.5 / 1.5);
  const avgdl = 13 / 3;
  const hand = (idf * 3 * 2.2) / (3 + 1.2 * (1 - 0.75 + (0.75 * 6) / avgdl));
  const r = await e.search({ q: 'fox', mode: 'lexical' });
  assert.equal(r.hits[0].doc_id, 'd1');
  assert.ok(Math.abs(r.hits[0].score - hand) < 1e-9);
  for (const q of ['quick dog', 'the', 'lazy fox sleeps']) {
    const ref = referenceBm25(CORPUS, q);
    const got = await e.search({ q, mode: 'lexical', k: 10 });
    assert.equal(got.hits.length, ref.size);
    for (const h of got.hits) assert.ok(Math.abs(h.score - ref.get(h.doc_id)!) < 1e-9, `${q} ${h.doc_id}`);
  }
  await e.close();
});

test('a document scores the same in one segment or spread over many, with deletes', async () => {
  const docs = Array.from({ length: 30 }, (_, i) => ({
    doc_id: `d${i}`,
    text: `alpha ${i % 3 === 0 ? 'beta' : 'gamma'} word${i % 5} shared text`,
  }));
  const one = await openEngine(tmpDir());
  await one.ingest(docs.map((d) => ({ op: 'upsert' as const, ...d })));
  await one.ingest([
    { op: 'delete', doc_id: 'd4' },
    { op: 'upsert', doc_id: 'd5', text: 'alpha beta replaced' },
  ]);
  await one.buildAndActivate();
  const many = await openEngine(tmpDir(), { max_segments: 100 });
  for (let i = 0; i < 30; i += 5) {
    await many.ingest(docs.slice(i, i + 5).map((d) => ({ op: 'upsert' as const, ...d })));
    await many.buildAndActivate();
  }
  await many.ingest([
    { op: 'delete', doc_id: 'd4' },
    { op: 'upsert', doc_id: 'd5', text: 'alpha beta replaced' },
  ]);
  await many.buildAndActivate();
  assert.equal((await many.acquire()).reader.segments.length, 7);
  for (const q of ['beta', 'alpha word3', 'replaced', 'gamma shared']) {
    const a = await one.search({ q, mode: 'lexical', k: 50 });
    const b = await many.search({ q, mode: 'lexical', k: 50 });
    assert.deepEqual(
      b.hits.map((h) => h.doc_id),
      a.hits.map((h) => h.doc_id),
      q,
    );
    b.hits.forEach((h, i) => assert.ok(Math.abs(h.score - a.hits[i].score) < 1e-9, q));
    assert.ok(!a.hits.some((h) => h.doc_id === 'd4'));
  }
  await one.close();
  await many.close();
});

test('merge policy compacts segments deterministically and keeps answers', async () => {
  const ids: string[] = [];
  const answers: string[][] = [];
  for (let run = 0; run < 2; run++) {
    const e = await openEngine(tmpDir(), { max_segments: 3 });
    for (let i = 0; i < 8; i++) {
      await e.ingest([
        { op: 'upsert', doc_id: `d${i}`, text: `merge test ${i} common` },
        { op: 'delete', doc_id: `d${i - 2}` },
      ]);
      await e.buildAndActivate();
    }
    const pin = await e.acquire();
    assert.ok(pin.reader.segments.length <= 3);
    assert.deepEqual(pin.reader.liveDocIds(), ['d6', 'd7']);
    pin.release();
    ids.push(e.generations.active!.artifact_manifest_id);
    answers.push((await e.search({ q: 'common', mode: 'hybrid' })).hits.map((h) => h.doc_id));
    await e.close();
  }
  assert.equal(ids[0], ids[1]);
  assert.deepEqual(answers[0], answers[1]);
  assert.deepEqual(answers[0].sort(), ['d6', 'd7']);
});

test('reciprocal rank fusion sums weight / (k + rank)', () => {
  const fused = reciprocalRankFusion(
    [
      {
        hits: [
          { doc_id: 'a', score: 9 },
          { doc_id: 'b', score: 5 },
        ],
        weight: 1,
      },
      {
        hits: [
          { doc_id: 'b', score: 0.9 },
          { doc_id: 'c', score: 0.1 },
        ],
        weight: 1,
      },
    ],
    60,
  );
  assert.deepEqual(
    fused.map((f) => f.doc_id),
    ['b', 'a', 'c'],
  );
  assert.ok(Math.abs(fused[0].score - (1 / 62 + 1 / 61)) < 1e-12);
  assert.ok(Math.abs(fused[1].score - 1 / 61) < 1e-12);
});

test('query classification leans lexical for identifiers', () => {
  assert.equal(classifyQuery('snake_case_name'), 'identifier');
  assert.equal(classifyQuery('"exact phrase here"'), 'identifier');
  assert.equal(classifyQuery('how do replicas repair corrupted data'), 'natural_language');
});

test('snapshot pinning: a query keeps its generation while newer ones activate and old ones retire', async () => {
  const e = await openEngine(tmpDir(), { retention: { keep_last: 2, keep_newer_than_ms: 0 } });
  await e.ingest([{ op: 'upsert', doc_id: 'a', text: 'pinned words' }]);
  await e.buildAndActivate();
  const pin = await e.acquire();
  const gen = pin.reader.generation_id;
  for (let i = 0; i < 4; i++) {
    await e.ingest([
      { op: 'upsert', doc_id: `n${i}`, text: 'pinned newer' },
      { op: 'delete', doc_id: 'a' },
    ]);
    await e.buildAndActivate();
  }
  assert.ok(!e.generations.retained.some((r) => r.generation_id === gen), 'gen-1 is retired');
  // Its objects survived GC because the query still holds it.
  // Postings are read by ranges now, from files GC must have left.
  const unpin = await pin.reader.pinTerms(['pinned']);
  const hits = pin.reader.searchLexical(['pinned'], 10);
  unpin();
  assert.deepEqual(
    hits.map((h) => h.doc_id),
    ['a'],
  );
  assert.equal(pin.reader.generation_id, gen);
  pin.release();
  await e.generations.collectGarbage();
  const { artifacts } = await e.generations.referencedObjects();
  assert.deepEqual(new Set(await e.objects.list('artifact')), artifacts, 'released generation is collected');
  await e.close();
});

test('strict mode waits for the commit to be active; times out with a clear error', async () => {
  const e = await openEngine(tmpDir());
  await e.ingest([{ op: 'upsert', doc_id: 'a', text: 'one' }]);
  await e.buildAndActivate();
  const ack = await e.ingest([{ op: 'upsert', doc_id: 'b', text: 'two' }]);
  const waiting = e.search({ q: 'two', mode: 'lexical', min_commit_seq: ack.commit_seq, timeout_ms: 5000 });
  await e.buildAndActivate();
  const r = await waiting;
  assert.ok(r.commit_seq_high >= ack.commit_seq);
  assert.equal(r.hits[0].doc_id, 'b');
  await assert.rejects(e.search({ q: 'x', min_commit_seq: 99, timeout_ms: 20 }), /timed out/);
  await e.close();
});

test('embedder revision gate: a generation built with another embedder is not activated unless overridden', async () => {
  const dir = tmpDir();
  const w = await openEngine(dir, { embedder: new HashedEmbedder(64) });
  await w.ingest([{ op: 'upsert', doc_id: 'a', text: 'gate' }]);
  const built = await w.buildAndActivate();
  await w.close();
  const other = await openEngine(dir, { embedder: new HashedEmbedder(128) });
  await assert.rejects(
    other.activateManifest(built!.ref.artifact_manifest_id),
    (err: any) => err.code === 'embedder_mismatch' && /revision/.test(err.message),
  );
  await other.close();
  const overridden = await openEngine(dir, {
    embedder: new HashedEmbedder(128),
    embedder_revision_overrides: [built!.manifest.embedder.revision_hash],
  });
  await overridden.activateManifest(built!.ref.artifact_manifest_id);
  await overridden.close();
});

test('HNSW graphs: built for large shards, deterministic, recall close to exact scan, reused by later generations', async () => {
  const docs = Array.from({ length: 400 }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `v${i}`,
    text: `vector doc ${i} topic${i % 17} term${i % 23} word${i % 7}`,
  }));
  const ids: string[] = [];
  for (let run = 0; run < 2; run++) {
    const e = await openEngine(tmpDir(), { hnsw_min_rows: 100 });
    await e.ingest(docs);
    const g1 = await e.buildAndActivate();
    const hnsw = g1!.manifest.vector_artifacts.filter((a) => a.role === 'hnsw');
    assert.equal(hnsw.length, 1);
    ids.push(g1!.ref.artifact_manifest_id);
    const pin = await e.acquire();
    assert.ok(pin.reader.graphs[0]);
    let agree = 0;
    for (let q = 0; q < 20; q++) {
      const qv = e.config.embedder.embed([`topic${q} term${q}`])[0];
      const approx = new Set(pin.reader.searchVector(qv, 10).map((h) => h.doc_id));
      const exact = pin.reader.searchVector(qv, 10, { exact: true });
      agree += exact.filter((h) => approx.has(h.doc_id)).length;
    }
    pin.release();
    assert.ok(agree / 200 >= 0.9, `recall@10 ${agree / 200}`);
    await e.ingest([{ op: 'upsert', doc_id: 'extra', text: 'one more' }]);
    const g2 = await e.buildAndActivate();
    assert.ok(
      g2!.manifest.vector_artifacts.some((a) => a.object_id === hnsw[0].object_id),
      'the graph is reused by id',
    );
    await e.close();
  }
  assert.equal(ids[0], ids[1], 'HNSW graph bytes are deterministic');
});

test('a graph file is checked against its shard before hnswlib allocates by its header; loaded off the event loop', async () => {
  const dir = tmpDir();
  const storage = nodeFsStorage(dir);
  const rows = Float32Array.from({ length: 50 * 8 }, (_, i) => Math.sin(i));
  const rel = (await buildHnswFile(storage, { dims: 8, count: 50, rows }))!;
  const shard = (count: number, dims = 8) => ({ dims, count }) as VectorShard;
  const g = await HnswGraph.openFile(storage, 'g1', rel, shard(50));
  assert.equal(g!.search(rows.subarray(8, 16), 1)[0].row, 1);
  const corrupt = (m: RegExp) => (err: Error & { code?: string }) =>
    err.code === 'corrupt_data' && /hnsw graph g1: /.test(err.message) && m.test(err.message);
  await assert.rejects(HnswGraph.openFile(storage, 'g1', rel, shard(51)), corrupt(/51/));
  await assert.rejects(HnswGraph.openFile(storage, 'g1', rel, shard(50, 16)), corrupt(/16 dims/));
  // A header claiming a billion points: refused before any allocation.
  const bytes = fs.readFileSync(path.join(dir, rel));
  const big = Buffer.from(bytes);
  big.writeBigUInt64LE(1_000_000_000n, 8);
  big.writeBigUInt64LE(1_000_000_000n, 16);
  fs.writeFileSync(path.join(dir, 'big'), big);
  await assert.rejects(HnswGraph.openFile(storage, 'g1', 'big', shard(1_000_000_000)), corrupt(/too short/));
  fs.writeFileSync(path.join(dir, 'cut'), bytes.subarray(0, 60));
  await assert.rejects(
    HnswGraph.openFile(storage, 'g1', 'cut', shard(50)),
    corrupt(/shorter than its header/),
  );
  // Past the header, hnswlib's own checks reject a damaged body.
  const body = Buffer.from(bytes.subarray(0, 96 + 50 * Number(bytes.readBigUInt64LE(24)) + 2));
  fs.writeFileSync(path.join(dir, 'body'), body);
  await assert.rejects(HnswGraph.openFile(storage, 'g1', 'body', shard(50)), corrupt(/cannot be loaded/));
  // A storage without native files (the simulator's disk) has no graph to open this way.
  assert.equal(await HnswGraph.openFile({ ...storage, nativePath: () => null }, 'g1', rel, shard(50)), null);
});
