/**
 * A lexical segment's header and head (docs/formats.md §"Lexical segment"): everything before the
 * postings — rows, field lengths and the term dictionary — parsed and checked, for a segment read
 * whole or by ranges (segment.ts).
 */
import { type ByteReader, bytesEqual, decodeUtf8 } from '../../core/bytes.ts';
import { FsmeshError } from '../../core/errors.ts';
import { HEADER_BYTES_V5, SEGMENT_MAGIC } from './segment-format.ts';
import { TermDictionary } from './term-dictionary.ts';

/** Largest skyline_k a segment may declare (the builder writes SKYLINE_K). */
export const MAX_SKYLINE_K = 4096;

/** The fields of a segment's header (versions 1 to 5; absent ones -1 or 0). */
export interface SegmentHeader {
  version: number;
  doc_count: number;
  term_count: number;
  impact_title_boost: number;
  skyline_k: number;
  dict_bytes: number;
  restart_bytes: number;
  /** Version 5: bytes before the postings, the postings' bytes and their page size. */
  head_bytes: number;
  postings_bytes: number;
  page_bytes: number;
}

/** What follows the header up to the postings: rows, lengths and the term dictionary. */
export interface SegmentHead {
  doc_ids: string[];
  title_len: Uint32Array;
  text_len: Uint32Array;
  terms: TermDictionary;
}

/** Run `parse`; a corrupt_data error without an object id gets `objectId` (read repair needs it). */
export function namingObject<T>(objectId: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof FsmeshError && err.code === 'corrupt_data' && err.details.object_id === undefined)
      throw new FsmeshError('corrupt_data', err.message, { ...err.details, object_id: objectId });
    throw err;
  }
}

/** Page sizes a version 5 reader accepts: a power of two from 512 B to 1 MiB. */
function validPageBytes(n: number): boolean {
  return n >= 512 && n <= 1 << 20 && (n & (n - 1)) === 0;
}

/** The header, from the magic on; sizes are checked against each other, not yet the file. */
export function readHeader(r: ByteReader, objectId: string): SegmentHeader {
  const what = `lexical segment ${objectId}`;
  const corrupt = (m: string) => new FsmeshError('corrupt_data', `${what}: ${m}`, { object_id: objectId });
  if (!bytesEqual(r.bytes(8), SEGMENT_MAGIC)) throw corrupt('bad magic');
  const version = r.u32();
  if (version < 1 || version > 5)
    throw new FsmeshError('unsupported_version', `${what}: unsupported version ${version}`);
  const doc_count = r.u32();
  const term_count = r.u32();
  const impact_title_boost = version >= 2 ? r.u32() : (r.u32(), 0);
  const skyline_k = version >= 3 ? r.u32() : 0;
  const dict_bytes = version >= 4 ? r.u32() : -1;
  const restart_bytes = version >= 4 ? r.u32() : -1;
  const head_bytes = version >= 5 ? r.u32() : -1;
  const postings_bytes = version >= 5 ? r.u32() : -1;
  const page_bytes = version >= 5 ? r.u32() : 0;
  if (version >= 3 && (skyline_k < 1 || skyline_k > MAX_SKYLINE_K))
    throw corrupt(`skyline_k ${skyline_k} outside 1..${MAX_SKYLINE_K}`);
  if (version >= 5 && (!validPageBytes(page_bytes) || head_bytes < HEADER_BYTES_V5))
    throw corrupt(`bad page size ${page_bytes} or head size ${head_bytes}`);
  return {
    version,
    doc_count,
    term_count,
    impact_title_boost,
    skyline_k,
    dict_bytes,
    restart_bytes,
    head_bytes,
    postings_bytes,
    page_bytes,
  };
}

/**
 * Rows, lengths and dictionary, read by `r` (just past the header) from `body`: the file without
 * its footer, or a ranged segment's head alone (`ranged`).
 */
