/**
 * Lexical segment reader (Tantivy-style, replaces the missing binding; DESIGN.md §5): one immutable
 * file per build, written by segment-builder.ts. Byte layout (docs/formats.md §segment):
 *   magic "FSLXSEG1" | u32 version (1 to 5) | u32 doc_count | u32 term_count
 *     | u32 impact_title_boost (version ≥ 2; 0 in version 1) | u32 skyline_k (version ≥ 3)
 *     | u32 dict_bytes | u32 restart_bytes (version ≥ 4)
 *     | u32 head_bytes | u32 postings_bytes | u32 page_bytes (version 5)
 *   doc table:     doc_count × (varint byte_len, UTF-8 doc_id)        -- docnum = row index
 *   field lengths: doc_count × (varint title_len, varint text_len)    -- in tokens
 *   term dict:     term_count × (varint shared_prefix, varint suffix_len, suffix bytes,
 *                                varint df, varint postings_bytes)   -- terms in UTF-8 byte order
 *   restart points (version ≥ 4): ⌈term_count / 16⌉ × (varint entry_offset in the dictionary,
 *                  varint data_offset in the postings, varint term_len, term bytes)
 *   postings:      per term: [version ≥ 2, df > 128: varint table_bytes, block table
 *                  (version ≥ 3: ending with the term's skyline)]
 *                  then per doc: varint docnum_delta, then version ≥ 2: varint (tf_text·2 + title
 *                  flag) [, varint tf_title if flagged]; version 1: varint tf_title, varint tf_text
 *   page table (version 5): ⌈postings_bytes / page_bytes⌉ × u32 crc32 of a page of the postings,
 *                  then u32 crc32 of the head (every byte before the postings), u32 crc32 of the table
 *   footer:        u32 crc32 of every preceding byte
 * A version 5 segment opens whole (`open`) or by ranges (`openRanged`: head and page table now,
 * a term's pages when a query pins it).
 * Documents are ordered by doc_id (UTF-8 byte order), so the same input gives the same bytes.
 */
import { crc32 } from 'node:zlib';
import { ByteReader, bytesEqual } from '../../core/bytes.ts';
import { FsmeshError, invariant } from '../../core/errors.ts';
import type { PostingsCache } from './postings-cache.ts';
import { RangedPostings, type RangeRead, type TermPostings } from './ranged-postings.ts';
import {
  HEADER_BYTES_V5,
  type IndexedDoc,
  MAX_IMPACTS_PER_BLOCK,
  POSTINGS_BLOCK,
  SEGMENT_MAGIC,
  TAIL_BYTES_V5,
} from './segment-format.ts';
import { namingObject, readHead, readHeader, type SegmentHead, type SegmentHeader } from './segment-head.ts';
import type { TermDictionary, TermEntry } from './term-dictionary.ts';

export type { RangeRead, TermPostings } from './ranged-postings.ts';
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

/** An opened, read-only segment: whole in memory, or by ranges (version 5, `openRanged`). */
export class Segment {
  readonly object_id: string;
  readonly doc_ids: string[];
  readonly title_len: Uint32Array;
  readonly text_len: Uint32Array;
  readonly terms: TermDictionary;
  readonly version: number;
  /** Title weight the block impacts were computed with (0: no impacts, version 1). */
  readonly impact_title_boost: number;
  /** A term's skyline holds its postings beaten by fewer than this many others (0: versions 1, 2). */
  readonly skyline_k: number;
  /** Bytes this segment keeps in memory for its lifetime (a ranged one: its head and page table). */
  readonly resident_bytes: number;
  /** Parsed block tables by the term's data offset (blockTable). */
  private readonly tables = new Map<number, BlockTable>();
  private docIndex: Map<string, number> | null = null;
  /** The whole file, or null when the postings are read by ranges (`ranged`). */
  private readonly whole: Uint8Array | null;
  private readonly ranged: RangedPostings | null;

  private constructor(
    objectId: string,
    h: SegmentHeader,
    head: SegmentHead,
    source: { whole: Uint8Array } | { ranged: RangedPostings; resident_bytes: number },
  ) {
    this.object_id = objectId;
    this.version = h.version;
    this.impact_title_boost = h.impact_title_boost;
    this.skyline_k = h.skyline_k;
    this.doc_ids = head.doc_ids;
    this.title_len = head.title_len;
    this.text_len = head.text_len;
    this.terms = head.terms;
    this.whole = 'whole' in source ? source.whole : null;
    this.ranged = 'ranged' in source ? source.ranged : null;
    this.resident_bytes = 'whole' in source ? source.whole.length : source.resident_bytes;
  }

  get doc_count(): number {
    return this.doc_ids.length;
  }

  /** True when the postings are read by ranges: a query pins its terms first (`pin`). */
  get is_ranged(): boolean {
    return this.ranged !== null;
  }

  /** The whole file (builds and merges open segments whole). */
  get bytes(): Uint8Array {
    invariant(this.whole, `lexical segment ${this.object_id} is read by ranges: it has no whole bytes`);
    return this.whole;
  }

  /** Parse and check a segment; any damage is a corrupt_data error naming the object. */
  static open(objectId: string, bytes: Uint8Array): Segment {
    return namingObject(objectId, () => Segment.parse(objectId, bytes));
  }

