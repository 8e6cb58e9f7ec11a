/**
 * The steps of a build in parts (src/engine/build-task.ts): jobs run at most N at once, results in
 * job order, nothing new starts after a failure; a user's embedder that cannot travel to a thread
 * keeps its parts on the caller's thread, one at a time, with the bytes of an inline build; a merge that
 * finds a parent shard damaged repairs it and the build goes on.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
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

test('a merge that reads a damaged parent shard repairs it from local symbols and the build goes on', async () => {
  const dir = tmpDir();
  const cfg = { max_segments: 3, hnsw_min_rows: 1_000_000, segment_max_docs: 25 };
  const upserts = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => ({
      op: 'upsert' as const,
      doc_id: `m${from + i}`,
      text: `merge repair document ${from + i} about ${['rivers', 'hills'][(from + i) % 2]}`,
    }));
  const a = await LocalEngine.open(runtimeAt(dir), defaultEngineConfig(cfg));
  await a.ingest(upserts(60, 0)); // three parts: three segments of 25, 25 and 10 (the most allowed)
  const g1 = await a.buildAndActivate();
  await a.close();
  const shards = g1!.manifest.vector_artifacts.filter((v) => v.role === 'fsvi');
  assert.equal(shards.length, 3);
  const fileOf = (id: string) => path.join(dir, 'objects/artifact', id.slice(0, 2), id);
  const good = new Map(shards.map((s) => [s.object_id, fs.readFileSync(fileOf(s.object_id))]));
  for (const [id, bytes] of good) {
    const bad = Buffer.from(bytes);
    bad[bad.length - 5] ^= 0xff; // one row byte: local repair symbols rebuild it
    fs.writeFileSync(fileOf(id), bad);
  }
  // Vectors are not warmed: the next build's merge is the first to read the damaged shards.
  const seen: string[] = [];
  const b = await LocalEngine.open(runtimeAt(dir), defaultEngineConfig(cfg), {
    warm_vectors: false,
    onEvent: (e) => seen.push(e.type),
  });
  try {
    for (let g = 0; g < 2; g++) {
      await b.ingest(upserts(10, 100 + g * 10));
      assert.ok(await b.buildAndActivate(), `build ${g} activated`);
    }
    const m = await b.generations.loadManifest(b.generations.active!.artifact_manifest_id);
    assert.ok(m.lexical_artifacts.filter((l) => l.role === 'segment').length <= 3, 'a merge ran');
    assert.ok(seen.includes('artifact_repair_completed'), seen.join());
    const repaired = [...good].filter(([id, bytes]) => fs.readFileSync(fileOf(id)).equals(bytes));
    assert.ok(repaired.length >= 1, 'the merged shards hold their objects again');
    assert.equal((await b.search({ q: 'rivers', mode: 'lexical', k: 100 })).hits.length, 40);
  } finally {
    await b.close();
  }
});
