/**
 * Version 5 segments read by ranges (docs/formats.md §"Lexical segment"): a ranged segment
 * answers exactly as the whole one, reading its head, its page table and the pages of the terms a
 * query pins, and no more; its postings cache stays under its budget while pinned terms stay
 * readable; damage is corrupt_data naming the segment — in the head or page table at open, in a
 * page when a term on it is pinned (other terms still answer); an older segment (version 4) is
 * left to the whole reader. In an engine, a damaged page is found by the query that reads it and
 * repaired from the node's own symbols.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { createNode } from '../../src/node/index.ts';
import { seededRandom } from '../../src/runtime/index.ts';
import { ExhaustiveScorer } from '../../src/search/lexical/exhaustive-top-k.ts';
import { PostingsCache } from '../../src/search/lexical/postings-cache.ts';
import type { LexicalScoring, QueryTerm } from '../../src/search/lexical/pruned-top-k.ts';
import { prunedTopK } from '../../src/search/lexical/pruned-top-k.ts';
import { Segment, SegmentBuilder } from '../../src/search/lexical/segment.ts';
import { HEADER_BYTES_V5, PAGE_BYTES } from '../../src/search/lexical/segment-format.ts';
import { TopK } from '../../src/search/topk.ts';
import { resealV5 } from '../fuzz/targets.ts';
import { waitFor } from '../helpers/proc.ts';
import { tmpDir } from '../helpers/tmp.ts';

const VOCAB = Array.from({ length: 300 }, (_, i) => `t${i}`);

function segmentBytes(seed: number, n: number): Uint8Array {
  const rng = seededRandom(seed);
  const word = () => VOCAB[Math.min(VOCAB.length - 1, Math.floor(Math.exp(rng.next() * Math.log(301)) - 1))];
  const b = new SegmentBuilder();
  for (let i = 0; i < n; i++)
    b.add({
      doc_id: `d${i}`,
      title: rng.int(3) === 0 ? word() : undefined,
      text: Array.from({ length: 1 + rng.int(40) }, word).join(' '),
    });
  return b.finish();
}

/** Range reads of `bytes`, counted. */
function reader(bytes: Uint8Array) {
  const log = { reads: 0, bytes: 0 };
  const read = async (offset: number, length: number) => {
    log.reads++;
    const out = bytes.slice(offset, Math.min(bytes.length, offset + length));
    log.bytes += out.length;
    return out;
  };
  return { read, log };
}

/** Top 10 of one segment, pruned and exhaustive (both read the segment's postings). */
function topOf(seg: Segment, terms: string[], k = 10) {
  const q: QueryTerm[] = [...new Set(terms)]
    .filter((t) => seg.terms.has(t))
    .map((term, order) => ({ term, order, idfK: (1 + order / 10) * 2.2 }));
  const norm = new Float64Array(seg.doc_count);
  for (let i = 0; i < seg.doc_count; i++)
    norm[i] = 0.3 + (0.9 * (seg.text_len[i] + 2 * seg.title_len[i])) / 20;
  const p: LexicalScoring = { k1: 1.2, title_boost: 2, normA: 0.3, normB: 0.045, norm };
  const docIdAt = (g: number) => seg.doc_ids[g];
  const pruned = new TopK<number>(k);
  prunedTopK(seg, 0, null, q, p, pruned, docIdAt);
  const all = new TopK<number>(k);
  new ExhaustiveScorer(seg.doc_count).addTopK([{ seg, base: 0, deleted: null }], q, p, all, docIdAt);
  return { pruned: pruned.sorted(), exhaustive: all.sorted() };
}