  /**
   * Open a version 5 segment by ranges: its header, head (rows, lengths, dictionary) and page
   * table are read and checked now (their crc32s); a term's postings are read, page-checked and
   * cached in `cache` when a query pins the term. `size_bytes` is the file's size from the
   * manifest. Null for an older version (no page table): the caller reads it whole.
   */
  static async openRanged(
    objectId: string,
    size_bytes: number,
    read: RangeRead,
    cache: PostingsCache,
  ): Promise<Segment | null> {
    const what = `lexical segment ${objectId}`;
    const corrupt = (m: string) => new FsmeshError('corrupt_data', `${what}: ${m}`, { object_id: objectId });
    if (size_bytes < HEADER_BYTES_V5 + TAIL_BYTES_V5) return null;
    const first = await read(0, HEADER_BYTES_V5);
    // Anything but a version 5 magic and version (an older segment, or a damaged header) is read
    // whole: the whole file's checksum then tells damage from an older version.
    if (first.length < HEADER_BYTES_V5 || !bytesEqual(first.subarray(0, 8), SEGMENT_MAGIC)) return null;
    if (new DataView(first.buffer, first.byteOffset).getUint32(8, true) !== 5) return null;
    const h = namingObject(objectId, () => readHeader(new ByteReader(first, what), objectId));
    const pages = Math.ceil(h.postings_bytes / h.page_bytes);
    const tableAt = h.head_bytes + h.postings_bytes;
    if (tableAt + 4 * pages + TAIL_BYTES_V5 !== size_bytes)
      throw corrupt(`sizes in the header do not add up to the file's ${size_bytes} bytes`);
    const [head, tail] = await Promise.all([read(0, h.head_bytes), read(tableAt, size_bytes - tableAt)]);
    if (head.length !== h.head_bytes || tail.length !== size_bytes - tableAt) throw corrupt('truncated');
    const tv = new DataView(tail.buffer, tail.byteOffset, tail.length);
    if (crc32(head) !== tv.getUint32(4 * pages, true)) throw corrupt('head checksum mismatch');
    if (crc32(tail.subarray(0, 4 * pages)) !== tv.getUint32(4 * pages + 4, true))
      throw corrupt('page table checksum mismatch');
    const page_crc = new Uint32Array(pages);
    for (let p = 0; p < pages; p++) page_crc[p] = tv.getUint32(4 * p, true);
    const parsed = namingObject(objectId, () => {
      const r = new ByteReader(head, what, HEADER_BYTES_V5);
      return readHead(r, h, head, objectId, true);
    });
    const ranged = new RangedPostings(objectId, read, cache, {
      postings_at: h.head_bytes,
      postings_bytes: h.postings_bytes,
      page_bytes: h.page_bytes,
      page_crc,
    });
    return new Segment(objectId, h, parsed, { ranged, resident_bytes: head.length + tail.length });
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
    const h = readHeader(r, objectId);
    if (
      h.version >= 5 &&
      h.head_bytes + h.postings_bytes + 4 * Math.ceil(h.postings_bytes / h.page_bytes) + TAIL_BYTES_V5 !==
        bytes.length
    )
      throw new FsmeshError('corrupt_data', `${what}: sizes in the header do not add up to the file's`, {
        object_id: objectId,
      });
    return new Segment(objectId, h, readHead(r, h, body, objectId, false), { whole: bytes });
  }

  /**
   * Load (or find cached) and hold the postings of those of `terms` this segment has, until the
   * returned release is called: a query's synchronous scoring reads them (`postings`). A no-op
   * for a whole segment. A page failing its checksum is a corrupt_data error naming the object.
   */
  async pin(terms: Iterable<string>): Promise<() => void> {
    if (!this.ranged) return NO_RELEASE;
    return this.ranged.pin(this.found(terms));
  }

  /** `pin` without waiting: held now when every term is pinned or cached, else null (nothing held). */
  pinCached(terms: Iterable<string>): (() => void) | null {
    if (!this.ranged) return NO_RELEASE;
    return this.ranged.pinCached(this.found(terms));
  }

  /** Those of `terms` this segment has, with their dictionary entries. */
  private found(terms: Iterable<string>): [string, TermEntry][] {
    const found: [string, TermEntry][] = [];
    for (const t of new Set(terms)) {
      const e = this.terms.get(t);
      if (e) found.push([t, e]);
    }
    return found;
  }

  /** A term's data, or undefined when the segment does not have it (a ranged one: pinned first). */
  postings(term: string): TermPostings | undefined {
    const e = this.terms.get(term);
    if (!e) return undefined;
    if (this.whole) return { e, bytes: this.whole, key: e.offset };
    const tp = this.ranged!.pinned(term);
    invariant(tp, `lexical segment ${this.object_id}: postings of a term read before pin()`);
    return tp;
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
    const tp = this.postings(term);
    if (!tp) return;
    const { e, bytes: b } = tp;
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
  blockTable(tp: TermPostings): BlockTable | null {
    const { e } = tp;
    if (e.table < 0) return null;
    // Parsed once per term and kept: a table is ~1/40 of its postings' bytes, and re-parsing it on
    // every query was a fifth of a single-term query's time. Offsets in it index tp.bytes: a
    // ranged term's bytes are its own, the same each time they are read.
    let t = this.tables.get(tp.key);
    if (t === undefined) {
      t = this.parseBlockTable(tp);
      // Bounded: a long-lived segment sees many distinct query terms.
      if (this.tables.size >= MAX_TABLES_KEPT) this.tables.clear();
      this.tables.set(tp.key, t);
    }
    return t;
  }

  private parseBlockTable({ e, bytes }: TermPostings): BlockTable {
    const what = `lexical segment ${this.object_id}`;
    const r = new ByteReader(bytes.subarray(e.table, e.postings), what);
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
    invariant(this.whole, `lexical segment ${this.object_id}: a merge reads a segment whole`);
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

const NO_RELEASE = () => {};
/** Parsed block tables a segment keeps (cleared when full, like the dictionary's lookups). */
const MAX_TABLES_KEPT = 4096;
