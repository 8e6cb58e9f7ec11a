/**
 * Objects too large to hold twice (issue 16, bounded build memory): symbols encoded from the
 * stored object block by block are the very file encoded from its bytes, and never come from
 * damaged bytes; a file written outside the store (hnswlib's graph) is adopted under the id its
 * bytes hash to, read by ranges.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_REPAIR } from '../../src/codec/repair-descriptor.ts';
import { objectPath, symbolPath } from '../../src/core/data-dir-layout.ts';
import { objectIdOf } from '../../src/core/ids.ts';
import { nodeFsStorage } from '../../src/runtime/index.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { SymbolStore } from '../../src/storage/symbol-store.ts';
import { tmpDir } from '../helpers/tmp.ts';

async function stores() {
  const dir = tmpDir();
  const storage = nodeFsStorage(dir);
  const objects = await ObjectStore.open(storage);
  // Small blocks: an object of a few hundred KiB spans several, the last one short.
  const params = { ...DEFAULT_REPAIR, max_block_symbols: 16 };
  return { dir, storage, objects, symbols: new SymbolStore(storage, objects, params) };
}

const sample = (n: number, seed: number) =>
  new Uint8Array(n).map((_, i) => (i * 131 + seed * 7 + (i >> 9)) & 255);

test('symbols encoded from the stored object by blocks equal the ones encoded from its bytes', async () => {
  const a = await stores();
  const b = await stores();
  for (const n of [0, 1, 4096, 65_537, 300_001]) {
    const bytes = sample(n, n);
    const id = objectIdOf('artifact', bytes);
    await a.objects.putVerified('artifact', id, bytes);
    await b.objects.putVerified('artifact', id, bytes);
    await a.symbols.ensure('artifact', id, bytes);
    await b.symbols.ensure('artifact', id); // read back from the store, block by block
    const fa = fs.readFileSync(path.join(a.dir, symbolPath('artifact', id)));
    const fb = fs.readFileSync(path.join(b.dir, symbolPath('artifact', id)));
    assert.ok(fa.equals(fb), `symbol files of a ${n}-byte object`);
  }
});

test('a damaged stored object gets no symbols: the block-by-block encoding re-hashes it', async () => {
  const s = await stores();
  const bytes = sample(200_000, 3);
  const id = objectIdOf('artifact', bytes);
  await s.objects.putVerified('artifact', id, bytes);
  const file = path.join(s.dir, objectPath('artifact', id));
  const bad = fs.readFileSync(file);
  bad[150_000] ^= 0x10;
  fs.writeFileSync(file, bad);
  await assert.rejects(s.symbols.ensure('artifact', id), /is corrupt/);
  assert.equal(await s.symbols.has('artifact', id), false);
  fs.writeFileSync(file, bad.subarray(0, 100_000)); // truncated
  await assert.rejects(s.symbols.ensure('artifact', id), /shorter than|is corrupt/);
  await assert.rejects(s.symbols.ensure('artifact', 'cd'.repeat(32)), /is missing/);
});

test('a file written outside the store is adopted under the id of its bytes', async () => {
  const s = await stores();
  const bytes = sample(5_000_000, 9); // over one read range
  await s.storage.mkdirp('objects/tmp');
  await s.storage.writeFile('objects/tmp/outside.bin', bytes);
  const g = await s.objects.adoptFile('artifact', 'objects/tmp/outside.bin');
  assert.deepEqual(g, { object_id: objectIdOf('artifact', bytes), size_bytes: bytes.length });
  assert.equal(await s.storage.exists('objects/tmp/outside.bin'), false);
  assert.deepEqual(await s.objects.get('artifact', g.object_id), bytes);
  // The same bytes again: the copy in place stays, the new file goes.
  await s.storage.writeFile('objects/tmp/again.bin', bytes);
  assert.deepEqual(await s.objects.adoptFile('artifact', 'objects/tmp/again.bin'), g);
  assert.equal(await s.storage.exists('objects/tmp/again.bin'), false);
});
