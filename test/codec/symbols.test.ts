import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_REPAIR, describeRepair, type RepairParams } from '../../src/codec/repair-descriptor.ts';
import { encodeRepairSymbols, layoutFor, reconstructObject, sourceSymbol } from '../../src/codec/symbols.ts';
import { objectIdOf } from '../../src/core/ids.ts';
import { seededRandom } from '../../src/runtime/index.ts';
import { cli, openEngine, tmpDir, writeJsonl } from '../helpers/tmp.ts';

const SMALL: RepairParams = {
  symbol_size: 64,
  overhead_ratio: 0.2,
  max_block_symbols: 16,
  min_repair_per_block: 2,
};

function allSymbols(bytes: Uint8Array, p: RepairParams) {
  const layout = layoutFor(bytes.length, p);
  const m = new Map<number, Uint8Array>();
  for (let i = 0; i < layout.source_symbols; i++) m.set(i, sourceSymbol(bytes, layout, i));
  for (const s of encodeRepairSymbols(bytes, layout)) m.set(s.id, s.data);
  return { layout, m };
}

test('layout matches the manifest descriptor math; at least 2 repair symbols per block', () => {
  for (const len of [0, 1, 64, 65, 1023, 5000, 100_000]) {
    const l = layoutFor(len, SMALL);
    const d = describeRepair('00'.repeat(32), len, SMALL);
    assert.equal(l.source_symbols, d.source_symbols);
    assert.equal(l.repair_symbols, d.repair_symbols);
    assert.equal(l.blocks.length, d.source_blocks);
    for (const b of l.blocks) assert.ok(b.repair_count >= 2);
  }
  assert.equal(describeRepair('00'.repeat(32), 1 << 20, DEFAULT_REPAIR).overhead >= 0.2, true);
});

test('encoding is deterministic: same bytes, same symbols and ids', () => {
  const bytes = seededRandom(5).bytes(3000);
  const a = allSymbols(bytes, SMALL).m;
  const b = allSymbols(bytes.slice(), SMALL).m;
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, v] of a) assert.deepEqual(v, b.get(k));
});

test('reconstruction from random losses within tolerance gives identical bytes (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.constant(0), fc.constant(1), fc.constant(64), fc.integer({ min: 2, max: 6000 })),
      fc.integer(),
      async (len, seed) => {
        const rng = seededRandom(seed);
        const bytes = rng.bytes(len);
        const id = objectIdOf('artifact', bytes);
        const { layout, m } = allSymbols(bytes, SMALL);
        // Per block drop up to (repair - 2) symbols among source and repair: K + 2 remain.
        const kept = new Map(m);
        for (const b of layout.blocks) {
          const ids = [...Array(b.source_count).keys()]
            .map((i) => b.source_start + i)
            .concat([...Array(b.repair_count).keys()].map((i) => b.repair_start + i));
          const drop = rng.int(b.repair_count - 1);
          for (let i = 0; i < drop; i++) kept.delete(ids.splice(rng.int(ids.length), 1)[0]);
        }
        const r = await reconstructObject('artifact', id, layout, kept);
        assert.ok(r, `len ${len}`);
        assert.deepEqual(r.bytes, bytes);
      },
    ),
    { numRuns: 60 },
  );
});

test('beyond tolerance reconstruction fails cleanly (null), never wrong bytes', async () => {
  const bytes = seededRandom(9).bytes(5000);
  const id = objectIdOf('artifact', bytes);
  const { layout, m } = allSymbols(bytes, SMALL);
  const b = layout.blocks[1];
  const kept = new Map(m);
  for (let i = 0; i <= b.repair_count; i++) kept.delete(b.source_start + i); // lose repair_count + 1 in block 1
  assert.equal(await reconstructObject('artifact', id, layout, kept), null);
});

