/**
 * A one-shot read opens an engine without its capsule log (`open_log: false`, what `fsmesh search`
 * does): the log is not read to answer a search, is opened on first need (an as_of read's bound),
 * and writing through such an engine is refused with a clear error. Proven by damaging the log:
 * the search still answers, and only what needs the log sees the damage.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { defaultEngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { cli, openEngine, runtimeAt, tmpDir } from '../helpers/tmp.ts';

async function dataDir(): Promise<string> {
  const dir = tmpDir();
  const e = await openEngine(dir, { hnsw_min_rows: 1_000_000 });
  await e.ingest([{ op: 'upsert', doc_id: 'a', text: 'alpha beta' }]);
  await e.ingest([{ op: 'upsert', doc_id: 'b', text: 'beta gamma' }]);
  await e.buildAndActivate();
  await e.close();
  return dir;
}

/** Flip a byte inside the first record of the (only) log segment. */
function damageLog(dir: string): void {
  const logDir = path.join(dir, 'log');
  const file = path.join(logDir, fs.readdirSync(logDir).find((n) => n.endsWith('.log'))!);
  const buf = fs.readFileSync(file);
  buf[24 + 8 + 40] ^= 0xff;
  fs.writeFileSync(file, buf);
}

test('an engine opened without its log answers searches, opens the log for as_of, refuses writes', async () => {
  const dir = await dataDir();
  damageLog(dir);
  // With the log opened at start, the damage stops the engine from opening at all.
  await assert.rejects(openEngine(dir), (e: Error & { code?: string }) => e.code === 'corrupt_data');
  const e = await LocalEngine.open(runtimeAt(dir), defaultEngineConfig({ hnsw_min_rows: 1_000_000 }), {
    open_log: false,
    maintain_symbols: false,
  });
  try {
    const r = await e.search({ q: 'beta', k: 10, mode: 'lexical' });
    assert.deepEqual(r.hits.map((h) => h.doc_id).sort(), ['a', 'b']);
    assert.equal(r.commit_seq_high, 2);
    // An as_of read needs the log's head: the log is opened then, and its damage reported.
    await assert.rejects(
      e.search({ q: 'beta', k: 10, mode: 'lexical', as_of_commit_seq: 2 }),
      (err: Error & { code?: string }) => err.code === 'corrupt_data',
    );
    assert.throws(
      () => e.ingest([{ op: 'upsert', doc_id: 'c', text: 'delta' }]),
      (err: Error & { code?: string }) =>
        err.code === 'conflict' && /opened for reads only/.test(err.message),
    );
  } finally {
    await e.close();
  }
});

test('as_of reads open the log on demand and keep their bounds', async () => {
  const dir = await dataDir();
  const e = await LocalEngine.open(runtimeAt(dir), defaultEngineConfig({ hnsw_min_rows: 1_000_000 }), {
    open_log: false,
  });
  try {
    assert.equal(
      (await e.search({ q: 'beta', k: 10, mode: 'lexical', as_of_commit_seq: 2 })).commit_seq_high,
      2,
    );
    await assert.rejects(
      e.search({ q: 'beta', k: 10, mode: 'lexical', as_of_commit_seq: 9 }),
      /as_of_commit_seq 9 is beyond the head \(commit_seq_high 2\)/,
    );
    assert.equal(e.log.commitSeqHigh, 2);
  } finally {
    await e.close();
  }
});

test('fsmesh search does not read the capsule log', async () => {
  const dir = await dataDir();
  damageLog(dir);
  const r = cli(['search', '--data', dir, 'gamma', '--mode', 'lexical']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.json.hits.map((h: { doc_id: string }) => h.doc_id),
    ['b'],
  );
  // What needs the log still sees the damage.
  const v = cli(['search', '--data', dir, 'gamma', '--mode', 'lexical', '--as-of-commit-seq', '2']);
  assert.notEqual(v.code, 0);
  assert.match(v.stderr, /corrupt_data/);
});

test('vector_graphs: false (fsmesh search) never loads a graph: vector queries scan exactly', async () => {
  const dir = tmpDir();
  const w = await openEngine(dir, { hnsw_min_rows: 100 });
  await w.ingest(
    Array.from({ length: 600 }, (_, i) => ({
      op: 'upsert' as const,
      doc_id: `d${i}`,
      text: `graph scan document ${i} topic${i % 13} word${i % 29}`,
    })),
  );
  await w.buildAndActivate();
  const withGraph = await w.acquire();
  await w.vectorsOf(withGraph.reader);
  assert.ok(
    withGraph.reader.graphs.some((g) => g !== undefined),
    'the generation has a graph',
  );
  const e = await LocalEngine.open(runtimeAt(dir), defaultEngineConfig({ hnsw_min_rows: 100 }), {
    open_log: false,
    maintain_symbols: false,
    vector_graphs: false,
  });
  try {
    const r = await e.search({ q: 'topic3 word7', mode: 'vector', k: 10 });
    const pin = await e.acquire();
    try {
      assert.ok(pin.reader.vectors_loaded);
      assert.ok(
        pin.reader.graphs.every((g) => g === undefined),
        'no graph loaded',
      );
    } finally {
      pin.release();
    }
    // The same answer as an exact scan of the engine that holds the graph.
    const exact = withGraph.reader.searchVector(w.config.embedder.embed(['topic3 word7'])[0], 10, {
      exact: true,
    });
    assert.deepEqual(
      r.hits.map((h) => [h.doc_id, h.score]),
      exact.map((h) => [h.doc_id, h.score]),
    );
  } finally {
    withGraph.release();
    await e.close();
    await w.close();
  }
});
