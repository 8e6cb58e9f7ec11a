/**
 * A peer sync hashes every object it fetches against its id as it stores it. Its activation does
 * not read the vector artifacts a second time before the flip: they are read in the background,
 * and a vector query meanwhile waits for them. Artifacts the sync did not hash (held from before)
 * are still read and verified before the flip.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { defaultEngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { objectPath } from '../../src/storage/object-store.ts';
import { runtimeAt, tmpDir } from '../helpers/tmp.ts';

const docs = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `d${from + i}`,
    text: `hashed activation document ${from + i} about ${['rivers', 'mountains', 'cities'][i % 3]}`,
  }));

async function engineWithCandidate() {
  const dir = tmpDir();
  const e = await LocalEngine.open(runtimeAt(dir), defaultEngineConfig({ hnsw_min_rows: 10 }));
  await e.ingest(docs(40));
  await e.buildAndActivate();
  await e.ingest(docs(40, 100));
  const cand = (await e.buildCandidate())!;
  const manifest = await e.generations.loadManifest(cand.manifest_id);
  const vectorIds = manifest.vector_artifacts.map((a) => a.object_id);
  assert.ok(vectorIds.length >= 2, 'the generation has vector shards and graphs');
  const allIds = new Set([...manifest.lexical_artifacts.map((a) => a.object_id), ...vectorIds]);
  return { dir, e, cand, vectorIds, allIds };
}

test('vectors hashed by the sync are read after the flip; a vector query waits for them', async () => {
  const { e, cand, allIds } = await engineWithCandidate();
  await e.gate.activate({ manifest_id: cand.manifest_id, source: 'peer_sync', hashed_ids: allIds });
  assert.equal(e.generations.active?.artifact_manifest_id, cand.manifest_id);
  const pinned = await e.pin(cand.manifest_id);
  // The flip did not wait for the vectors (they may have finished loading since; not required).
  const racing = await Promise.all([
    e.search({ q: 'rivers', mode: 'vector', k: 5 }),
    e.search({ q: 'mountains', mode: 'hybrid', k: 5 }),
  ]);
  assert.equal(pinned.reader.vectors_loaded, true);
  // Answers given while the load ran are the answers of the loaded generation (never partial).
  const loaded = [
    await e.search({ q: 'rivers', mode: 'vector', k: 5 }),
    await e.search({ q: 'mountains', mode: 'hybrid', k: 5 }),
  ];
  assert.equal(racing[0].hits.length, 5);
  assert.deepEqual(
    racing.map((r) => r.hits),
    loaded.map((r) => r.hits),
  );
  pinned.release();
  cand.release();
  await e.close();
});

test('a vector artifact the sync did not hash is read and verified before the flip', async () => {
  const { dir, e, cand, vectorIds, allIds } = await engineWithCandidate();
  // One vector artifact "held from before": damaged on disk, and not in the sync's hashed set.
  const held = vectorIds[0];
  allIds.delete(held);
  const file = path.join(dir, objectPath('artifact', held));
  const bytes = fs.readFileSync(file);
  const active = e.generations.active?.artifact_manifest_id;
  // Without repair symbols for it, the damage cannot be mended locally: activation must refuse.
  await e.symbols.remove('artifact', held).catch(() => {});
  bytes[bytes.length >> 1] ^= 0xff;
  fs.writeFileSync(file, bytes);
  await assert.rejects(
    e.gate.activate({ manifest_id: cand.manifest_id, source: 'peer_sync', hashed_ids: allIds }),
    (err: Error) => err.message.includes(held),
  );
  assert.equal(e.generations.active?.artifact_manifest_id, active, 'the pointer did not move');
  cand.release();
  await e.close();
});
