/**
 * Open generations are bounded by `reader_cache_bytes`: the active one and pinned ones always stay;
 * other retained ones stay while they fit, most recently used first; a time-travel read of an
 * evicted generation opens it again and answers the same.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultEngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { runtimeAt, tmpDir } from '../helpers/tmp.ts';

const docs = (from: number) =>
  Array.from({ length: 50 }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `d${from + i}`,
    text: `budget document ${from + i} river`,
  }));

async function engineWith(budget: number) {
  const e = await LocalEngine.open(runtimeAt(tmpDir()), defaultEngineConfig({ reader_cache_bytes: budget }));
  for (let g = 0; g < 4; g++) {
    await e.ingest(docs(g * 50));
    await e.buildAndActivate();
  }
  return e;
}

test('no budget: only the active generation stays open; time travel reopens and answers the same', async () => {
  const e = await engineWith(0);
  assert.equal(e.open_generations, 1);
  const old = await e.search({ q: 'river', k: 100, mode: 'lexical', as_of_commit_seq: 1 });
  assert.equal(old.generation_id, 'gen-1');
  assert.equal(old.hits.length, 50);
  assert.equal(e.open_generations, 1, 'the old generation closed once its read released it');
  // Pinned: it stays open while the pin lasts, whatever the budget.
  const pin = await e.acquire({ as_of_commit_seq: 2 });
  assert.equal(e.open_generations, 2);
  pin.release();
  assert.equal(e.open_generations, 1);
  const again = await e.search({ q: 'river', k: 100, mode: 'lexical', as_of_commit_seq: 1 });
  assert.deepEqual(again.hits, old.hits);
  await e.close();
});

test('a budget keeps the most recently used generations that fit', async () => {
  const e = await engineWith(64 << 20);
  for (const s of [1, 2, 3]) await e.search({ q: 'river', k: 5, mode: 'lexical', as_of_commit_seq: s });
  assert.equal(e.open_generations, 4, 'small generations all fit in 64 MiB');
  await e.close();
  const tight = await engineWith(1);
  for (const s of [1, 2, 3]) await tight.search({ q: 'river', k: 5, mode: 'lexical', as_of_commit_seq: s });
  assert.equal(tight.open_generations, 1);
  await tight.close();
});
