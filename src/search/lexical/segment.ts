/**
 * Lexical segment (Tantivy-style, replaces the missing binding; DESIGN.md §5): one immutable
 * file per build. Byte layout (docs/formats.md §segment):
 *   magic "FSLXSEG1" | u32 version=1 | u32 doc_count | u32 term_count | u32 flags=0
 *   doc table:     doc_count × (varint byte_len, UTF-8 doc_id)        -- docnum = row index
 *   field lengths: doc_count × (varint title_len, varint text_len)    -- in tokens
 *   term dict:     term_count × (varint shared_prefix, varint suffix_len, suffix bytes,
 *                                varint df, varint postings_bytes)   -- terms in UTF-8 byte order
 *   postings:      per term, per doc: varint docnum_delta, varint tf_title, varint tf_text
 *   footer:        u32 crc32 of every preceding byte
 * Documents are ordered by doc_id (UTF-8 byte order), so the same input gives the same bytes.
 */
import { crc32 } from 'node:zlib';
import { ByteReader, ByteWriter, bytesEqual, decodeUtf8, utf8 } from '../../core/bytes.ts';
import { FsmeshError, invariant } from '../../core/errors.ts';
import { tokenize } from '../text.ts';

const MAGIC = utf8.encode('FSLXSEG1');
export const SEGMENT_VERSION = 1;

export interface SegmentDocInput {
  doc_id: string;
  title?: string;
  text: string;
}

/** A document already tokenized: what a merge carries over without the original text. */
export interface IndexedDoc {
  doc_id: string;
  title_len: number;
  text_len: number;
  /** term -> [tf_title, tf_text] */
  terms: Map<string, [number, number]>;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * Order of the strings' UTF-8 bytes without encoding them: UTF-16 code-unit order agrees with it
 * except that surrogates (U+10000 and up) must sort after U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      if (x <= 0xdfff) x += 0x2800;
      if (y <= 0xdfff) y += 0x2800;
    }
    return x - y;
  }
  return a.length - b.length;
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
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
    const postings = encodePostings(inv, order);
    const w = new ByteWriter(1 << 16);
    w.bytes(MAGIC);
    w.u32(SEGMENT_VERSION);
    w.u32(sorted.length);
    w.u32(order.length);
    w.u32(0);
    for (const { key } of sorted) {
      w.varint(key.length);
      w.bytes(key);
    }
    for (const { d } of sorted) {
      w.varint(d.title_len);
      w.varint(d.text_len);
    }
    let prev = new Uint8Array(0);
    order.forEach((id, k) => {
      const b = utf8.encode(this.names[id]);
      let shared = 0;
      while (shared < prev.length && shared < b.length && prev[shared] === b[shared]) shared++;
      w.varint(shared);
      w.varint(b.length - shared);
      w.bytes(b.subarray(shared));
      w.varint(inv.start[id + 1] - inv.start[id]);
      w.varint(postings.lengths[k]);
      prev = b;
    });
    const head = w.finish();
    const out = new Uint8Array(head.length + postings.bytes.length + 4);
    out.set(head);
    out.set(postings.bytes, head.length);
    new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
    return out;
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

interface Inverted {
  start: Int32Array;
  postDoc: Int32Array;
  postTT: Int32Array;
  postTX: Int32Array;
}

