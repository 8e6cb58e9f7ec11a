/**
 * Serving symbols (the symbols protocol's read path): answers come in the order asked, each checked
 * against its crc (a damaged one is left out), the file header is read once for many requests, and
 * a request for scattered ids never reads more than a few symbols beyond what it names — a peer
 * cannot make the node read (and allocate) a whole object by asking for its first and last symbol.
 * A truncated object file gives only the source symbols it still holds whole. Run frames (many
 * consecutive symbols in one frame) carry the same symbols, split where one fails its crc; a run
 * read into a reused (dirty) pooled frame carries the same bytes, its padding zeroed.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_REPAIR } from '../../src/codec/repair-descriptor.ts';
import { servedFrames } from '../../src/core/frame-pool.ts';
import { objectIdOf } from '../../src/core/ids.ts';
import { parseSymbolRun } from '../../src/p2p/protocols.ts';
import { nodeFsStorage, type Storage } from '../../src/runtime/index.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { SymbolStore } from '../../src/storage/symbol-store.ts';
import { tmpDir } from '../helpers/tmp.ts';

function counting(inner: Storage) {
  const reads: { path: string; length: number }[] = [];
  const storage: Storage = {
    ...inner,
    readRange: async (p, o, l) => {
      reads.push({ path: p, length: l });
      return inner.readRange(p, o, l);
    },
  };
  return { storage, reads };
}

test('symbols are served in the order asked, crc-checked, with reads bounded by what was asked', async () => {
  const dir = tmpDir();
  const { storage, reads } = counting(nodeFsStorage(dir));
  const objects = await ObjectStore.open(storage);
  const params = { ...DEFAULT_REPAIR, symbol_size: 1024 };
  const symbols = new SymbolStore(storage, objects, params);
  const bytes = new Uint8Array(2 * 1024 * 1024 + 100).map((_, i) => (i * 7919) % 251);
  const id = objectIdOf('artifact', bytes);
  await objects.putVerified('artifact', id, bytes);
  await symbols.ensure('artifact', id, bytes);
  const layout = await symbols.layout('artifact', id);
  const last = layout.source_symbols + layout.repair_symbols - 1;

  reads.length = 0;
  const ids = [last, 0, layout.source_symbols - 1, layout.source_symbols];
  const got = await symbols.getSymbols('artifact', id, ids);
  assert.deepEqual([...got.keys()], ids);
  // The last source symbol is zero-padded past the object's end, like the codec's.
  assert.equal(got.get(layout.source_symbols - 1)!.length, 1024);
  const readBytes = reads.reduce((n, r) => n + r.length, 0);
  assert.ok(readBytes <= 8 * 1024, `read ${readBytes} bytes for 4 symbols`);
  // The header was parsed by layout() and reused: no read of the crc tables this time.
  assert.ok(
    reads.every((r) => r.length <= 1024),
    JSON.stringify(reads),
  );

  // A damaged repair symbol on disk is left out of the answer; the others still come.
  const symFile = fs
    .readdirSync(path.join(dir, 'symbols'), { recursive: true })
    .map(String)
    .find((f) => f.includes(id.slice(4)) || f.includes(id));
  assert.ok(symFile, 'symbol file on disk');
  const full = path.join(dir, 'symbols', symFile);
  const raw = fs.readFileSync(full);
  raw[raw.length - 10] ^= 0xff; // inside the last repair symbol
  fs.writeFileSync(full, raw);
  const again = await symbols.getSymbols('artifact', id, [last - 1, last, 3]);
  assert.deepEqual([...again.keys()], [last - 1, 3]);

  // A truncated object file (read without a stat first): the symbols it no longer holds whole
  // fail their crc and are left out; those before the cut, and repair symbols, still come.
  const objFile = fs
    .readdirSync(path.join(dir, 'objects'), { recursive: true })
    .map(String)
    .find((f) => f.endsWith(id))!;
  fs.truncateSync(path.join(dir, 'objects', objFile), 1024 * 5 + 10);
  const cut = await symbols.getSymbols('artifact', id, [0, 4, 5, 6, layout.source_symbols - 1, last - 1]);
  assert.deepEqual([...cut.keys()], [0, 4, last - 1]);
});

/** An object of 300 KiB + 100 bytes held with its repair symbols (1 KiB symbols) in `storage`. */
async function heldObject(storage: Storage) {
  const objects = await ObjectStore.open(storage);
  const symbols = new SymbolStore(storage, objects, { ...DEFAULT_REPAIR, symbol_size: 1024 });
  const bytes = new Uint8Array(300 * 1024 + 100).map((_, i) => (i * 7919) % 251);
  const id = objectIdOf('artifact', bytes);
  await objects.putVerified('artifact', id, bytes);
  await symbols.ensure('artifact', id, bytes);
  return { symbols, bytes, id, layout: await symbols.layout('artifact', id) };
}

