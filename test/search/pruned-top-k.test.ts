/**
 * Pruned lexical top k (MaxScore + block-max, seeded by a rare term) against the exhaustive scorer
 * on a skewed corpus: identical hits, scores and order (bit for bit) for random queries of 1–4
 * terms and any k, across several segments with deletions; a reader whose title boost differs from
 * the segments' impacts ignores them and still agrees; version-1 segments (no block tables) open
 * and are searched the same way. One-term queries on version-3 segments read only the term's
 * skyline: exact for any k up to skyline_k, any BM25 parameters and deletions, and declined
 * (the caller prunes blocks) where that cannot be shown; version-2 segments (no skylines) still read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { seededRandom } from '../../src/runtime/index.ts';
import {
  type LexicalScoring,
  prunedTopK,
  type QueryTerm,
  skylineTopK,
} from '../../src/search/lexical/pruned-top-k.ts';
import { Segment, SegmentBuilder, type TermEntry } from '../../src/search/lexical/segment.ts';
import { POSTINGS_BLOCK, SEGMENT_VERSION, SKYLINE_K } from '../../src/search/lexical/segment-format.ts';
import { tokenize } from '../../src/search/text.ts';
import { TopK } from '../../src/search/topk.ts';
import { openEngine, tmpDir } from '../helpers/tmp.ts';

// Zipf-like vocabulary: word i drawn with weight 1/(i+1), so a few words fill many blocks.
const VOCAB = Array.from({ length: 400 }, (_, i) => `w${i}`);
function zipfWord(rng: ReturnType<typeof seededRandom>): string {
  const r = rng.next();
  return VOCAB[Math.min(VOCAB.length - 1, Math.floor(Math.exp(r * Math.log(VOCAB.length + 1)) - 1))];
}

function corpus(seed: number, n: number, prefix: string) {
  const rng = seededRandom(seed);
  return Array.from({ length: n }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `${prefix}-${i}`,
    title: rng.int(4) === 0 ? zipfWord(rng) : undefined,
    text: Array.from({ length: 1 + rng.int(60) }, () => zipfWord(rng)).join(' '),
  }));
}

function queries(seed: number, count: number): string[] {
  const rng = seededRandom(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: 1 + rng.int(4) }, () => (rng.int(10) === 0 ? 'absent' : zipfWord(rng))).join(' '),
  );
}

test('pruned top k equals exhaustive BM25 across segments with deletions, for any k', async () => {
  const e = await openEngine(tmpDir(), { hnsw_min_rows: 1_000_000 });
  try {
    for (const [i, n] of [3000, 1500, 800].entries()) {
      await e.ingest(corpus(100 + i, n, `s${i}`));
      // Overwrite and delete some earlier documents: deletions in older segments.
      if (i > 0)
        await e.ingest([
          ...corpus(200 + i, 100, 's0'),
          ...Array.from({ length: 50 }, (_, j) => ({ op: 'delete' as const, doc_id: `s0-${1000 + j * 7}` })),
        ]);
      await e.buildAndActivate();
    }
    const pin = await e.acquire();
    try {
      const r = pin.reader;
      assert.ok(r.segments.length >= 2, 'several segments');
      const long = [...r.segments[0].terms.values()].filter((t) => t.df > POSTINGS_BLOCK).length;
      assert.ok(long > 10, `terms with block tables: ${long}`);
      let compared = 0;
      for (const q of queries(7, 600))
        for (const k of [1, 3, 10, 57]) {
          const toks = tokenize(q);
          // The engine's readers read postings by ranges: a query pins its terms first.
          const unpin = await r.pinTerms(toks);
          assert.deepEqual(r.searchLexical(toks, k), r.searchLexicalExhaustive(toks, k), `${q} k=${k}`);
          unpin();
          compared++;
        }
      assert.equal(compared, 2400);
      assert.deepEqual(r.searchLexical([], 0), []);
    } finally {
      pin.release();
    }
  } finally {
    await e.close();
  }
});

test('a reader whose title boost differs from the impacts ignores them and agrees', async () => {
  const e = await openEngine(tmpDir(), {
    hnsw_min_rows: 1_000_000,
    bm25: { k1: 0.9, b: 0.4, title_boost: 3 },
  });
  try {
    await e.ingest(corpus(5, 2500, 'd'));
    await e.buildAndActivate();
    const pin = await e.acquire();
    try {
      for (const q of queries(9, 300)) {
        const toks = tokenize(q);
        const unpin = await pin.reader.pinTerms(toks);
        assert.deepEqual(pin.reader.searchLexical(toks, 10), pin.reader.searchLexicalExhaustive(toks, 10), q);
        unpin();
      }
    } finally {
      pin.release();
    }
  } finally {
    await e.close();
  }
});

test('version-1 segments (no block tables, no impacts) still open, read and search the same', () => {
  const b = new SegmentBuilder();
  for (const d of corpus(11, 400, 'v')) b.add(d);
  const v2 = b.finish();
  const s2 = Segment.open('v2', v2);
  // Rebuild the same segment in version-1 layout: header version 1, flags 0, no block tables.
  const v1 = toVersion1(s2);
  const s1 = Segment.open('v1', v1);
  assert.equal(s1.version, 1);
  assert.equal(s1.impact_title_boost, 0);
  assert.deepEqual(s1.doc_ids, s2.doc_ids);
  for (const [t, e] of s2.terms) {
    const a: number[] = [];
    const c: number[] = [];
    s2.forEachPosting(t, (d, tt, tx) => a.push(d, tt, tx));
    s1.forEachPosting(t, (d, tt, tx) => c.push(d, tt, tx));
    assert.deepEqual(c, a, t);
    assert.equal(s1.blockTable(s1.postings(t)!), null);
    if (e.df > POSTINGS_BLOCK) assert.notEqual(s2.blockTable(s2.postings(t)!), null);
  }
  // Pruned search over either version equals a term-at-a-time reference over the postings.
  for (const q of queries(13, 150)) {
    const toks = [...new Set(tokenize(q))].filter((t) => s2.terms.has(t));
    assert.deepEqual(topOf(s1, toks), referenceTop(s2, toks), q);
    assert.deepEqual(topOf(s2, toks), referenceTop(s2, toks), q);
  }
});

interface Bm25 {
  k1: number;
  b: number;
  /** Average length: the segment's own when omitted (a multi-shard query brings another). */
  avgdl?: number;
}
const DEFAULT_BM25: Bm25 = { k1: 1.2, b: 0.75 };

