/**
 * Pruned lexical top k (MaxScore + block-max, seeded by a rare term) against the exhaustive scorer
 * on a skewed corpus: identical hits, scores and order (bit for bit) for random queries of 1–4
 * terms and any k, across several segments with deletions; a reader whose title boost differs from
 * the segments' impacts ignores them and still agrees; version-1 segments (no block tables) open
 * and are searched the same way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { seededRandom } from '../../src/runtime/index.ts';
import { type LexicalScoring, prunedTopK, type QueryTerm } from '../../src/search/lexical/pruned-top-k.ts';
import { Segment, SegmentBuilder } from '../../src/search/lexical/segment.ts';
import { POSTINGS_BLOCK } from '../../src/search/lexical/segment-format.ts';
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
          assert.deepEqual(r.searchLexical(toks, k), r.searchLexicalExhaustive(toks, k), `${q} k=${k}`);
          compared++;
        }
      assert.equal(compared, 2400);
      assert.deepEqual(r.searchLexical(['w0'], 0), []);
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
        assert.deepEqual(pin.reader.searchLexical(toks, 10), pin.reader.searchLexicalExhaustive(toks, 10), q);
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
    assert.equal(s1.blockTable(s1.terms.get(t)!), null);
    if (e.df > POSTINGS_BLOCK) assert.notEqual(s2.blockTable(e), null);
  }
  // Pruned search over either version equals a term-at-a-time reference over the postings.
  for (const q of queries(13, 150)) {
    const toks = [...new Set(tokenize(q))].filter((t) => s2.terms.has(t));
    assert.deepEqual(topOf(s1, toks), referenceTop(s2, toks), q);
    assert.deepEqual(topOf(s2, toks), referenceTop(s2, toks), q);
  }
});

function scoringOf(s: Segment): LexicalScoring {
  const len = (i: number) => s.text_len[i] + 2 * s.title_len[i];
  let sum = 0;
  for (let i = 0; i < s.doc_count; i++) sum += len(i);
  const normA = 1.2 * (1 - 0.75);
  const normB = (1.2 * 0.75) / (sum / s.doc_count);
  const norm = new Float64Array(s.doc_count).map((_, i) => normA + normB * len(i));
  return { k1: 1.2, title_boost: 2, normA, normB, norm };
}
const idfK = (s: Segment, t: string) => {
  const df = s.terms.get(t)!.df;
  return Math.log(1 + (s.doc_count - df + 0.5) / (df + 0.5)) * 2.2;
};
function topOf(s: Segment, toks: string[]) {
  const top = new TopK<number>(10);
  const terms: QueryTerm[] = toks.map((term, order) => ({ term, order, idfK: idfK(s, term) }));
  prunedTopK(s, 0, null, terms, scoringOf(s), top, (g) => s.doc_ids[g]);
  return top.sorted().map((e) => [e.key, e.score]);
}
function referenceTop(s: Segment, toks: string[]) {
  const { norm } = scoringOf(s);
  const acc = new Map<number, number>();
  for (const t of toks)
    s.forEachPosting(t, (d, tt, tx) => {
      const tf = tx + 2 * tt;
      acc.set(d, (acc.get(d) ?? 0) + (idfK(s, t) * tf) / (tf + norm[d]));
    });
  const top = new TopK<number>(10);
  for (const [d, v] of acc) top.push(v, s.doc_ids[d], d);
  return top.sorted().map((e) => [e.key, e.score]);
}

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

function rewriteDictionary(s: Segment, head: Uint8Array, parts: Uint8Array[]): Uint8Array {
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
  u32(1);
  u32(s.doc_count);
  u32(s.terms.size);
  u32(0);
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
