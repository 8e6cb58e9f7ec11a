/**
 * Lexical segment reader (Tantivy-style, replaces the missing binding; DESIGN.md §5): one immutable
 * file per build, written by segment-builder.ts. Byte layout (docs/formats.md §segment):
 *   magic "FSLXSEG1" | u32 version (1 to 4) | u32 doc_count | u32 term_count
 *     | u32 impact_title_boost (version ≥ 2; 0 in version 1) | u32 skyline_k (version ≥ 3)
 *     | u32 dict_bytes | u32 restart_bytes (version 4)
 *   doc table:     doc_count × (varint byte_len, UTF-8 doc_id)        -- docnum = row index
 *   field lengths: doc_count × (varint title_len, varint text_len)    -- in tokens
 *   term dict:     term_count × (varint shared_prefix, varint suffix_len, suffix bytes,
 *                                varint df, varint postings_bytes)   -- terms in UTF-8 byte order
 *   restart points (version 4): ⌈term_count / 16⌉ × (varint entry_offset in the dictionary,
 *                  varint data_offset in the postings, varint term_len, term bytes)
 *   postings:      per term: [version ≥ 2, df > 128: varint table_bytes, block table
 *                  (version 3: ending with the term's skyline)]
 *                  then per doc: varint docnum_delta, then version ≥ 2: varint (tf_text·2 + title
 *                  flag) [, varint tf_title if flagged]; version 1: varint tf_title, varint tf_text
 *   footer:        u32 crc32 of every preceding byte
 * Documents are ordered by doc_id (UTF-8 byte order), so the same input gives the same bytes.
 */
import { crc32 } from 'node:zlib';
import { ByteReader, bytesEqual, decodeUtf8 } from '../../core/bytes.ts';
import { FsmeshError } from '../../core/errors.ts';
import { type IndexedDoc, MAX_IMPACTS_PER_BLOCK, POSTINGS_BLOCK, SEGMENT_MAGIC } from './segment-format.ts';
import { TermDictionary, type TermEntry } from './term-dictionary.ts';

export { buildSegment, SegmentBuilder } from './segment-builder.ts';
export {
  compareUtf8,
  type IndexedDoc,
  SEGMENT_VERSION,
  type SegmentDocInput,
} from './segment-format.ts';
export type { TermDictionary, TermEntry } from './term-dictionary.ts';

/** A term's block table, parsed: per block its last docnum, byte range and impacts. */
export interface BlockTable {
  count: number;
  last_doc: Int32Array;
  /** Byte offset of each block's first posting; start[count] = end of the postings. */
  start: Int32Array;
  /** Block i's impacts are (impact_tf[j], impact_len[j]) for impact_start[i] <= j < impact_start[i+1]. */
  impact_start: Int32Array;
  impact_tf: Int32Array;
  impact_len: Int32Array;
  /**
   * Version 3: the term's skyline (docnums ascending, with their tf in title and text): the
   * postings fewer than the segment's skyline_k others beat. Empty in older versions.
   */
  sky_doc: Int32Array;
  sky_tt: Int32Array;
  sky_tx: Int32Array;
}

/** Largest skyline_k a segment may declare (the builder writes SKYLINE_K). */
const MAX_SKYLINE_K = 4096;

/** An opened, read-only segment. */
export class Segment {
  readonly object_id: string;
  readonly bytes: Uint8Array;
  readonly doc_ids: string[];
  readonly title_len: Uint32Array;
  readonly text_len: Uint32Array;
  readonly terms: TermDictionary;
  readonly version: number;
  /** Title weight the block impacts were computed with (0: no impacts, version 1). */
  readonly impact_title_boost: number;
  /** A term's skyline holds its postings beaten by fewer than this many others (0: versions 1, 2). */
  readonly skyline_k: number;
  /** Parsed block tables by table offset (blockTable). */
  private readonly tables = new Map<number, BlockTable>();
  private docIndex: Map<string, number> | null = null;

