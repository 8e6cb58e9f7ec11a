/**
 * Builds lexical segments (format: segment-format.ts, docs/formats.md). Documents stream in one by
 * one (fresh upserts) or already tokenized (merges); both give byte-identical segments for the same
 * documents in any order: rows are sorted by doc_id bytes, terms by their UTF-8 bytes.
 */
import { crc32 } from 'node:zlib';
import { ByteWriter, bytesEqual, utf8 } from '../../core/bytes.ts';
import { FsmeshError, invariant } from '../../core/errors.ts';
import { tokenize } from '../text.ts';
import {
  compareUtf8,
  HEADER_BYTES_V5,
  IMPACT_TITLE_BOOST,
  type IndexedDoc,
  MAX_IMPACTS_PER_BLOCK,
  PAGE_BYTES,
  POSTINGS_BLOCK,
  RESTART_TERMS,
  SEGMENT_MAGIC,
  SEGMENT_VERSION,
  type SegmentDocInput,
  SKYLINE_K,
  TAIL_BYTES_V5,
  varintSize,
} from './segment-format.ts';
import { type Inverted, termSkyline } from './segment-skyline.ts';

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** A growable Int32Array (the pair arrays of a build). */
function grow(a: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  if (need <= a.length) return a;
  const g = new Int32Array(Math.max(need, a.length * 2));
  g.set(a);
  return g;
}

/**
 * Builds one segment from documents added one by one. Every (doc, term) pair goes into flat typed
 * arrays as the tokens stream by (terms interned once, tf counted in place), and `finish` buckets
 * the pairs by term with a counting sort: no map or tuple per document, no writer per term (before
 * this the GC took a quarter of a build).
 */
export class SegmentBuilder {
  private readonly termIds = new Map<string, number>();
  private readonly names: string[] = [];
  /** Per term: the last document that used it, and that document's pair slot. */
  private lastDoc = new Int32Array(1024).fill(-1);
  private pairSlot = new Int32Array(1024);
  private pairTerm = new Int32Array(1 << 14);
  private pairTT = new Int32Array(1 << 14);
  private pairTX = new Int32Array(1 << 14);
  private pairs = 0;
  private readonly docs: { doc_id: string; title_len: number; text_len: number; pairEnd: number }[] = [];

  get doc_count(): number {
    return this.docs.length;
  }

  /** Tokenize and add a document. */
  add(d: SegmentDocInput): void {
    const title = d.title ? tokenize(d.title) : [];
    const text = tokenize(d.text);
    const doc = this.docs.length;
    // slot() may grow the pair arrays: take the slot before reading the array reference.
    for (const t of title) {
      const slot = this.slot(t, doc);
      this.pairTT[slot]++;
    }
    for (const t of text) {
      const slot = this.slot(t, doc);
      this.pairTX[slot]++;
    }
    this.docs.push({ doc_id: d.doc_id, title_len: title.length, text_len: text.length, pairEnd: this.pairs });
  }

  /** Add a document already tokenized (a merge carrying rows over). */
  addIndexed(d: IndexedDoc): void {
    const doc = this.docs.length;
    for (const [t, [tt, tx]] of d.terms) {
      const slot = this.slot(t, doc);
      this.pairTT[slot] += tt;
      this.pairTX[slot] += tx;
    }
    this.docs.push({ doc_id: d.doc_id, title_len: d.title_len, text_len: d.text_len, pairEnd: this.pairs });
  }

  /** The pair slot of (`term`, `doc`), created on the term's first use in the document. */
  private slot(term: string, doc: number): number {
    let id = this.termIds.get(term);
    if (id === undefined) {
      id = this.names.length;
      this.termIds.set(term, id);
      this.names.push(term);
      if (id >= this.lastDoc.length) {
        const n = this.lastDoc.length;
        this.lastDoc = grow(this.lastDoc, n * 2);
        this.lastDoc.fill(-1, n);
        this.pairSlot = grow(this.pairSlot, n * 2);
      }
    }
    if (this.lastDoc[id] === doc) return this.pairSlot[id];
    const p = this.pairs++;
    if (p >= this.pairTerm.length) {
      this.pairTerm = grow(this.pairTerm, p + 1);
      this.pairTT = grow(this.pairTT, p + 1);
      this.pairTX = grow(this.pairTX, p + 1);
    }
    this.pairTerm[p] = id;
    this.pairTT[p] = 0;
    this.pairTX[p] = 0;
    this.lastDoc[id] = doc;
    this.pairSlot[id] = p;
    return p;
  }