function scoringOf(s: Segment, bm: Bm25 = DEFAULT_BM25): LexicalScoring {
  const len = (i: number) => s.text_len[i] + 2 * s.title_len[i];
  let sum = 0;
  for (let i = 0; i < s.doc_count; i++) sum += len(i);
  const normA = bm.k1 * (1 - bm.b);
  const normB = (bm.k1 * bm.b) / (bm.avgdl ?? sum / s.doc_count);
  const norm = new Float64Array(s.doc_count).map((_, i) => normA + normB * len(i));
  return { k1: bm.k1, title_boost: 2, normA, normB, norm };
}
const idfK = (s: Segment, t: string, k1 = DEFAULT_BM25.k1) => {
  const df = s.terms.get(t)!.df;
  return Math.log(1 + (s.doc_count - df + 0.5) / (df + 0.5)) * (k1 + 1);
};
function topOf(s: Segment, toks: string[]) {
  const top = new TopK<number>(10);
  const terms: QueryTerm[] = toks.map((term, order) => ({ term, order, idfK: idfK(s, term) }));
  prunedTopK(s, 0, null, terms, scoringOf(s), top, (g) => s.doc_ids[g]);
  return top.sorted().map((e) => [e.key, e.score]);
}
function referenceTop(
  s: Segment,
  toks: string[],
  k = 10,
  bm = DEFAULT_BM25,
  deleted: Uint8Array | null = null,
) {
  const { norm } = scoringOf(s, bm);
  const acc = new Map<number, number>();
  for (const t of toks)
    s.forEachPosting(t, (d, tt, tx) => {
      if (deleted && deleted[d >> 3] & (1 << (d & 7))) return;
      const tf = tx + 2 * tt;
      acc.set(d, (acc.get(d) ?? 0) + (idfK(s, t, bm.k1) * tf) / (tf + norm[d]));
    });
  const top = new TopK<number>(k);
  for (const [d, v] of acc) top.push(v, s.doc_ids[d], d);
  return top.sorted().map((e) => [e.key, e.score]);
}
/** The skyline's answer for one term, or null when it declines. */
function skylineTop(
  s: Segment,
  term: string,
  k: number,
  bm = DEFAULT_BM25,
  deleted: Uint8Array | null = null,
) {
  const top = new TopK<number>(k);
  const q: QueryTerm = { term, order: 0, idfK: idfK(s, term, bm.k1) };
  if (!skylineTopK(s, 0, deleted, q, scoringOf(s, bm), top, (g) => s.doc_ids[g])) return null;
  return top.sorted().map((e) => [e.key, e.score]);
}