test('flipped bits in symbols are caught by verification; bad symbol sets are rejected', async () => {
  const bytes = seededRandom(11).bytes(3000);
  const id = objectIdOf('artifact', bytes);
  const { layout, m } = allSymbols(bytes, SMALL);
  const bad = new Map(m);
  const s = bad.get(3)!.slice();
  s[5] ^= 0x10;
  bad.set(3, s);
  await assert.rejects(() => reconstructObject('artifact', id, layout, bad), /decoded to bytes hashing to/);
  const trunc = new Map(m);
  trunc.set(4, m.get(4)!.subarray(0, 10));
  await assert.rejects(() => reconstructObject('artifact', id, layout, trunc), /has 10 bytes, expected 64/);
  const range = new Map(m);
  range.set(layout.source_symbols + layout.repair_symbols, new Uint8Array(64));
  await assert.rejects(() => reconstructObject('artifact', id, layout, range), /out of range/);
  const wrongLayout = layoutFor(bytes.length + 1, SMALL);
  await assert.rejects(() => reconstructObject('artifact', id, wrongLayout, m));
});

test('an object larger than 64 MiB round-trips with losses (block by block)', async () => {
  const size = 65 * 1024 * 1024 + 123;
  const bytes = new Uint8Array(size);
  const rng = seededRandom(3);
  for (let i = 0; i < size; i += 4096) bytes.set(rng.bytes(64), i);
  const id = objectIdOf('artifact', bytes);
  const layout = layoutFor(size, DEFAULT_REPAIR);
  assert.ok(layout.blocks.length > 60);
  const symbols = new Map<number, Uint8Array>();
  // Keep every source symbol but drop the 2nd symbol of each block; add exactly enough repair.
  const repair = new Map<number, Uint8Array>();
  for (const s of encodeRepairSymbols(bytes, layout)) repair.set(s.id, s.data);
  for (const b of layout.blocks) {
    for (let i = 0; i < b.source_count; i++)
      if (i !== 1) symbols.set(b.source_start + i, sourceSymbol(bytes, layout, b.source_start + i));
    symbols.set(b.repair_start, repair.get(b.repair_start)!);
    symbols.set(b.repair_start + 1, repair.get(b.repair_start + 1)!);
  }
  const r = await reconstructObject('artifact', id, layout, symbols);
  assert.ok(r);
  assert.equal(r.blocks_decoded, layout.blocks.length);
  assert.ok(Buffer.from(r.bytes).equals(Buffer.from(bytes)));
});

test('scrub repairs flipped bytes in stored artifacts from local symbols; nothing else changes', async () => {
  const dir = tmpDir();
  const e = await openEngine(dir, { repair: SMALL });
  await e.ingest(
    Array.from({ length: 200 }, (_, i) => ({
      op: 'upsert' as const,
      doc_id: `d${i}`,
      text: `scrub test document ${i} with words ${i % 7}`,
    })),
  );
  await e.buildAndActivate();
  const ids = await e.objects.list('artifact');
  const before = new Map<string, Buffer>();
  for (const id of ids) before.set(id, Buffer.from(await e.objects.get('artifact', id)));
  const victims = ids.slice(0, 2);
  for (const v of victims) {
    const f = path.join(dir, 'objects/artifact', v.slice(0, 2), v);
    const b = fs.readFileSync(f);
    b[Math.floor(b.length / 3)] ^= 0xff;
    b[b.length - 1] ^= 0x01;
    fs.writeFileSync(f, b);
  }
  const r = await e.scrub();
  assert.equal(r.objects_checked, ids.length);
  assert.equal(r.corrupt_found, 2);
  assert.equal(r.repaired, 2);
  assert.deepEqual(r.unrepairable, []);
  for (const id of ids)
    assert.ok(Buffer.from(await e.objects.get('artifact', id)).equals(before.get(id)!), id);
  await e.close();
});

