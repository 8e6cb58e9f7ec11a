/**
 * A version 5 segment's postings read by ranges (docs/formats.md §"Lexical segment"): a term's
 * data is read as the whole pages that cover it, each page checked against the segment's page
 * table, then kept in the engine's PostingsCache. A query pins its terms before scoring (scoring
 * is synchronous); pinned terms stay in memory until released, evicted from the cache or not.
 */
import { crc32 } from 'node:zlib';
import { FsmeshError } from '../../core/errors.ts';
import type { PostingsCache, TermPostings } from './postings-cache.ts';
import { splitTermData, TABLE_UNRESOLVED, type TermEntry } from './term-dictionary.ts';

/** Read `length` bytes at `offset` of the segment's file (fewer at its end). */
export type { TermPostings } from './postings-cache.ts';

export type RangeRead = (offset: number, length: number) => Promise<Uint8Array>;

export interface PageLayout {
  /** Where the postings start in the file (the head's length) and their length. */
  postings_at: number;
  postings_bytes: number;
  page_bytes: number;
  /** crc32 of each page of the postings (the last may be short). */
  page_crc: Uint32Array;
}

interface Pin {
  tp: TermPostings;
  refs: number;
}

export class RangedPostings {
  private readonly pins = new Map<string, Pin>();
  /** Loads in flight by term data offset: concurrent queries for a term read it once. */
  private readonly loading = new Map<number, Promise<TermPostings>>();

  readonly object_id: string;
  private readonly read: RangeRead;
  private readonly cache: PostingsCache;
  private readonly layout: PageLayout;

  constructor(objectId: string, read: RangeRead, cache: PostingsCache, layout: PageLayout) {
    this.object_id = objectId;
    this.read = read;
    this.cache = cache;
    this.layout = layout;
  }

  /** A pinned term's data. */
  pinned(term: string): TermPostings | undefined {
    return this.pins.get(term)?.tp;
  }

  /**
   * Hold these terms now if every one is pinned or cached already (a query's common case), else
   * null and nothing held: the caller then awaits `pin`.
   */
  pinCached(found: [string, TermEntry][]): (() => void) | null {
    // Looked at without counting first: a miss here is counted once, by the load that follows.
    for (const [t, e] of found)
      if (!this.pins.has(t) && !this.cache.has(this.object_id, e.offset)) return null;
    const held = found.map(([t, e]) => this.pins.get(t)?.tp ?? this.cache.get(this.object_id, e.offset)!);
    return this.hold(found, held);
  }

  /** Load and hold these terms (found in the dictionary) until the returned release is called. */
  async pin(found: [string, TermEntry][]): Promise<() => void> {
    const loaded = await Promise.all(found.map(([, e]) => this.load(e)));
    // Counted only once every load succeeded: a failed pin holds nothing.
    return this.hold(found, loaded);
  }

  private hold(found: [string, TermEntry][], tps: TermPostings[]): () => void {
    found.forEach(([t], i) => {
      const p = this.pins.get(t);
      if (p) p.refs++;
      else this.pins.set(t, { tp: tps[i], refs: 1 });
    });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const [t] of found) {
        const p = this.pins.get(t)!;
        if (--p.refs === 0) this.pins.delete(t);
      }
    };
  }

  private load(e: TermEntry): Promise<TermPostings> {
    const cached = this.cache.get(this.object_id, e.offset);
    if (cached) return Promise.resolve(cached);
    let p = this.loading.get(e.offset);
    if (!p) {
      p = this.readTerm(e).finally(() => this.loading.delete(e.offset));
      this.loading.set(e.offset, p);
    }
    return p;
  }

  /** The pages covering the term's data, checked; the term's bytes and its entry relative to them. */
  private async readTerm(e: TermEntry): Promise<TermPostings> {
    const { postings_at, postings_bytes, page_bytes, page_crc } = this.layout;
    const rel = e.offset - postings_at;
    // The dictionary checked every entry's range against the postings (data_end); an empty one
    // is damage too (every term has a posting).
    if (rel < 0 || e.length <= 0 || rel + e.length > postings_bytes)
      throw this.corrupt('term data outside the postings');
    const p0 = Math.floor(rel / page_bytes);
    const p1 = Math.floor((rel + e.length - 1) / page_bytes);
    const from = p0 * page_bytes;
    const to = Math.min(postings_bytes, (p1 + 1) * page_bytes);
    const buf = await this.read(postings_at + from, to - from);
    if (buf.length !== to - from) throw this.corrupt(`postings truncated at page ${p0}`);
    for (let p = p0; p <= p1; p++) {
      const page = buf.subarray((p - p0) * page_bytes, Math.min(buf.length, (p - p0 + 1) * page_bytes));
      if (crc32(page) !== page_crc[p]) throw this.corrupt(`postings page ${p} checksum mismatch`);
    }
    const at = rel - from;
    // A short term would keep its whole page alive through a view: copy it out then.
    const view = buf.subarray(at, at + e.length);
    const copied = e.length * 2 < buf.length;
    const bytes = copied ? view.slice() : view;
    const tp: TermPostings = { e: this.relocate(e, bytes), bytes, key: e.offset };
    this.cache.put(this.object_id, e.offset, tp, copied ? bytes.length : buf.length);
    return tp;
  }

  /** The entry with offsets into the term's own bytes; a block table's length is read from them. */
  private relocate(e: TermEntry, bytes: Uint8Array): TermEntry {
    if (e.table !== TABLE_UNRESOLVED)
      return { df: e.df, offset: 0, length: e.length, postings: 0, table: -1 };
    const { table, postings } = splitTermData(bytes, this.object_id);
    return { df: e.df, offset: 0, length: e.length, postings, table };
  }

  private corrupt(m: string): FsmeshError {
    return new FsmeshError('corrupt_data', `lexical segment ${this.object_id}: ${m}`, {
      object_id: this.object_id,
    });
  }
}