// Doc ids of a segment: ASCII and é (docnum order is string order), or with characters above
// U+FFFF beside U+FF21 (UTF-8 byte order and the JS string order of TopK's ties disagree).
const ID_SCHEMES = [
  (i: number, id: string) => (i % 3 === 0 ? `é${4000 - i}` : id),
  (i: number, id: string) => (i % 3 === 0 ? `\u{1F600}${i}` : i % 3 === 1 ? `\uFF21${i}` : id),
];

for (const [scheme, idOf] of ID_SCHEMES.entries())
  test(`one-term queries read only the skyline: exact for any k up to skyline_k, any BM25, deletions (ids ${scheme})`, () => {
    const b = new SegmentBuilder();
    // Short documents from a small vocabulary: many postings share a (tf, length) pair, so ties by
    // doc_id decide; the doc_ids are added out of order.
    for (const [i, d] of corpus(21, 4000, 'k').entries()) b.add({ ...d, doc_id: idOf(i, d.doc_id) });
    skylineChecks(Segment.open('sky', b.finish()));
  });

function skylineChecks(s: Segment): void {
  assert.equal(s.version, SEGMENT_VERSION);
  assert.equal(s.skyline_k, SKYLINE_K);
  const long = [...s.terms.entries()].filter(([, e]) => e.df > POSTINGS_BLOCK);
  assert.ok(long.length > 20, `terms with block tables: ${long.length}`);
  let skipped = 0;
  for (const [t, e] of long) {
    const sky = s.blockTable(s.postings(t)!)!.sky_doc;
    assert.ok(
      sky.length >= Math.min(SKYLINE_K, e.df) && sky.length <= e.df,
      `${t}: ${sky.length} of ${e.df}`,
    );
    skipped += e.df - sky.length;
  }
  assert.ok(skipped > 10_000, `postings a one-term query no longer reads: ${skipped}`);
  const settings: Bm25[] = [
    DEFAULT_BM25,
    { k1: 0.3, b: 0.1 },
    { k1: 2.5, b: 1 },
    { k1: 1.2, b: 0.75, avgdl: 3 },
  ];
  for (const [t] of long)
    for (const bm of settings)
      for (const k of [1, 10, 30, SKYLINE_K])
        assert.deepEqual(
          skylineTop(s, t, k, bm),
          referenceTop(s, [t], k, bm),
          `${t} k=${k} ${JSON.stringify(bm)}`,
        );
  // Deletions: exact while k plus the deleted skyline postings fit; declined beyond.
  const rng = seededRandom(5);
  let used = 0;
  let declined = 0;
  for (const rate of [50, 8, 2]) {
    const deleted = new Uint8Array(Math.ceil(s.doc_count / 8));
    for (let d = 0; d < s.doc_count; d++) if (rng.int(rate) === 0) deleted[d >> 3] |= 1 << (d & 7);
    for (const [t] of long)
      for (const k of [1, 10, 40]) {
        const got = skylineTop(s, t, k, DEFAULT_BM25, deleted);
        if (got === null) declined++;
        else {
          used++;
          assert.deepEqual(
            got,
            referenceTop(s, [t], k, DEFAULT_BM25, deleted),
            `${t} k=${k} 1/${rate} deleted`,
          );
        }
      }
  }
  assert.ok(used > 50 && declined > 50, `skyline used ${used}, declined ${declined}`);
  // Not applicable: k above skyline_k, b = 0 (length no longer orders), another title boost.
  const [t0] = long[0];
  assert.equal(skylineTop(s, t0, SKYLINE_K + 1), null);
  assert.equal(skylineTop(s, t0, 10, { k1: 1.2, b: 0 }), null);
  const other = { ...scoringOf(s), title_boost: 3 };
  assert.equal(
    skylineTopK(s, 0, null, { term: t0, order: 0, idfK: 1 }, other, new TopK(10), (g) => s.doc_ids[g]),
    false,
  );
}