/** The object's file on disk under `dir`. */
function objectFile(dir: string, id: string): string {
  const rel = fs
    .readdirSync(path.join(dir, 'objects'), { recursive: true })
    .map(String)
    .find((f) => f.endsWith(id))!;
  return path.join(dir, 'objects', rel);
}

test('run frames: consecutive symbols read straight into one frame, split where one fails its crc', async () => {
  for (const wrap of [false, true]) {
    const dir = tmpDir();
    // Wrapped: a Storage that ignores readRange's `into` hint (the frame is then filled by a copy).
    const storage = wrap ? counting(nodeFsStorage(dir)).storage : nodeFsStorage(dir);
    const { symbols, id, layout } = await heldObject(storage);
    const S = layout.source_symbols;
    /** Each frame as [first, count], and its symbols checked against getSymbols' answer. */
    const runs = async (ranges: [number, number][]) => {
      const frames = await symbols.getSymbolRuns('artifact', id, ranges);
      const out: [number, number][] = [];
      for (const f of frames) {
        const r = parseSymbolRun(f, 1024);
        const ids = Array.from({ length: r.count }, (_, i) => r.first + i);
        const one = await symbols.getSymbols('artifact', id, ids);
        ids.forEach((x, i) =>
          assert.deepEqual(Buffer.from(r.data.subarray(i * 1024, (i + 1) * 1024)), Buffer.from(one.get(x)!)),
        );
        out.push([r.first, r.count]);
      }
      return out;
    };
    assert.deepEqual(await runs([[0, 10]]), [[0, 10]]);
    // The last source symbol, zero-padded; a range across the source / repair boundary is two runs.
    assert.deepEqual(await runs([[S - 2, S + 3]]), [
      [S - 2, 2],
      [S, 3],
    ]);
    // A damaged source symbol splits its run; the others still come.
    const full = objectFile(dir, id);
    const raw = fs.readFileSync(full);
    raw[1024 * 4 + 7] ^= 0xff;
    fs.writeFileSync(full, raw);
    assert.deepEqual(await runs([[2, 9]]), [
      [2, 2],
      [5, 4],
    ]);
    // Cut short: only whole symbols before the cut.
    fs.truncateSync(full, 1024 * 12 + 10);
    assert.deepEqual(await runs([[10, 20]]), [[10, 2]]);
    await assert.rejects(
      symbols.getSymbolRuns('artifact', id, [[0, S + layout.repair_symbols + 1]]),
      /outside/,
    );
  }
});

test('a run read into a reused frame: the same symbols, the padding zeroed, a cut file not served stale', async () => {
  const dir = tmpDir();
  const { symbols, bytes, id, layout } = await heldObject(nodeFsStorage(dir));
  const S = layout.source_symbols;
  /** Leave a dirty frame of a run of `count` symbols in the pool. */
  const poison = (count: number) => {
    const f = servedFrames.take(4 + count * 1024);
    f.fill(0xee);
    servedFrames.give(f);
    return f;
  };
  // The last 260 source symbols (one frame above the pool's minimum): the last one is padded.
  const dirty = poison(260);
  const [frame] = await symbols.getSymbolRuns('artifact', id, [[S - 260, S]]);
  assert.ok(frame === dirty, 'the pooled frame was reused');
  const run = parseSymbolRun(frame, 1024);
  assert.deepEqual([run.first, run.count], [S - 260, 260]);
  const want = new Uint8Array(260 * 1024);
  want.set(bytes.subarray((S - 260) * 1024));
  assert.ok(Buffer.from(run.data).equals(Buffer.from(want)), 'object bytes, then zeros');

  // A file cut short: what was not read is zeroed, so those symbols fail their crc instead of
  // passing with a previous answer's bytes.
  const again = poison(260);
  const prev = await symbols.getSymbolRuns('artifact', id, [[10, 270]]);
  assert.ok(prev[0] === again);
  servedFrames.give(again); // it now holds this very answer's bytes

  fs.truncateSync(objectFile(dir, id), 1024 * 12 + 10);
  const cut = await symbols.getSymbolRuns('artifact', id, [[10, 270]]);
  assert.deepEqual(
    cut.map((f) => {
      const r = parseSymbolRun(f, 1024);
      return [r.first, r.count];
    }),
    [[10, 2]],
  );
});