test('a ranged segment answers as the whole one, reading only its head and the pinned terms pages', async () => {
  const bytes = segmentBytes(3, 4000);
  const whole = Segment.open('seg', bytes);
  const { read, log } = reader(bytes);
  const cache = new PostingsCache(64 << 10);
  const ranged = (await Segment.openRanged('seg', bytes.length, read, cache))!;
  assert.ok(ranged.is_ranged && !whole.is_ranged);
  assert.equal(ranged.version, 5);
  assert.deepEqual(ranged.doc_ids, whole.doc_ids);
  const atOpen = log.bytes;
  assert.ok(atOpen < bytes.length / 2, `open read ${atOpen} of ${bytes.length} bytes`);
  assert.throws(() => ranged.postings('t0'), /before pin/);
  assert.throws(() => ranged.bytes, /read by ranges/);
  const rng = seededRandom(9);
  for (let i = 0; i < 200; i++) {
    const terms = Array.from({ length: 1 + rng.int(3) }, () =>
      rng.int(8) === 0 ? 'absent' : VOCAB[rng.int(120)],
    );
    const release = await ranged.pin(terms);
    assert.deepEqual(topOf(ranged, terms), topOf(whole, terms), terms.join(' '));
    for (const t of terms) {
      const a: number[] = [];
      const b: number[] = [];
      ranged.forEachPosting(t, (d, tt, tx) => a.push(d, tt, tx));
      whole.forEachPosting(t, (d, tt, tx) => b.push(d, tt, tx));
      assert.deepEqual(a, b, t);
    }
    release();
    assert.ok(cache.held_bytes <= cache.budget_bytes, `cache ${cache.held_bytes} over ${cache.budget_bytes}`);
  }
  assert.ok(cache.hits > 0 && cache.misses > 0, `hits ${cache.hits}, misses ${cache.misses}`);
  // The shortest term: its pages alone (at most two, it being short), once; then from the cache.
  const [rare, re] = [...whole.terms.entries()].reduce((a, b) => (b[1].length < a[1].length ? b : a));
  assert.ok(re.length < PAGE_BYTES, `shortest term ${re.length} bytes`);
  const before = log.bytes;
  (await ranged.pin([rare]))();
  assert.ok(log.bytes - before <= 2 * PAGE_BYTES, `a rare term read ${log.bytes - before} bytes`);
  const reads = log.reads;
  (await ranged.pin([rare]))();
  assert.equal(log.reads, reads, 'the second pin is served by the cache');
  const now = ranged.pinCached([rare]);
  assert.ok(now, 'a cached term is held without waiting');
  now();
});

test('pinned terms stay readable when the cache evicts them; concurrent pins read a term once', async () => {
  const bytes = segmentBytes(5, 3000);
  const { read, log } = reader(bytes);
  const cache = new PostingsCache(0); // keeps nothing beyond each pin
  const seg = (await Segment.openRanged('seg', bytes.length, read, cache))!;
  const whole = Segment.open('seg', bytes);
  const reads = log.reads;
  assert.equal(seg.pinCached(['t0']), null, 'nothing cached or pinned: the caller must wait');
  assert.equal(cache.misses, 0, 'a look without a load counts no miss');
  const [r1, r2] = await Promise.all([seg.pin(['t0', 't1']), seg.pin(['t1', 't0'])]);
  const r3 = seg.pinCached(['t0', 't1', 'absent']);
  assert.ok(r3, 'pinned by another query: held at once');
  r3();
  assert.equal(log.reads - reads, 2, 'two terms, each read once');
  assert.equal(cache.size, 0);
  r1();
  assert.deepEqual(topOf(seg, ['t0', 't1']), topOf(whole, ['t0', 't1']), 'still pinned by the second query');
  r2();
  r2(); // a second release is a no-op
  assert.throws(() => seg.postings('t0'), /before pin/);
});

/** Flip one byte of `bytes` (a copy). */
function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] ^= 0x5a;
  return out;
}

const corruptNamed =
  (id: string, re: RegExp) => (err: Error & { code?: string; details?: { object_id?: string } }) =>
    err.code === 'corrupt_data' && err.details?.object_id === id && re.test(err.message);