test('a skyline holds every posting beaten by fewer than skyline_k others (brute force)', () => {
  const b = new SegmentBuilder();
  for (const d of corpus(31, 1500, 'b')) b.add(d);
  const s = Segment.open('brute', b.finish());
  const len = (d: number) => s.text_len[d] + 2 * s.title_len[d];
  let checked = 0;
  for (const [t, e] of s.terms) {
    if (e.df <= POSTINGS_BLOCK || checked >= 6) continue;
    checked++;
    const p: { d: number; tf: number; len: number }[] = [];
    s.forEachPosting(t, (d, tt, tx) => p.push({ d, tf: tx + 2 * tt, len: len(d) }));
    const beats = (a: (typeof p)[0], x: (typeof p)[0]) =>
      a.tf >= x.tf && a.len <= x.len && (a.tf > x.tf || a.len < x.len || s.doc_ids[a.d] < s.doc_ids[x.d]);
    const expected = p.filter((x) => p.filter((a) => beats(a, x)).length < SKYLINE_K).map((x) => x.d);
    assert.deepEqual([...s.blockTable(s.postings(t)!)!.sky_doc], expected, t);
  }
  assert.equal(checked, 6);
});

test('version-2 segments (block tables without skylines) still open and search the same', () => {
  const b = new SegmentBuilder();
  for (const d of corpus(41, 1200, 'v')) b.add(d);
  const s3 = Segment.open('v3', b.finish());
  const s2 = Segment.open('v2', toVersion2(s3));
  assert.equal(s2.version, 2);
  assert.equal(s2.skyline_k, 0);
  assert.equal(s2.impact_title_boost, 2);
  for (const [t, e] of s3.terms) {
    const t2 = s2.blockTable(s2.postings(t)!);
    if (e.df <= POSTINGS_BLOCK) continue;
    assert.equal(t2!.sky_doc.length, 0);
    assert.deepEqual(t2!.last_doc, s3.blockTable(s3.postings(t)!)!.last_doc);
    assert.equal(skylineTop(s2, t, 10), null, 'no skyline to read');
    assert.deepEqual(topOf(s2, [t]), referenceTop(s2, [t]), t);
  }
  for (const q of queries(43, 100)) {
    const toks = [...new Set(tokenize(q))].filter((t) => s3.terms.has(t));
    assert.deepEqual(topOf(s2, toks), topOf(s3, toks), q);
  }
});

test('version-3 segments (no stored restart points) still open and search the same', () => {
  const b = new SegmentBuilder();
  for (const d of corpus(47, 1500, 'r')) b.add(d);
  const s4 = Segment.open('v4', b.finish());
  const s3 = Segment.open(
    'v3',
    rewriteDictionary(
      s4,
      s4.bytes.subarray(0, 8),
      versionParts(s4, () => null),
      3,
    ),
  );
  assert.equal(s4.version, SEGMENT_VERSION);
  assert.equal(s3.version, 3);
  assert.equal(s3.skyline_k, s4.skyline_k);
  assert.deepEqual([...s3.terms.keys()], [...s4.terms.keys()]);
  for (const [t, e] of s4.terms) assert.equal(s3.terms.get(t)?.df, e.df, t);
  for (const q of queries(49, 100)) {
    const toks = [...new Set(tokenize(q))].filter((t) => s4.terms.has(t));
    assert.deepEqual(topOf(s3, toks), topOf(s4, toks), q);
  }
});

test('a damaged skyline is corrupt_data naming the segment', () => {
  const b = new SegmentBuilder();
  for (const d of corpus(51, 800, 'c')) b.add(d);
  const s = Segment.open('ok', b.finish());
  const [term] = [...s.terms.entries()].find(([, x]) => x.df > POSTINGS_BLOCK)!;
  // The skyline count sits right after the last block's impacts: make it larger than df.
  const table = s.blockTable(s.postings(term)!)!;
  const parts = versionParts(s, (t, _e, tableBytes) =>
    t === term
      ? Uint8Array.from([...tableBytes.subarray(0, skylineOffset(tableBytes, table)), 0xff, 0x7f])
      : null,
  );
  const damaged = Segment.open('bad', rewriteDictionary(s, s.bytes.subarray(0, 8), parts, 3));
  assert.throws(
    () => damaged.blockTable(damaged.postings(term)!),
    (err: Error & { code?: string }) =>
      err.code === 'corrupt_data' && /bad: .*skyline count/.test(err.message),
  );
});