  private constructor(
    objectId: string,
    bytes: Uint8Array,
    docIds: string[],
    titleLen: Uint32Array,
    textLen: Uint32Array,
    terms: TermDictionary,
    version: number,
    impactTitleBoost: number,
    skylineK: number,
  ) {
    this.version = version;
    this.impact_title_boost = impactTitleBoost;
    this.skyline_k = skylineK;
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
    try {
      return Segment.parse(objectId, bytes);
    } catch (err) {
      // Truncation found by the byte reader names the object too: read repair needs its id.
      if (err instanceof FsmeshError && err.code === 'corrupt_data' && err.details.object_id === undefined)
        throw new FsmeshError('corrupt_data', err.message, { ...err.details, object_id: objectId });
      throw err;
    }
  }

  private static parse(objectId: string, bytes: Uint8Array): Segment {
    const what = `lexical segment ${objectId}`;
    if (bytes.length < 28)
      throw new FsmeshError('corrupt_data', `${what}: too short`, { object_id: objectId });
    const body = bytes.subarray(0, bytes.length - 4);
    const stored = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 4, true);
    if (crc32(body) !== stored)
      throw new FsmeshError('corrupt_data', `${what}: checksum mismatch`, { object_id: objectId });
    const r = new ByteReader(body, what);
    if (!bytesEqual(r.bytes(8), SEGMENT_MAGIC))
      throw new FsmeshError('corrupt_data', `${what}: bad magic`, { object_id: objectId });
    const version = r.u32();
    if (version < 1 || version > 4)
      throw new FsmeshError('unsupported_version', `${what}: unsupported version ${version}`);
    const docCount = r.u32();
    const termCount = r.u32();
    const impactTitleBoost = version >= 2 ? r.u32() : (r.u32(), 0);
    const skylineK = version >= 3 ? r.u32() : 0;
    const dictBytes = version >= 4 ? r.u32() : -1;
    const restartBytes = version >= 4 ? r.u32() : -1;
    if (version >= 3 && (skylineK < 1 || skylineK > MAX_SKYLINE_K))
      throw new FsmeshError('corrupt_data', `${what}: skyline_k ${skylineK} outside 1..${MAX_SKYLINE_K}`, {
        object_id: objectId,
      });
    const docIds = new Array<string>(docCount);
    for (let i = 0; i < docCount; i++) docIds[i] = decodeUtf8(r.bytes(r.varint()), what);
    const titleLen = new Uint32Array(docCount);
    const textLen = new Uint32Array(docCount);
    for (let i = 0; i < docCount; i++) {
      titleLen[i] = r.varint();
      textLen[i] = r.varint();
    }
    const terms =
      version >= 4
        ? TermDictionary.fromRestarts(body, r.pos, dictBytes, restartBytes, termCount, version, objectId)
        : TermDictionary.walk(body, r.pos, termCount, version, objectId);
    return new Segment(
      objectId,
      bytes,
      docIds,
      titleLen,
      textLen,
      terms,
      version,
      impactTitleBoost,
      skylineK,
    );
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
    const packed = this.version >= 2;
    let pos = e.postings;
    const end = e.offset + e.length;
    let doc = 0;
    const varint = () => {
      let c = b[pos++];
      let v = c & 0x7f;
      for (let s = 7; c & 0x80; s += 7) {
        c = b[pos++];
        v |= (c & 0x7f) << s;
      }
      return v;
    };
    while (pos < end) {
      doc += varint();
      if (packed) {
        // Version 2: varint (tf_text·2 + title flag) [, varint tf_title].
        const f = varint();
        fn(doc, f & 1 ? varint() : 0, f >>> 1);
      } else {
        const tt = varint();
        fn(doc, tt, varint());
      }
    }
  }

  /**
   * Parse a term's block table (null when it has none). Checked against the term's postings: block
   * ranges must tile them exactly and last docnums must rise within the segment, else corrupt_data.
   */
  blockTable(e: TermEntry): BlockTable | null {
    if (e.table < 0) return null;
    // Parsed once per term and kept: a table is ~1/40 of its postings' bytes, and re-parsing it on
    // every query was a fifth of a single-term query's time.
    let t = this.tables.get(e.table);
    if (t === undefined) {
      t = this.parseBlockTable(e);
      this.tables.set(e.table, t);
    }
    return t;
  }

  private parseBlockTable(e: TermEntry): BlockTable {
    const what = `lexical segment ${this.object_id}`;
    const r = new ByteReader(this.bytes.subarray(e.table, e.postings), what);
    const count = Math.ceil(e.df / POSTINGS_BLOCK);
    // Each block takes at least 5 bytes of the table: bound the counts before allocating by them.
    if (count * 5 > e.postings - e.table || e.df > this.doc_count)
      throw new FsmeshError('corrupt_data', `${what}: block table too short for df ${e.df}`, {
        object_id: this.object_id,
      });
    const last_doc = new Int32Array(count);
    const start = new Int32Array(count + 1);
    const impact_start = new Int32Array(count + 1);
    // Each impact takes at least two bytes of the table: a bound for the arrays.
    const tf = new Int32Array((e.postings - e.table) >> 1);
    const len = new Int32Array(tf.length);
    let nImpacts = 0;
    let last = 0;
    start[0] = e.postings;
    for (let i = 0; i < count; i++) {
      last += r.varint();
      last_doc[i] = last;
      start[i + 1] = start[i] + r.varint();
      const n = r.varint();
      if (
        n < 1 ||
        n > MAX_IMPACTS_PER_BLOCK ||
        (i > 0 && last_doc[i] <= last_doc[i - 1]) ||
        last >= this.doc_count
      )
        throw new FsmeshError('corrupt_data', `${what}: bad block table`, { object_id: this.object_id });
      for (let j = 0; j < n; j++) {
        if (nImpacts >= tf.length)
          throw new FsmeshError('corrupt_data', `${what}: bad block table`, { object_id: this.object_id });
        tf[nImpacts] = r.varint();
        len[nImpacts++] = r.varint();
      }
      impact_start[i + 1] = nImpacts;
    }
    const sky = this.version >= 3 ? this.parseSkyline(r, e.df) : null;
    if (r.pos !== e.postings - e.table || start[count] !== e.offset + e.length)
      throw new FsmeshError('corrupt_data', `${what}: block table does not match the postings`, {
        object_id: this.object_id,
      });
    return {
      count,
      last_doc,
      start,
      impact_start,
      impact_tf: tf.subarray(0, nImpacts),
      impact_len: len.subarray(0, nImpacts),
      sky_doc: sky?.doc ?? new Int32Array(0),
      sky_tt: sky?.tt ?? new Int32Array(0),
      sky_tx: sky?.tx ?? new Int32Array(0),
    };
  }

  /** A version-3 table's skyline: count, then (docnum delta, packed tf) per posting, docnums rising. */
  private parseSkyline(r: ByteReader, df: number) {
    const bad = (m: string) =>
      new FsmeshError('corrupt_data', `lexical segment ${this.object_id}: skyline ${m}`, {
        object_id: this.object_id,
      });
    const n = r.varint();
    // Each entry takes at least two bytes: bound the count before allocating by it.
    if (n < 1 || n > df || n * 2 > r.remaining) throw bad(`count ${n} for df ${df}`);
    const doc = new Int32Array(n);
    const tt = new Int32Array(n);
    const tx = new Int32Array(n);
    let d = 0;
    for (let i = 0; i < n; i++) {
      const delta = r.varint();
      if (i > 0 && delta === 0) throw bad('docnums do not rise');
      d += delta;
      if (d >= this.doc_count) throw bad(`docnum ${d} outside the segment`);
      doc[i] = d;
      const f = r.varint();
      tx[i] = f >>> 1;
      tt[i] = f & 1 ? r.varint() : 0;
    }
    return { doc, tt, tx };
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
