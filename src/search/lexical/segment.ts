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
import { FsmeshError } from '../../core/errors.ts';
import { termFrequencies, tokenize } from '../text.ts';

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

export function indexDoc(d: SegmentDocInput): IndexedDoc {
  const titleTokens = d.title ? tokenize(d.title) : [];
  const textTokens = tokenize(d.text);
  const terms = new Map<string, [number, number]>();
  for (const [t, n] of termFrequencies(titleTokens)) terms.set(t, [n, 0]);
  for (const [t, n] of termFrequencies(textTokens)) {
    const e = terms.get(t);
    if (e) e[1] = n;
    else terms.set(t, [0, n]);
  }
  return { doc_id: d.doc_id, title_len: titleTokens.length, text_len: textTokens.length, terms };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export function buildSegment(docs: IndexedDoc[]): Uint8Array {
  const sorted = docs
    .map((d) => ({ d, key: utf8.encode(d.doc_id) }))
    .sort((x, y) => compareBytes(x.key, y.key));
  for (let i = 1; i < sorted.length; i++) {
    if (bytesEqual(sorted[i - 1].key, sorted[i].key))
      throw new FsmeshError('internal', `segment: duplicate doc_id ${sorted[i].d.doc_id}`);
  }
  // term -> postings writer
  const postings = new Map<string, { w: ByteWriter; df: number; last: number }>();
  sorted.forEach(({ d }, docnum) => {
    for (const [term, [tt, tx]] of d.terms) {
      let p = postings.get(term);
      if (!p) {
        p = { w: new ByteWriter(16), df: 0, last: 0 };
        postings.set(term, p);
      }
      p.w.varint(docnum - p.last);
      p.w.varint(tt);
      p.w.varint(tx);
      p.last = docnum;
      p.df++;
    }
  });
  const terms = [...postings.keys()]
    .map((t) => ({ t, b: utf8.encode(t) }))
    .sort((x, y) => compareBytes(x.b, y.b));
  const w = new ByteWriter(1 << 16);
  w.bytes(MAGIC);
  w.u32(SEGMENT_VERSION);
  w.u32(sorted.length);
  w.u32(terms.length);
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
  for (const { t, b } of terms) {
    let shared = 0;
    while (shared < prev.length && shared < b.length && prev[shared] === b[shared]) shared++;
    const p = postings.get(t)!;
    w.varint(shared);
    w.varint(b.length - shared);
    w.bytes(b.subarray(shared));
    w.varint(p.df);
    w.varint(p.w.length);
    prev = b;
  }
  for (const { t } of terms) w.bytes(postings.get(t)!.w.finish());
  const body = w.finish();
  const out = new ByteWriter(body.length + 4);
  out.bytes(body);
  out.u32(crc32(body));
  return out.finish();
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