  /** The segment bytes (docs ordered by doc_id bytes; the same input gives the same bytes). */
  finish(): Uint8Array {
    const sorted = this.docs
      .map((d, input) => ({ d, input, key: utf8.encode(d.doc_id) }))
      .sort((x, y) => compareBytes(x.key, y.key));
    for (let i = 1; i < sorted.length; i++) {
      if (bytesEqual(sorted[i - 1].key, sorted[i].key))
        throw new FsmeshError('internal', `segment: duplicate doc_id ${sorted[i].d.doc_id}`);
    }
    const inv = this.invert(sorted.map((x) => x.input));
    const order = this.names.map((_, i) => i).sort((x, y) => compareUtf8(this.names[x], this.names[y]));
    const lens = new Int32Array(sorted.length);
    sorted.forEach(({ d }, docnum) => {
      lens[docnum] = d.text_len + IMPACT_TITLE_BOOST * d.title_len;
    });
    // Skyline ties are broken in TopK's order (JS string order of doc_ids). It equals the rows'
    // UTF-8 byte order unless an id holds a character above U+FFFF: then the keys go along.
    const ids = sorted.map(({ d }) => d.doc_id);
    const keys = ids.every((id, i) => i === 0 || ids[i - 1] < id) ? null : ids;
    const postings = encodePostings(inv, order, lens, keys);
    // Version 4: the dictionary's restart points follow it; their sizes are in the header.
    const { dict, restarts } = this.dictionary(order, inv.start, postings.lengths);
    const rest = new ByteWriter(1 << 16);
    // Version 5: doc ids front-coded (bytes shared with the previous id, then the rest).
    let prev: Uint8Array = new Uint8Array(0);
    for (const { key } of sorted) {
      // Readers decode the ids joined by newlines: ingest refuses control characters in an id.
      invariant(!key.includes(0x0a), 'segment: a doc id with a newline reached the builder');
      let shared = 0;
      const n = Math.min(prev.length, key.length);
      while (shared < n && prev[shared] === key[shared]) shared++;
      rest.varint(shared);
      rest.varint(key.length - shared);
      rest.bytes(key.subarray(shared));
      prev = key;
    }
    for (const { d } of sorted) {
      rest.varint(d.title_len);
      rest.varint(d.text_len);
    }
    rest.bytes(dict);
    rest.bytes(restarts);
    const body = rest.finish();
    const w = new ByteWriter(HEADER_BYTES_V5);
    w.bytes(SEGMENT_MAGIC);
    w.u32(SEGMENT_VERSION);
    w.u32(sorted.length);
    w.u32(order.length);
    w.u32(IMPACT_TITLE_BOOST);
    w.u32(SKYLINE_K);
    w.u32(dict.length);
    w.u32(restarts.length);
    // Version 5: where the postings start and end, and their page size, so a reader can read the
    // head alone and then a term's pages.
    const headBytes = HEADER_BYTES_V5 + body.length;
    w.u32(headBytes);
    w.u32(postings.bytes.length);
    w.u32(PAGE_BYTES);
    const header = w.finish();
    invariant(header.length === HEADER_BYTES_V5, 'segment header size');
    return sealSegment(header, body, postings.bytes);
  }

  /**
   * The term dictionary (prefix-compressed entries in term order) and its restart points: for
   * every RESTART_TERMS-th term, where its entry starts in the dictionary, where its data starts
   * in the postings, and the term itself (docs/formats.md).
   */
  private dictionary(order: number[], start: Int32Array, lengths: ArrayLike<number>) {
    const d = new ByteWriter(1 << 16);
    const rs = new ByteWriter(1 << 12);
    let prev = new Uint8Array(0);
    let data = 0;
    order.forEach((id, k) => {
      const b = utf8.encode(this.names[id]);
      if (k % RESTART_TERMS === 0) {
        rs.varint(d.length);
        rs.varint(data);
        rs.varint(b.length);
        rs.bytes(b);
      }
      let shared = 0;
      while (shared < prev.length && shared < b.length && prev[shared] === b[shared]) shared++;
      d.varint(shared);
      d.varint(b.length - shared);
      d.bytes(b.subarray(shared));
      d.varint(start[id + 1] - start[id]);
      d.varint(lengths[k]);
      data += lengths[k];
      prev = b;
    });
    return { dict: d.finish(), restarts: rs.finish() };
  }