test('damage: head or page table at open, a page when a term on it is pinned; sizes and truncation', async () => {
  const bytes = segmentBytes(7, 3000);
  const whole = Segment.open('seg', bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const headBytes = view.getUint32(36, true);
  const postingsBytes = view.getUint32(40, true);
  const open = (b: Uint8Array, size = b.length) =>
    Segment.openRanged('seg', size, reader(b).read, new PostingsCache(1 << 20));
  // A byte of the doc table (in the head): the head's checksum.
  await assert.rejects(open(flipped(bytes, HEADER_BYTES_V5 + 3)), corruptNamed('seg', /head checksum/));
  // A byte of the page table.
  await assert.rejects(
    open(flipped(bytes, headBytes + postingsBytes + 1)),
    corruptNamed('seg', /page table checksum/),
  );
  // A size in the header that does not add up; a file shorter than the manifest says.
  const badSize = bytes.slice();
  new DataView(badSize.buffer).setUint32(40, postingsBytes + 4, true);
  await assert.rejects(open(badSize), corruptNamed('seg', /do not add up/));
  await assert.rejects(
    open(bytes.subarray(0, bytes.length - 100), bytes.length),
    corruptNamed('seg', /truncated/),
  );
  // A byte of one term's postings: that term's pin fails, a term on other pages still answers.
  const [victim, e] = [...whole.terms.entries()].find(([, x]) => x.df > 300)!;
  const damaged = (await open(flipped(bytes, e.offset + 2)))!;
  await assert.rejects(damaged.pin([victim]), corruptNamed('seg', /postings page \d+ checksum mismatch/));
  assert.throws(() => damaged.postings(victim), /before pin/, 'a failed pin holds nothing');
  const page = (off: number) => Math.floor((off - headBytes) / PAGE_BYTES);
  const [other] = [...whole.terms.entries()].find(
    ([, x]) => page(x.offset) > page(e.offset + e.length) || page(x.offset + x.length) < page(e.offset),
  )!;
  (await damaged.pin([other]))();
});

test('a doc id holding a newline is damage, by either reader (ids are decoded joined by newlines)', async () => {
  const bytes = segmentBytes(5, 50);
  // The first id, "d0", is stored whole at the doc table's start: varint 0, varint 2, "d", "0".
  assert.deepEqual([...bytes.subarray(HEADER_BYTES_V5, HEADER_BYTES_V5 + 4)], [0, 2, 0x64, 0x30]);
  const bad = bytes.slice();
  bad[HEADER_BYTES_V5 + 3] = 0x0a; // "d\n" still sorts before "d1": only the newline is wrong
  const sealed = resealV5(bad);
  assert.throws(() => Segment.open('seg', sealed), corruptNamed('seg', /newline/));
  await assert.rejects(
    Segment.openRanged('seg', sealed.length, reader(sealed).read, new PostingsCache(1 << 20)),
    corruptNamed('seg', /newline/),
  );
});

test('a version 4 segment is left to the whole reader, and a damaged version field too', async () => {
  const bytes = segmentBytes(11, 500);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const headBytes = view.getUint32(36, true);
  const postingsBytes = view.getUint32(40, true);
  // Version 4: the header without its last three fields, doc ids stored whole (not front-coded),
  // no page table, and no tail but the crc.
  const s5 = Segment.open('v5', bytes);
  const plainIds = Buffer.concat(
    s5.doc_ids.map((id) => {
      const b = Buffer.from(id);
      return Buffer.concat([Buffer.from([b.length]), b]); // ids under 128 bytes: a one-byte varint
    }),
  );
  const idsEnd = frontCodedEnd(bytes, s5.doc_count);
  const rest = bytes.subarray(idsEnd, headBytes + postingsBytes);
  const body = new Uint8Array(36 + plainIds.length + rest.length);
  body.set(bytes.subarray(0, 36));
  new DataView(body.buffer).setUint32(8, 4, true);
  body.set(plainIds, 36);
  body.set(rest, 36 + plainIds.length);
  const v4 = new Uint8Array(body.length + 4);
  v4.set(body);
  new DataView(v4.buffer).setUint32(body.length, crc32(body), true);
  const cache = new PostingsCache(1 << 20);
  assert.equal(await Segment.openRanged('v4', v4.length, reader(v4).read, cache), null);
  const s4 = Segment.open('v4', v4);
  assert.equal(s4.version, 4);
  assert.deepEqual(s4.doc_ids, s5.doc_ids);
  assert.ok(bytes.length < v4.length, `front-coded ids: ${bytes.length} vs ${v4.length} bytes`);
  for (const t of ['t0', 't3', 't17']) assert.deepEqual(topOf(s4, [t]), topOf(s5, [t]), t);
  // A version field damaged to 4 is not trusted: the whole read's checksum names the damage.
  const lied = bytes.slice();
  new DataView(lied.buffer).setUint32(8, 4, true);
  assert.equal(await Segment.openRanged('x', lied.length, reader(lied).read, cache), null);
  assert.throws(() => Segment.open('x', lied), corruptNamed('x', /checksum mismatch/));
});

test('engine: a damaged postings page is found by the query reading it and repaired from local symbols', async () => {
  const dir = tmpDir();
  const docs = Array.from({ length: 400 }, (_, i) => ({
    id: `d${i}`,
    text: `ranged document ${i} word${i % 7}`,
  }));
  const a = await createNode({
    data_dir: dir,
    build: { batch_max_commits: 10_000, build_interval_ms: 60_000 },
  });
  await a.ingest(docs);
  assert.equal((await a.buildNow()).built, true);
  const expected = await a.search({ q: 'word3', mode: 'lexical', k: 100 });
  const m = await a.engine.generations.loadManifest(a.status().artifact_manifest_id!);
  const segId = m.lexical_artifacts.find((x) => x.role === 'segment')!.object_id;
  await a.stop();
  const file = path.join(dir, 'objects/artifact', segId.slice(0, 2), segId);
  const good = new Uint8Array(fs.readFileSync(file));
  const e = Segment.open(segId, good).terms.get('word3')!;
  fs.writeFileSync(file, flipped(good, e.offset + 1));
  const b = await createNode({ data_dir: dir });
  try {
    // The node opened the generation from its head: the damage is not read yet.
    assert.ok(!b.events.recent.some((x) => x.event === 'artifact_repair_started'));
    const got = await b.search({ q: 'word3', mode: 'lexical', k: 100 });
    assert.deepEqual(got.hits, expected.hits);
    const names = b.events.recent.map((x) => x.event);
    assert.ok(names.includes('artifact_repair_completed'), names.join());
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), good, 'the file holds its object again');
  } finally {
    await b.stop();
  }
});

