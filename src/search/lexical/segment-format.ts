/**
 * Lexical segment format (docs/formats.md §"Lexical segment"): constants and helpers shared by the
 * builder (segment-builder.ts) and the reader (segment.ts). Version 2 adds, for every term with
 * more than POSTINGS_BLOCK postings, a block table before its postings: each block's last docnum,
 * byte length and "impacts" (the (tf, length) pairs no other posting of the block beats), so a
 * query can skip blocks that cannot reach its top k (block-max pruning). Version 3 ends each block
 * table with the term's skyline: the postings fewer than SKYLINE_K others beat, which hold a
 * one-term query's top k for any k ≤ SKYLINE_K, BM25 parameters and average length. Version 4
 * stores the term dictionary's restart points (every RESTART_TERMS-th term, where its entry and
 * its data start) after the dictionary, so opening a segment no longer walks every term (35 ms of
 * a cold CLI search over two 25k-document segments). Version 5 makes a segment readable by ranges
 * (segment.ts `openRanged`): the header gives the head's length (everything before the postings)
 * and the postings' length, and a page table after the postings holds a crc32 per PAGE_BYTES of
 * postings, so a query reads and checks only the pages of its terms. The postings bytes are the
 * same in every version.
 */
import { utf8 } from '../../core/bytes.ts';

export const SEGMENT_MAGIC = utf8.encode('FSLXSEG1');
/**
 * The version written; versions 1 (no block tables), 2 (no skylines), 3 (no stored restart
 * points) and 4 (no page table: read whole only) are still read.
 */
export const SEGMENT_VERSION = 5;
/** Bytes of the version 5 header (magic, ten u32). */
export const HEADER_BYTES_V5 = 48;
/** Postings bytes per page of the version 5 page table: the unit a ranged read reads and checks. */
export const PAGE_BYTES = 4096;
/** Bytes after a version 5 segment's page table: u32 head_crc, u32 table_crc, u32 file crc. */
export const TAIL_BYTES_V5 = 12;
/** Terms per restart point of the dictionary: a lookup decodes at most this many entries. */
export const RESTART_TERMS = 16;
/** Postings per block; terms with at most this many postings have no block table. */
export const POSTINGS_BLOCK = 128;
/**
 * Title weight used for the impacts: tf = tf_text + 2·tf_title, len = len_text + 2·len_title
 * (the default BM25 title_boost). A reader configured with another boost ignores the impacts.
 */
export const IMPACT_TITLE_BOOST = 2;
/**
 * Version 3: a long term's skyline keeps every posting beaten by fewer than this many others of
 * the term (beaten: tf at least as high and length at most as long, and on equal (tf, length) a
 * smaller doc_id). A one-term query for k results reads only the skyline while k plus the
 * skyline's deleted postings stays within it. 64 covers a lexical k of 10 and a hybrid query's
 * lexical depth of 30 with room for deletions, at ~115 postings per long term (50k-doc corpus:
 * +6 % of the segment's bytes).
 */
export const SKYLINE_K = 64;
/** More non-dominated (tf, len) pairs than this in a block are folded into one (max tf, min len). */
export const MAX_IMPACTS_PER_BLOCK = 8;

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

export function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}