  /**
   * Counting sort of the pairs by term, visiting documents in docnum order (`inputOf[docnum]` is
   * the document's add order), so each term's postings come out sorted by docnum.
   */
  private invert(inputOf: number[]) {
    const T = this.names.length;
    const start = new Int32Array(T + 1);
    for (let p = 0; p < this.pairs; p++) start[this.pairTerm[p] + 1]++;
    for (let i = 0; i < T; i++) start[i + 1] += start[i];
    const fill = start.slice(0, T);
    const postDoc = new Int32Array(this.pairs);
    const postTT = new Int32Array(this.pairs);
    const postTX = new Int32Array(this.pairs);
    inputOf.forEach((input, docnum) => {
      const end = this.docs[input].pairEnd;
      for (let p = input === 0 ? 0 : this.docs[input - 1].pairEnd; p < end; p++) {
        const i = fill[this.pairTerm[p]]++;
        postDoc[i] = docnum;
        postTT[i] = this.pairTT[p];
        postTX[i] = this.pairTX[p];
      }
    });
    return { start, postDoc, postTT, postTX };
  }
}

/** Bytes of a posting's packed tf: varint (tf_text·2 + title flag) [, varint tf_title]. */
function tfBytes(tt: number, tx: number): number {
  return varintSize(tx * 2 + (tt > 0 ? 1 : 0)) + (tt > 0 ? varintSize(tt) : 0);
}

/**
 * The (tf, len) pairs of postings [from, to) that no other pair beats (higher-or-equal tf with
 * lower-or-equal length), tf descending; folded into one (max tf, min len) pair when too many.
 * BM25's tf factor grows with tf and shrinks with length, so the best of these bounds every
 * posting of the block whatever k1, b and the generation's average length.
 */
function blockImpacts(inv: Inverted, lens: Int32Array, from: number, to: number): number[] {
  // The frontier stays small (a few pairs): insert each posting unless dominated, dropping what it
  // dominates. No sort, no allocation per posting (this was a sixth of a build when sorting).
  const tfs: number[] = [];
  const ls: number[] = [];
  let maxTf = 0;
  let minLen = Number.POSITIVE_INFINITY;
  for (let i = from; i < to; i++) {
    const tf = inv.postTX[i] + IMPACT_TITLE_BOOST * inv.postTT[i];
    const len = lens[inv.postDoc[i]];
    if (tf > maxTf) maxTf = tf;
    if (len < minLen) minLen = len;
    let dominated = false;
    for (let j = 0; j < tfs.length && !dominated; j++) dominated = tfs[j] >= tf && ls[j] <= len;
    if (dominated) continue;
    let k = 0;
    for (let j = 0; j < tfs.length; j++)
      if (!(tf >= tfs[j] && len <= ls[j])) {
        tfs[k] = tfs[j];
        ls[k] = ls[j];
        k++;
      }
    tfs.length = k;
    ls.length = k;
    tfs.push(tf);
    ls.push(len);
  }
  if (tfs.length > MAX_IMPACTS_PER_BLOCK) return [maxTf, minLen];
  const order = tfs.map((_, j) => j).sort((x, y) => tfs[y] - tfs[x]);
  const out: number[] = [];
  for (const j of order) out.push(tfs[j], ls[j]);
  return out;
}

/** Encoded bytes of postings [from, to), the first delta taken from docnum `prev`. */
function postingsBytes(inv: Inverted, from: number, to: number, prev: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    n += varintSize(inv.postDoc[i] - prev) + tfBytes(inv.postTT[i], inv.postTX[i]);
    prev = inv.postDoc[i];
  }
  return n;
}

/**
 * One term's block table (terms with more than POSTINGS_BLOCK postings), ending with its skyline;
 * returns its postings' bytes.
 */