test('read-time verification repairs a corrupt artifact before answering', async () => {
  const dir = tmpDir();
  const e = await openEngine(dir, { repair: SMALL });
  await e.ingest([{ op: 'upsert', doc_id: 'a', text: 'read time repair' }]);
  await e.buildAndActivate();
  const expected = await e.search({ q: 'repair', mode: 'lexical' });
  await e.close();
  const seg = JSON.parse(
    fs.readFileSync(
      path.join(
        dir,
        'objects/manifest',
        expected.artifact_manifest_id.slice(0, 2),
        expected.artifact_manifest_id,
      ),
      'utf8',
    ),
  ).lexical_artifacts[0].object_id;
  const f = path.join(dir, 'objects/artifact', seg.slice(0, 2), seg);
  const b = fs.readFileSync(f);
  b[10] ^= 0x55;
  fs.writeFileSync(f, b);
  const e2 = await openEngine(dir, { repair: SMALL });
  const got = await e2.search({ q: 'repair', mode: 'lexical' });
  assert.deepEqual(got.hits, expected.hits);
  assert.equal(e2.repaired_objects_total, 1);
  await e2.close();
});

test('fsmesh repair: JSON report; exit 1 naming what cannot be repaired locally', () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  cli([
    'ingest',
    '--data',
    data,
    writeJsonl(
      dir,
      'a.jsonl',
      Array.from({ length: 50 }, (_, i) => ({ id: `d${i}`, text: `repair cli ${i}` })),
    ),
  ]);
  const clean = cli(['repair', '--data', data]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.deepEqual(Object.keys(clean.json).slice(0, 4), [
    'objects_checked',
    'corrupt_found',
    'repaired',
    'unrepairable',
  ]);
  const artDir = path.join(data, 'objects/artifact');
  const all = fs
    .readdirSync(artDir)
    .flatMap((p) => fs.readdirSync(path.join(artDir, p)).map((n) => path.join(artDir, p, n)));
  // One repairable (a flipped byte), one not (object and its symbols both destroyed).
  const b = fs.readFileSync(all[0]);
  b[0] ^= 1;
  fs.writeFileSync(all[0], b);
  const lost = path.basename(all[1]);
  fs.writeFileSync(all[1], Buffer.alloc(fs.statSync(all[1]).size));
  fs.rmSync(path.join(data, 'symbols/artifact', lost.slice(0, 2), lost));
  const r = cli(['repair', '--data', data]);
  assert.equal(r.code, 1);
  assert.equal(r.json.corrupt_found, 2);
  assert.equal(r.json.repaired, 1);
  assert.deepEqual(r.json.unrepairable, [lost]);
  assert.match(r.stderr, new RegExp(lost));
});

test('sealed capsule-log segments are protected objects: a damaged sealed segment is rebuilt on open', async () => {
  const dir = tmpDir();
  const e = await openEngine(dir, { log_segment_max_bytes: 2048, repair: SMALL });
  for (let i = 0; i < 40; i++)
    await e.ingest([{ op: 'upsert', doc_id: `s${i}`, text: `sealed segment test ${i} `.repeat(4) }]);
  await e.buildAndActivate();
  await e.close();
  const logDir = path.join(dir, 'log');
  const sealed = fs.readdirSync(logDir).filter((f) => f.endsWith('.log.id'));
  assert.ok(sealed.length >= 3, `sealed segments: ${sealed}`);
  // Damage a sealed segment in the middle of the log: without protection this is fatal corruption.
  const victim = path.join(logDir, sealed[1].slice(0, -3));
  const b = fs.readFileSync(victim);
  b[Math.floor(b.length / 2)] ^= 0x40;
  fs.writeFileSync(victim, b);
  const warnings: string[] = [];
  const { LocalEngine, defaultEngineConfig } = await import('../../src/engine/local-engine.ts');
  const { runtimeAt } = await import('../helpers/tmp.ts');
  const e2 = await LocalEngine.open(
    runtimeAt(dir),
    defaultEngineConfig({ log_segment_max_bytes: 2048, repair: SMALL }),
    { onEvent: (e) => warnings.push(e.type) },
  );
  assert.ok(warnings.includes('log_segment_repaired'), warnings.join('; '));
  assert.equal(e2.log.commitSeqHigh, 40);
  assert.equal((await e2.log.read(20)).capsule.ops[0].doc_id, 's19');
  const r = await e2.scrub();
  assert.ok(r.objects_checked >= sealed.length);
  assert.deepEqual(r.unrepairable, []);
  await e2.close();
});
