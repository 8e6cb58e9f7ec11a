/**
 * The compute seam (src/runtime/compute.ts): a build on a worker thread writes exactly what the
 * same build inline writes — the same manifest ids generation after generation, through deletes,
 * a merge and an HNSW graph — and a worker's error comes back with its code.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { workerCompute } from '../../src/engine/compute-pool.ts';
import { defaultEngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { runtimeAt, tmpDir } from '../helpers/tmp.ts';

const upserts = (n: number, from: number) =>
  Array.from({ length: n }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `d${from + i}`,
    title: `title ${(from + i) % 7}`,
    text: `worker build document ${from + i} about ${['rivers', 'mountains', 'cities'][(from + i) % 3]}`,
  }));

async function buildHistory(e: LocalEngine): Promise<string[]> {
  const ids: string[] = [];
  const step = async () => {
    const r = await e.buildAndActivate();
    ids.push(r!.ref.artifact_manifest_id);
  };
  await e.ingest(upserts(60, 0));
  await step();
  await e.ingest(upserts(40, 30)); // rewrites d30..d59
  await e.ingest([{ op: 'delete', doc_id: 'd5' }]);
  await step();
  for (let g = 0; g < 3; g++) {
    await e.ingest(upserts(10, 100 + g * 10));
    await step(); // the fourth segment makes the merge policy fold the smallest ones
  }
  return ids;
}

test('a build on a worker thread stores the same generations, byte for byte, as inline', async () => {
  // Windows over 25 upserts are cut into segments, each with its own graph: built in parallel.
  const cfg = { max_segments: 4, hnsw_min_rows: 20, segment_max_docs: 25 };
  const inlineDir = tmpDir();
  const workerDir = tmpDir();
  const lost: string[] = [];
  const pool = workerCompute({ threads: 2, onThreadLost: (t) => lost.push(t) });
  const tasks: string[] = [];
  const compute = {
    ...pool,
    run: <O>(t: string, i: unknown, inl: () => Promise<O>) => {
      tasks.push(t);
      return pool.run(t, i, inl);
    },
  };
  try {
    const a = await LocalEngine.open(runtimeAt(inlineDir), defaultEngineConfig(cfg));
    const b = await LocalEngine.open({ ...runtimeAt(workerDir), compute }, defaultEngineConfig(cfg));
    const inlineIds = await buildHistory(a);
    const workerIds = await buildHistory(b);
    assert.deepEqual(workerIds, inlineIds);
    // Every build went to the thread, and none fell back inline.
    assert.equal(tasks.filter((t) => t === 'assemble_generation').length, 5);
    // The first window (60 upserts) is three parts of at most 25: three build_part tasks.
    assert.ok(tasks.filter((t) => t === 'build_part').length >= 7, tasks.join());
    assert.ok(tasks.filter((t) => t === 'build_hnsw').length >= 3, tasks.join());
    assert.deepEqual(lost, []);
    const first = await b.generations.loadManifest(workerIds[0]);
    assert.equal(first.lexical_artifacts.filter((l) => l.role === 'segment').length, 3);
    assert.equal(first.vector_artifacts.filter((v) => v.role === 'hnsw').length, 3);
    const m = await b.generations.loadManifest(workerIds.at(-1)!);
    assert.ok(
      m.vector_artifacts.some((v) => v.role === 'hnsw'),
      'the worker built an HNSW graph',
    );
    // Everything the worker wrote is there, hashes to its id, and has its repair symbols.
    const report = await b.verify();
    assert.deepEqual([report.corrupt, report.missing], [[], []]);
    for (const art of [...m.lexical_artifacts, ...m.vector_artifacts])
      assert.ok(await b.symbols.has('artifact', art.object_id), `symbols of ${art.object_id}`);
    // The worker's temporary files never stay behind.
    assert.deepEqual(fs.readdirSync(path.join(workerDir, 'objects', 'tmp')), []);
    const hits = await b.search({ q: 'rivers', k: 5, mode: 'lexical' });
    assert.ok(hits.hits.length > 0);
    await a.close();
    await b.close();
  } finally {
    await pool.close();
  }
});

test('a worker task error comes back with its code; an input that cannot travel runs inline', async () => {
  const compute = workerCompute({ threads: 1 });
  try {
    await assert.rejects(
      compute.run('no_such_task', {}, async () => 'inline'),
      (err: Error & { code?: string }) =>
        err.code === 'invalid_input' && /unknown compute task/.test(err.message),
    );
    // A function cannot be cloned to a thread: the task runs here instead of failing.
    const lost: string[] = [];
    const c2 = workerCompute({ threads: 1, onThreadLost: (t) => lost.push(t) });
    assert.equal(await c2.run('encode_symbols', { f: () => 1 }, async () => 'inline'), 'inline');
    assert.deepEqual(lost, ['encode_symbols']);
    await c2.close();
  } finally {
    await compute.close();
  }
});