function blockTable(
  inv: Inverted,
  lens: Int32Array,
  keys: string[] | null,
  id: number,
  w: ByteWriter,
): number {
  const { start, postDoc, postTT, postTX } = inv;
  let prevLast = 0;
  let total = 0;
  for (let b = start[id]; b < start[id + 1]; b += POSTINGS_BLOCK) {
    const e = Math.min(b + POSTINGS_BLOCK, start[id + 1]);
    const bytes = postingsBytes(inv, b, e, prevLast);
    const last = postDoc[e - 1];
    total += bytes;
    const impacts = blockImpacts(inv, lens, b, e);
    w.varint(last - prevLast);
    w.varint(bytes);
    w.varint(impacts.length / 2);
    for (const v of impacts) w.varint(v);
    prevLast = last;
  }
  const sky = termSkyline(inv, lens, keys, start[id], start[id + 1]);
  w.varint(sky.length);
  let prev = 0;
  for (const i of sky) {
    w.varint(postDoc[i] - prev);
    w.varint(postTX[i] * 2 + (postTT[i] > 0 ? 1 : 0));
    if (postTT[i] > 0) w.varint(postTT[i]);
    prev = postDoc[i];
  }
  return total;
}

/**
 * The postings of every term in `order`, LEB128-encoded into one buffer (each long term's block
 * table, prefixed by its byte length, first); byte length per term.
 */
function encodePostings(inv: Inverted, order: number[], lens: Int32Array, keys: string[] | null) {
  const { start, postDoc, postTT, postTX } = inv;
  const lengths = new Int32Array(order.length);
  const tables = new Map<number, Uint8Array>();
  let total = 0;
  order.forEach((id, k) => {
    let n: number;
    if (start[id + 1] - start[id] > POSTINGS_BLOCK) {
      // The table sums its blocks' bytes: the postings are sized once.
      const w = new ByteWriter(256);
      const postings = blockTable(inv, lens, keys, id, w);
      const t = w.finish();
      tables.set(k, t);
      n = postings + varintSize(t.length) + t.length;
    } else n = postingsBytes(inv, start[id], start[id + 1], 0);
    lengths[k] = n;
    total += n;
  });
  const out = new Uint8Array(total);
  let pos = 0;
  const put = (v: number) => {
    while (v >= 0x80) {
      out[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[pos++] = v;
  };
  order.forEach((id, k) => {
    const t = tables.get(k);
    if (t) {
      put(t.length);
      out.set(t, pos);
      pos += t.length;
    }
    let last = 0;
    for (let i = start[id]; i < start[id + 1]; i++) {
      put(postDoc[i] - last);
      // tf packed: (tf_text << 1 | title flag), then tf_title only when the flag is set.
      put(postTX[i] * 2 + (postTT[i] > 0 ? 1 : 0));
      if (postTT[i] > 0) put(postTT[i]);
      last = postDoc[i];
    }
  });
  invariant(pos === total, 'segment postings: encoded length differs from the computed one');
  return { bytes: out, lengths };
}

/**
 * Version 5's file from its parts: head (header + body), postings, then the page table (a crc32
 * per PAGE_BYTES of postings), the head's and the table's crc32, and the crc32 of every byte
 * before it (docs/formats.md).
 */
function sealSegment(header: Uint8Array, body: Uint8Array, postings: Uint8Array): Uint8Array {
  const headBytes = header.length + body.length;
  const pages = Math.ceil(postings.length / PAGE_BYTES);
  const tableAt = headBytes + postings.length;
  const out = new Uint8Array(tableAt + 4 * pages + TAIL_BYTES_V5);
  const view = new DataView(out.buffer);
  out.set(header);
  out.set(body, header.length);
  out.set(postings, headBytes);
  for (let p = 0; p < pages; p++)
    view.setUint32(tableAt + 4 * p, crc32(postings.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES)), true);
  const tailAt = tableAt + 4 * pages;
  view.setUint32(tailAt, crc32(out.subarray(0, headBytes)), true);
  view.setUint32(tailAt + 4, crc32(out.subarray(tableAt, tailAt)), true);
  view.setUint32(tailAt + 8, crc32(out.subarray(0, tailAt + 8)), true);
  return out;
}

/** A segment from documents already tokenized (merges). */
export function buildSegment(docs: IndexedDoc[]): Uint8Array {
  const b = new SegmentBuilder();
  for (const d of docs) b.addIndexed(d);
  return b.finish();
}
