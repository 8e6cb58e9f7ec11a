/**
 * A fetched object assembled on disk as its symbols arrive: sources written at their offsets in any
 * order (duplicates ignored), blocks short of sources decoded from repair symbols, the result
 * checked against the id before it is moved into place; too few symbols leave it unfinished, and
 * an abandoned assembly leaves no temporary file.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_REPAIR } from '../../src/codec/repair-descriptor.ts';
import { encodeRepairSymbols, layoutFor, sourceSymbol } from '../../src/codec/symbols.ts';
import { objectIdOf } from '../../src/core/ids.ts';
import { nodeFsStorage, seededRandom } from '../../src/runtime/index.ts';
import type { ObjectAssembly, SymbolRun } from '../../src/storage/object-assembly.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { SymbolStore } from '../../src/storage/symbol-store.ts';
import { tmpDir } from '../helpers/tmp.ts';

/** Single symbols as runs: consecutive ids joined into one run (what a peer's run frame carries). */
function putSymbols(a: ObjectAssembly, symbols: [number, Uint8Array][]): Promise<void> {
  const sorted = [...symbols].sort((x, y) => x[0] - y[0]);
  const runs: SymbolRun[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1;
    while (j < sorted.length && sorted[j][0] === sorted[j - 1][0] + 1) j++;
    runs.push({ first: sorted[i][0], data: Buffer.concat(sorted.slice(i, j).map((x) => x[1])) });
    i = j;
  }
  return a.putRuns(runs);
}

async function setup() {
  const dir = tmpDir();
  const storage = nodeFsStorage(dir);
  const objects = await ObjectStore.open(storage);
  const params = { ...DEFAULT_REPAIR, symbol_size: 512, max_block_symbols: 64 };
  const symbols = new SymbolStore(storage, objects, params);
  const bytes = new Uint8Array(150_000 + 77).map((_, i) => (i * 2654435761) >>> 24);
  const id = objectIdOf('artifact', bytes);
  const layout = layoutFor(bytes.length, params);
  const repair = new Map<number, Uint8Array>();
  for (const s of encodeRepairSymbols(bytes, layout)) repair.set(s.id, s.data);
  return { dir, objects, symbols, bytes, id, layout, repair };
}

test('sources in any order plus repairs for the gaps assemble the object, verified, in place', async () => {
  const { dir, objects, symbols, bytes, id, layout, repair } = await setup();
  const a = await symbols.assemble(id, layout);
  const rng = seededRandom(3);
  const ids = Array.from({ length: layout.source_symbols }, (_, i) => i).sort(() => rng.next() - 0.5);
  // Leave out two sources of block 1; send some twice.
  const missing = new Set([layout.blocks[1].source_start + 3, layout.blocks[1].source_start + 9]);
  const batch = ids
    .filter((i) => !missing.has(i))
    .map((i) => [i, sourceSymbol(bytes, layout, i)] as [number, Uint8Array]);
  for (let k = 0; k < batch.length; k += 37) await putSymbols(a, batch.slice(k, k + 50));
  assert.equal(a.source_received, layout.source_symbols - 2);
  assert.equal(await a.finish(), false, 'two sources short and no repair symbol yet');
  const b1 = layout.blocks[1];
  await putSymbols(
    a,
    [b1.repair_start, b1.repair_start + 1].map((r) => [r, repair.get(r)!]),
  );
  assert.equal(await symbols.completeAssembly(a), true);
  assert.deepEqual(Buffer.from(await objects.get('artifact', id)), Buffer.from(bytes));
  assert.deepEqual(fs.readdirSync(path.join(dir, 'objects', 'tmp')), []);
});