test('a damaged page no query reads is found by the first scrub after start', async () => {
  const dir = tmpDir();
  const docs = Array.from({ length: 400 }, (_, i) => ({
    id: `d${i}`,
    text: `scrubbed document ${i} word${i % 7}`,
  }));
  const a = await createNode({
    data_dir: dir,
    build: { batch_max_commits: 10_000, build_interval_ms: 60_000 },
  });
  await a.ingest(docs);
  assert.equal((await a.buildNow()).built, true);
  const m = await a.engine.generations.loadManifest(a.status().artifact_manifest_id!);
  const segId = m.lexical_artifacts.find((x) => x.role === 'segment')!.object_id;
  await a.stop();
  const file = path.join(dir, 'objects/artifact', segId.slice(0, 2), segId);
  const good = new Uint8Array(fs.readFileSync(file));
  const e = Segment.open(segId, good).terms.get('word5')!;
  fs.writeFileSync(file, flipped(good, e.offset + 1));
  // Scrubbing every hour, the first one 50 ms after start; no query is asked.
  const b = await createNode({ data_dir: dir, scrub_interval_ms: 3_600_000, first_scrub_delay_ms: 50 });
  try {
    await waitFor(async () => b.events.recent.some((x) => x.event === 'artifact_repair_completed'), 10_000);
    const done = b.events.recent.find((x) => x.event === 'artifact_repair_completed')!;
    assert.equal(done.object_id, segId);
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), good, 'the file holds its object again');
    assert.equal(b.status().health, 'healthy');
  } finally {
    await b.stop();
  }
});

test('postings cache: most recently used kept under the budget; a removed segment dropped', () => {
  const tp = (n: number) => ({
    e: { df: 1, offset: 0, length: n, postings: 0, table: -1 },
    bytes: new Uint8Array(n),
    key: 0,
  });
  const c = new PostingsCache(100);
  c.put('a', 1, tp(40), 40);
  c.put('a', 2, tp(40), 40);
  assert.ok(c.get('a', 1)); // a:1 is now the most recently used
  c.put('b', 1, tp(40), 40); // over 100: the least recently used (a:2) goes
  assert.equal(c.get('a', 2), undefined);
  assert.ok(c.get('a', 1) && c.get('b', 1));
  assert.equal(c.held_bytes, 80);
  c.put('b', 2, tp(101), 101); // larger than the whole budget: not kept
  assert.equal(c.get('b', 2), undefined);
  c.dropObject('a');
  assert.equal(c.get('a', 1), undefined);
  assert.equal(c.held_bytes, 40);
  assert.equal(c.size, 1);
  assert.throws(() => new PostingsCache(-1), /budget/);
  assert.throws(() => new PostingsCache(1.5), /budget/);
});

/** Where a version 5 doc table (front-coded, right after the 48-byte header) ends. */
function frontCodedEnd(bytes: Uint8Array, docCount: number): number {
  let pos = HEADER_BYTES_V5;
  const varint = () => {
    let v = 0;
    for (let s = 0; ; s += 7) {
      const c = bytes[pos++];
      v |= (c & 0x7f) << s;
      if (!(c & 0x80)) return v;
    }
  };
  for (let i = 0; i < docCount; i++) {
    varint();
    const suffix = varint(); // (not `pos += varint()`: that adds to pos as it was before the call)
    pos += suffix;
  }
  return pos;
}

test('version 5 doc ids are front-coded and checked: repeated or misordered ids are corrupt_data', () => {
  const b = new SegmentBuilder();
  for (const id of ['doc/a/1', 'doc/a/2', 'doc/b/1']) b.add({ doc_id: id, text: `text of ${id}` });
  const bytes = b.finish();
  assert.deepEqual(Segment.open('s', bytes).doc_ids, ['doc/a/1', 'doc/a/2', 'doc/b/1']);
  // Row 2 is (shared 6, suffix "2"): make its suffix "1", the previous id again; reseal the crc.
  const at = Buffer.from(bytes).indexOf(Buffer.from([6, 1, 0x32]));
  assert.ok(at > HEADER_BYTES_V5);
  const bad = bytes.slice();
  bad[at + 2] = 0x31;
  new DataView(bad.buffer).setUint32(bad.length - 4, crc32(bad.subarray(0, bad.length - 4)), true);
  assert.throws(() => Segment.open('s', bad), corruptNamed('s', /doc ids out of order/));
});
