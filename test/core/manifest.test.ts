import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeManifest, manifestProblems } from '../../src/core/manifest.ts';
import { openEngine, tmpDir } from '../helpers/tmp.ts';

async function sampleManifest() {
  const e = await openEngine(tmpDir());
  await e.ingest([
    { op: 'upsert', doc_id: 'a', text: 'alpha beta' },
    { op: 'upsert', doc_id: 'b', text: 'beta gamma', title: 'B' },
  ]);
  const built = await e.buildAndActivate();
  await e.close();
  return JSON.parse(JSON.stringify(built!.manifest));
}

test('a built manifest is valid and has every §5.2 item', async () => {
  const m = await sampleManifest();
  assert.deepEqual(manifestProblems(m), []);
  for (const k of [
    'commit_range',
    'embedder',
    'vector_artifacts',
    'lexical_artifacts',
    'repair',
    'activation_invariants',
    'generation_id',
    'parent_generation_id',
    'shard',
    'created_by',
  ]) {
    assert.ok(k in m, k);
  }
  assert.ok(m.repair.descriptors.length === m.lexical_artifacts.length + m.vector_artifacts.length);
});

test('the validator reports every problem with its field path', async () => {
  const m = await sampleManifest();
  delete m.shard;
  m.embedder.dims = 0;
  m.lexical_artifacts[0].checksum = 'md5:zz';
  m.vector_artifacts[0].quantization = 'f8';
  m.repair.descriptors[0].source_symbols = 999;
  m.extra = 1;
  const p = manifestProblems(m);
  for (const path of [
    '$.shard: missing',
    '$.embedder.dims',
    '$.lexical_artifacts[0].checksum',
    '$.vector_artifacts[0].quantization',
    '$.repair.descriptors[0].source_symbols',
    '$.extra: unknown field',
  ]) {
    assert.ok(
      p.some((x) => x.startsWith(path)),
      `expected a problem at ${path}; got ${p.join(' | ')}`,
    );
  }
});

test('unknown (newer) manifest versions are rejected', async () => {
  const m = await sampleManifest();
  m.manifest_version = 2;
  assert.throws(
    () => decodeManifest(new TextEncoder().encode(JSON.stringify(m))),
    (e: any) => e.code === 'unsupported_version',
  );
});

test('same capsules give byte-identical manifests and the same artifact_manifest_id', async () => {
  const ids = [];
  for (let run = 0; run < 2; run++) {
    const e = await openEngine(tmpDir(), { created_by: 'writer-1' });
    for (let i = 0; i < 3; i++) {
      await e.ingest([{ op: 'upsert', doc_id: `d${i}`, text: `text ${i} shared words`, title: `t${i}` }]);
      await e.ingest([{ op: 'delete', doc_id: `d${i - 1}` }]);
      await e.buildAndActivate();
    }
    ids.push(e.generations.active!.artifact_manifest_id);
    await e.close();
  }
  assert.equal(ids[0], ids[1]);
});