/** The postings of every term in `order`, LEB128-encoded into one buffer; byte length per term. */
function encodePostings(inv: Inverted, order: number[]) {
  const { start, postDoc, postTT, postTX } = inv;
  const lengths = new Int32Array(order.length);
  let total = 0;
  order.forEach((id, k) => {
    let n = 0;
    let last = 0;
    for (let i = start[id]; i < start[id + 1]; i++) {
      n += varintSize(postDoc[i] - last) + varintSize(postTT[i]) + varintSize(postTX[i]);
      last = postDoc[i];
    }
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
  for (const id of order) {
    let last = 0;
    for (let i = start[id]; i < start[id + 1]; i++) {
      put(postDoc[i] - last);
      put(postTT[i]);
      put(postTX[i]);
      last = postDoc[i];
    }
  }
  invariant(pos === total, 'segment postings: encoded length differs from the computed one');
  return { bytes: out, lengths };
}

/** A segment from documents already tokenized (merges). */
export function buildSegment(docs: IndexedDoc[]): Uint8Array {
  const b = new SegmentBuilder();
  for (const d of docs) b.addIndexed(d);
  return b.finish();
}

export interface TermEntry {
  df: number;
  offset: number;
  length: number;
}

/** An opened, read-only segment. */
export class Segment {
  readonly object_id: string;
  readonly bytes: Uint8Array;
  readonly doc_ids: string[];
  readonly title_len: Uint32Array;
  readonly text_len: Uint32Array;
  readonly terms: Map<string, TermEntry>;
  private docIndex: Map<string, number> | null = null;

  private constructor(
    objectId: string,
    bytes: Uint8Array,
    docIds: string[],
    titleLen: Uint32Array,
    textLen: Uint32Array,
    terms: Map<string, TermEntry>,
  ) {
    this.object_id = objectId;
    this.bytes = bytes;
    this.doc_ids = docIds;
    this.title_len = titleLen;
    this.text_len = textLen;
    this.terms = terms;
  }

  get doc_count(): number {
    return this.doc_ids.length;
  }

  /** Parse and check a segment; any damage is a corrupt_data error naming the object. */
  static open(objectId: string, bytes: Uint8Array): Segment {
    const what = `lexical segment ${objectId}`;
    if (bytes.length < 28)
      throw new FsmeshError('corrupt_data', `${what}: too short`, { object_id: objectId });
    const body = bytes.subarray(0, bytes.length - 4);
    const stored = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 4, true);
    if (crc32(body) !== stored)
      throw new FsmeshError('corrupt_data', `${what}: checksum mismatch`, { object_id: objectId });
    const r = new ByteReader(body, what);
    if (!bytesEqual(r.bytes(8), MAGIC))
      throw new FsmeshError('corrupt_data', `${what}: bad magic`, { object_id: objectId });
    const version = r.u32();
    if (version !== SEGMENT_VERSION)
      throw new FsmeshError('unsupported_version', `${what}: unsupported version ${version}`);
    const docCount = r.u32();
    const termCount = r.u32();
    r.u32();
    const docIds = new Array<string>(docCount);
    for (let i = 0; i < docCount; i++) docIds[i] = decodeUtf8(r.bytes(r.varint()), what);
    const titleLen = new Uint32Array(docCount);
    const textLen = new Uint32Array(docCount);
    for (let i = 0; i < docCount; i++) {
      titleLen[i] = r.varint();
      textLen[i] = r.varint();
    }
    const terms = new Map<string, TermEntry>();
    const entries: { t: string; df: number; len: number }[] = new Array(termCount);
    let prev = new Uint8Array(0);
    const dec = new TextDecoder();
    for (let i = 0; i < termCount; i++) {
      const shared = r.varint();
      const suffix = r.bytes(r.varint());
      if (shared > prev.length)
        throw new FsmeshError('corrupt_data', `${what}: bad term prefix`, { object_id: objectId });
      const b = new Uint8Array(shared + suffix.length);
      b.set(prev.subarray(0, shared));
      b.set(suffix, shared);
      entries[i] = { t: dec.decode(b), df: r.varint(), len: r.varint() };
      prev = b;
    }
    let off = r.pos;
    for (const e of entries) {
      terms.set(e.t, { df: e.df, offset: off, length: e.len });
      off += e.len;
    }
    if (off !== body.length)
      throw new FsmeshError('corrupt_data', `${what}: postings length mismatch`, { object_id: objectId });
    return new Segment(objectId, bytes, docIds, titleLen, textLen, terms);
  }

  docnumOf(docId: string): number {
    if (!this.docIndex) {
      this.docIndex = new Map();
      this.doc_ids.forEach((d, i) => this.docIndex!.set(d, i));
    }
    return this.docIndex.get(docId) ?? -1;
  }

  /** Visit the postings of `term`: fn(docnum, tf_title, tf_text). */
  forEachPosting(term: string, fn: (docnum: number, tfTitle: number, tfText: number) => void): void {
    const e = this.terms.get(term);
    if (!e) return;
    const b = this.bytes;
    let pos = e.offset;
    const end = e.offset + e.length;
    let doc = 0;
    while (pos < end) {
      // Inline LEB128 decoding: this loop is the lexical hot path.
      let v = 0;
      let shift = 0;
      let c: number;
      do {
        c = b[pos++];
        v |= (c & 0x7f) << shift;
        shift += 7;
      } while (c & 0x80);
      doc += v;
      let tt = 0;
      shift = 0;
      do {
        c = b[pos++];
        tt |= (c & 0x7f) << shift;
        shift += 7;
      } while (c & 0x80);
      let tx = 0;
      shift = 0;
      do {
        c = b[pos++];
        tx |= (c & 0x7f) << shift;
        shift += 7;
      } while (c & 0x80);
      fn(doc, tt, tx);
    }
  }

  /** Rebuild IndexedDocs for a merge (postings inverted back per document). */
  toIndexedDocs(live: (docnum: number) => boolean): IndexedDoc[] {
    const docs: (IndexedDoc | null)[] = this.doc_ids.map((doc_id, i) =>
      live(i) ? { doc_id, title_len: this.title_len[i], text_len: this.text_len[i], terms: new Map() } : null,
    );
    for (const term of this.terms.keys()) {
      this.forEachPosting(term, (d, tt, tx) => {
        docs[d]?.terms.set(term, [tt, tx]);
      });
    }
    return docs.filter((d): d is IndexedDoc => d !== null);
  }
}
