import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { nodeFsStorage } from '../../src/runtime/index.ts';
import { searchTwoTier } from '../../src/search/searcher.ts';
import { StaticEmbedder } from '../../src/search/vector/static-embedder.ts';
import { openEngine, REPO, tmpDir } from '../helpers/tmp.ts';

// The converted table is cached beside the installed package, so only the first run converts.
const cache = () => nodeFsStorage(path.join(REPO, 'node_modules/.cache/fsmesh'));

const DOCS = [
  {
    op: 'upsert' as const,
    doc_id: 'cat',
    text: 'The domestic cat is a small carnivorous mammal that hunts mice.',
  },
  { op: 'upsert' as const, doc_id: 'raft', text: 'Raft elects a leader and replicates a log to followers.' },
  {
    op: 'upsert' as const,
    doc_id: 'car',
    text: 'The automobile needs new tires and an oil change at the garage.',
  },
  { op: 'upsert' as const, doc_id: 'bread', text: 'Bread is baked from flour, water and yeast in an oven.' },
  {
    op: 'upsert' as const,
    doc_id: 'stocks',
    text: 'Shares fell as investors sold equities after the earnings report.',
  },
];
// Paraphrase queries sharing no word with their answer: lexical search cannot find these.
const JUDGED: [string, string][] = [
  ['kitten', 'cat'],
  ['vehicle mechanic', 'car'],
  ['bakery', 'bread'],
  ['stock market crash', 'stocks'],
];

test('static embedder: real word vectors, compact cached table, semantic similarity', async () => {
  const e = await StaticEmbedder.load(cache());
  assert.equal(e.dims, 100);
  assert.equal(e.vocab_size, 100_000);
  assert.match(e.revision_hash, /^[0-9a-f]{32}$/);
  const again = await StaticEmbedder.load(cache());
  assert.equal(again.revision_hash, e.revision_hash, 'the revision is the hash of the table: stable');
  const [q, near, far] = e.embed(['automobile repair', 'a garage that fixes cars', 'bread and yeast']);
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);
  assert.ok(dot(q, near) > dot(q, far) + 0.1);
});

test('TwoTierSearcher: the quality tier finds paraphrases lexical search cannot; both phases delivered', async () => {
  const quality = await StaticEmbedder.load(cache());
  const e = await openEngine(tmpDir(), { quality_embedder: quality });
  await e.ingest(DOCS);
  const built = await e.buildAndActivate();
  assert.equal(built!.manifest.quality_embedder?.revision_hash, quality.revision_hash);
  assert.equal(built!.manifest.vector_artifacts.filter((a) => a.tier === 'quality').length, 1);
  let found = 0;
  for (const [q, want] of JUDGED) {
    const lexical = await e.search({ q, mode: 'lexical' });
    assert.ok(!lexical.hits.some((h) => h.doc_id === want), `lexical must not find ${want} for "${q}"`);
    const r = await e.search({ q, k: 3 });
    assert.equal(r.phase, 'refined');
    assert.ok(r.tiers.includes(`quality:${quality.id}`));
    if (r.hits[0]?.doc_id === want) found++;
  }
  assert.ok(found >= 3, `quality tier found ${found}/${JUDGED.length} paraphrases at rank 1`);
  // The library API delivers the initial (fast) answer first, then the refined one.
  const pin = await e.acquire();
  const phases: string[] = [];
  const two = searchTwoTier(
    pin.reader,
    { q: 'kitten' },
    e.config.embedder,
    { embedder: quality, weight: 0.6 },
    undefined,
    (r) => phases.push(r.phase),
  );
  pin.release();
  assert.deepEqual(phases, ['initial']);
  assert.equal(two.refined?.phase, 'refined');
  const fast = await e.search({ q: 'kitten', tier: 'fast' });
  assert.equal(fast.phase, 'initial');
  await e.close();
});

test('quality-tier revision is gated like the fast embedder', async () => {
  const quality = await StaticEmbedder.load(cache());
  const dir = tmpDir();
  const w = await openEngine(dir, { quality_embedder: quality });
  await w.ingest(DOCS);
  const built = await w.buildAndActivate();
  await w.close();
  const noQuality = await openEngine(dir);
  await assert.rejects(noQuality.activateManifest(built!.ref.artifact_manifest_id), /quality-tier vectors/);
  await noQuality.close();
});