/** The version-1 bytes of a segment: no block tables, postings as (delta, tf_title, tf_text). */
function toVersion1(s: Segment): Uint8Array {
  const head = s.bytes.subarray(0, 8);
  const parts: Uint8Array[] = [];
  for (const t of s.terms.keys()) {
    const out: number[] = [];
    const varint = (v: number) => {
      while (v >= 0x80) {
        out.push((v & 0x7f) | 0x80);
        v >>>= 7;
      }
      out.push(v);
    };
    let last = 0;
    s.forEachPosting(t, (d, tt, tx) => {
      varint(d - last);
      varint(tt);
      varint(tx);
      last = d;
    });
    parts.push(Uint8Array.from(out));
  }
  return rewriteDictionary(s, head, parts);
}

function rewriteDictionary(s: Segment, head: Uint8Array, parts: Uint8Array[], version = 1): Uint8Array {
  const bytes: number[] = [];
  const varint = (v: number) => {
    while (v >= 0x80) {
      bytes.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    bytes.push(v);
  };
  const u32 = (v: number) => bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  bytes.push(...head.subarray(0, 8));
  u32(version);
  u32(s.doc_count);
  u32(s.terms.size);
  u32(version >= 2 ? 2 : 0);
  if (version >= 3) u32(s.skyline_k);
  for (const id of s.doc_ids) {
    const b = Buffer.from(id);
    varint(b.length);
    bytes.push(...b);
  }
  for (let i = 0; i < s.doc_count; i++) {
    varint(s.title_len[i]);
    varint(s.text_len[i]);
  }
  let prev = Buffer.alloc(0);
  [...s.terms.entries()].forEach(([t, e], i) => {
    const b = Buffer.from(t);
    let shared = 0;
    while (shared < prev.length && shared < b.length && prev[shared] === b[shared]) shared++;
    varint(shared);
    varint(b.length - shared);
    bytes.push(...b.subarray(shared));
    varint(e.df);
    varint(parts[i].length);
    prev = b;
  });
  for (const p of parts) bytes.push(...p);
  const body = Uint8Array.from(bytes);
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), true);
  return out;
}

/**
 * Each term's data (table length prefix, table, postings) as stored, or as `table` rewrites its
 * block table (null: unchanged).
 */
function versionParts(
  s: Segment,
  table: (term: string, e: TermEntry, tableBytes: Uint8Array) => Uint8Array | null,
): Uint8Array[] {
  return [...s.terms.entries()].map(([t, e]) => {
    const postings = s.bytes.subarray(e.postings, e.offset + e.length);
    if (e.table < 0) return s.bytes.slice(e.offset, e.offset + e.length);
    const old = s.bytes.subarray(e.table, e.postings);
    const tb = table(t, e, old) ?? old;
    return Uint8Array.from([...varintBytes(tb.length), ...tb, ...postings]);
  });
}

/** Where a parsed table's skyline starts in its bytes: after every block's entry. */
function skylineOffset(tableBytes: Uint8Array, t: { count: number; impact_start: Int32Array }): number {
  let pos = 0;
  const skip = () => {
    while (tableBytes[pos++] & 0x80);
  };
  for (let i = 0; i < t.count; i++) {
    skip();
    skip();
    skip();
    for (let j = t.impact_start[i]; j < t.impact_start[i + 1]; j++) {
      skip();
      skip();
    }
  }
  return pos;
}

/** The version-2 bytes of a version-3 segment: the same block tables without their skylines. */
function toVersion2(s: Segment): Uint8Array {
  const parts = versionParts(s, (t, _e, tb) =>
    tb.subarray(0, skylineOffset(tb, s.blockTable(s.postings(t)!)!)),
  );
  return rewriteDictionary(s, s.bytes.subarray(0, 8), parts, 2);
}

function varintBytes(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}