export function readHead(
  r: ByteReader,
  h: SegmentHeader,
  body: Uint8Array,
  objectId: string,
  ranged: boolean,
): SegmentHead {
  const what = `lexical segment ${objectId}`;
  const docCount = h.doc_count;
  // Each row takes at least 3 bytes (an empty doc_id cannot be stored, and two length varints):
  // bound the count before allocating by it.
  if (docCount * 3 > r.remaining)
    throw new FsmeshError('corrupt_data', `${what}: doc_count ${docCount} overruns the segment`, {
      object_id: objectId,
    });
  const docIds = h.version >= 5 ? readFrontCodedIds(r, docCount, objectId) : new Array<string>(docCount);
  if (h.version < 5) for (let i = 0; i < docCount; i++) docIds[i] = decodeUtf8(r.bytes(r.varint()), what);
  const titleLen = new Uint32Array(docCount);
  const textLen = new Uint32Array(docCount);
  for (let i = 0; i < docCount; i++) {
    titleLen[i] = r.varint();
    textLen[i] = r.varint();
  }
  if (h.version >= 5 && r.pos + h.dict_bytes + h.restart_bytes !== h.head_bytes)
    throw new FsmeshError('corrupt_data', `${what}: the dictionary does not end where the postings start`, {
      object_id: objectId,
    });
  const terms =
    h.version >= 4
      ? TermDictionary.fromRestarts(
          body,
          r.pos,
          h.dict_bytes,
          h.restart_bytes,
          h.term_count,
          h.version,
          objectId,
          {
            data_end: h.version >= 5 ? h.head_bytes + h.postings_bytes : body.length,
            ranged,
          },
        )
      : TermDictionary.walk(body, r.pos, h.term_count, h.version, objectId);
  return { doc_ids: docIds, title_len: titleLen, text_len: textLen, terms };
}

/**
 * Version 5's doc table: each doc_id as (varint bytes shared with the previous one, varint suffix
 * length, suffix bytes) — ids in byte order share long prefixes (47.7 → ~5.4 bytes per id on the
 * bench corpus). Checked to rise strictly: a repeated or misordered id is damage.
 */
function readFrontCodedIds(r: ByteReader, docCount: number, objectId: string): string[] {
  const what = `lexical segment ${objectId}`;
  const corrupt = (m: string) => new FsmeshError('corrupt_data', `${what}: ${m}`, { object_id: objectId });
  if (docCount === 0) return [];
  // Every id is rebuilt into one buffer, each followed by a newline, and decoded by one call:
  // a decode (and two views) per id was 20 ms of a cold 50k-document open. A valid id has no
  // control character (capsule.ts), so a newline inside one is damage: the count no longer matches.
  const src = r.buf;
  let out = new Uint8Array(Math.max(1024, docCount * 16));
  let o = 0;
  let prev = 0; // the previous id is out[prev, prev + len)
  let len = 0;
  for (let i = 0; i < docCount; i++) {
    const shared = r.varint();
    const n = r.varint();
    r.need(n);
    const s = r.pos;
    r.pos += n;
    if (shared > len || (i > 0 && n === 0)) throw corrupt(`doc table row ${i}: bad prefix`);
    // Rising: the suffix must sort after what it replaces of the previous id.
    if (i > 0 && !suffixRises(src, s, n, out, prev + shared, prev + len))
      throw corrupt(`doc table row ${i}: doc ids out of order`);
    if (o + shared + n + 1 > out.length) {
      const grown = new Uint8Array(Math.max(out.length * 2, o + shared + n + 1));
      grown.set(out.subarray(0, o));
      out = grown;
    }
    out.copyWithin(o, prev, prev + shared);
    for (let j = 0; j < n; j++) out[o + shared + j] = src[s + j];
    prev = o;
    len = shared + n;
    o += len;
    out[o++] = 0x0a;
  }
  const ids = decodeUtf8(out.subarray(0, o - 1), what).split('\n');
  if (ids.length !== docCount) throw corrupt('a doc id holds a newline');
  return ids;
}

/**
 * Does the suffix src[s, s + n) sort after prev[from, to) (so the new id sorts after the previous
 * one)? A loop, not Buffer.compare: ids differ within a byte or two, and a native call per row
 * cost more than the compare.
 */
function suffixRises(
  src: Uint8Array,
  s: number,
  n: number,
  prev: Uint8Array,
  from: number,
  to: number,
): boolean {
  const m = Math.min(n, to - from);
  for (let i = 0; i < m; i++) {
    const d = src[s + i] - prev[from + i];
    if (d !== 0) return d > 0;
  }
  return n > to - from;
}
