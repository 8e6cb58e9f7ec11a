/**
 * The steps of a build in parts (src/engine/build-task.ts): jobs run at most N at once, results in
 * job order, nothing new starts after a failure; a user's embedder that cannot travel to a thread
 * keeps its parts on the caller's thread, one at a time, with the bytes of an inline build.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { workerCompute } from '../../src/engine/compute-pool.ts';
import { runLimited } from '../../src/engine/hnsw-graphs.ts';
import { defaultEngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { HashedEmbedder } from '../../src/search/vector/embedder.ts';
import { runtimeAt, tmpDir } from '../helpers/tmp.ts';

test('runLimited: job order kept, at most `limit` at once, no job starts after a failure', async () => {
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const job =
    (i: number, fail = false) =>
    async () => {
      started.push(i);
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5 - (i % 3)));
      running--;
      if (fail) throw new Error(`job ${i} failed`);
      return i * 10;
    };
  assert.deepEqual(
    await runLimited(
      [0, 1, 2, 3, 4].map((i) => job(i)),
      2,
    ),
    [0, 10, 20, 30, 40],
  );
  assert.equal(peak, 2);
  started.length = 0;
  await assert.rejects(runLimited([job(0), job(1, true), job(2), job(3), job(4)], 1), /job 1 failed/);
  assert.deepEqual(started, [0, 1]);
});

test('an embedder without a spec builds its parts here, byte for byte as inline', async () => {
  // Same vectors as the hashed embedder, but no spec: it cannot be rebuilt on a worker.
  class LocalOnly extends HashedEmbedder {
    override get spec() {
      return undefined as never;
    }
  }
  const cfg = { segment_max_docs: 20, hnsw_min_rows: 10, embedder: new LocalOnly(64) };
  const docs = Array.from({ length: 70 }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `d${i}`,
    text: `part build ${i} ${['north', 'south', 'east'][i % 3]}`,
  }));
  const pool = workerCompute({ threads: 2 });
  const tasks: string[] = [];
  try {
    const a = await LocalEngine.open(runtimeAt(tmpDir()), defaultEngineConfig(cfg));
    const b = await LocalEngine.open(
      {
        ...runtimeAt(tmpDir()),
        compute: {
          ...pool,
          run: (t, i, inl) => {
            tasks.push(t);
            return pool.run(t, i, inl);
          },
        },
      },
      defaultEngineConfig(cfg),
    );
    await a.ingest(docs);
    await b.ingest(docs);
    const ra = await a.buildAndActivate();
    const rb = await b.buildAndActivate();
    assert.equal(rb?.ref.artifact_manifest_id, ra?.ref.artifact_manifest_id);
    assert.equal(tasks.filter((t) => t === 'build_part' || t === 'assemble_generation').length, 0);
    assert.ok(tasks.includes('build_hnsw'), 'graphs still go to the threads');
    await a.close();
    await b.close();
  } finally {
    await pool.close();
  }
});