test('wrong bytes are refused and removed; an abandoned assembly leaves nothing behind', async () => {
  const { dir, objects, symbols, bytes, id, layout } = await setup();
  const a = await symbols.assemble(id, layout);
  const all = Array.from({ length: layout.source_symbols }, (_, i) => {
    const s = sourceSymbol(bytes, layout, i).slice();
    if (i === 5) s[0] ^= 1; // a peer lied about one symbol
    return [i, s] as [number, Uint8Array];
  });
  await putSymbols(a, all);
  await assert.rejects(a.finish(), /assembled bytes hash to/);
  assert.equal(await objects.has('artifact', id), false);
  await a.abandon();
  const b = await symbols.assemble(id, layout);
  await putSymbols(b, all.slice(0, 10));
  await b.abandon();
  assert.deepEqual(fs.readdirSync(path.join(dir, 'objects', 'tmp')), []);
});

/** A 10 MiB object, more than an assembly keeps ahead of its hashed prefix (8 MiB). */
async function bigSetup() {
  const dir = tmpDir();
  const storage = nodeFsStorage(dir);
  const objects = await ObjectStore.open(storage);
  const params = { ...DEFAULT_REPAIR, symbol_size: 4096, max_block_symbols: 256 };
  const symbols = new SymbolStore(storage, objects, params);
  const bytes = new Uint8Array((10 << 20) + 123).map((_, i) => (i * 2654435761) >>> 24);
  return {
    objects,
    symbols,
    bytes,
    id: objectIdOf('artifact', bytes),
    layout: layoutFor(bytes.length, params),
  };
}

/** Runs of 64 symbols, in the order `order` gives their run numbers; `lie` flips a byte of one symbol. */
async function deliver(
  s: Awaited<ReturnType<typeof bigSetup>>,
  order: (runs: number[]) => number[],
  lie = -1,
) {
  const a = await s.symbols.assemble(s.id, s.layout);
  const runs = Array.from({ length: Math.ceil(s.layout.source_symbols / 64) }, (_, i) => i);
  for (const r of order(runs)) {
    const batch: [number, Uint8Array][] = [];
    for (let i = r * 64; i < Math.min(s.layout.source_symbols, r * 64 + 64); i++) {
      const sym = sourceSymbol(s.bytes, s.layout, i).slice();
      if (i === lie) sym[7] ^= 0x40;
      batch.push([i, sym]);
    }
    await putSymbols(a, batch);
  }
  return a;
}

test('the incremental id check: runs ahead of the prefix, runs past its memory bound, lies in either', async () => {
  const s = await bigSetup();
  const swapped = (runs: number[]) =>
    runs.map((r) => (r % 2 === 0 ? Math.min(r + 1, runs.length - 1) : r - 1));
  const reversed = (runs: number[]) => [...runs].reverse();
  // Pairs swapped: every odd run waits ahead of the prefix, then is hashed from memory.
  const a = await deliver(s, (runs) => [...new Set(swapped(runs))]);
  assert.equal(await s.symbols.completeAssembly(a), true);
  assert.deepEqual(Buffer.from(await s.objects.get('artifact', s.id)), Buffer.from(s.bytes));
  await s.objects.remove('artifact', s.id);
  // A lie in a run that waited ahead is caught when the prefix reaches it.
  const b = await deliver(s, (runs) => [...new Set(swapped(runs))], 64 * 5 + 3);
  await assert.rejects(b.finish(), /assembled bytes hash to/);
  // Reversed: the last 8 MiB wait ahead, the rest is past the bound and read back from the file.
  const c = await deliver(s, reversed);
  assert.equal(await s.symbols.completeAssembly(c), true);
  assert.deepEqual(Buffer.from(await s.objects.get('artifact', s.id)), Buffer.from(s.bytes));
  await s.objects.remove('artifact', s.id);
  for (const lie of [3, s.layout.source_symbols - 2]) {
    const d = await deliver(s, reversed, lie);
    await assert.rejects(d.finish(), /assembled bytes hash to/, `a lie at symbol ${lie}`);
  }
  assert.equal(await s.objects.has('artifact', s.id), false);
});
