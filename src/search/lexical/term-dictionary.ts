/**
 * A segment's term dictionary, read lazily (docs/formats.md §segment: prefix-compressed terms in
 * UTF-8 byte order, each with its df and postings length), through one restart point per
 * RESTART_TERMS terms: the term's text, where its entry starts and where its postings start. A
 * lookup binary-searches the restart points and decodes at most RESTART_TERMS entries.
 *
 * Versions 1-3 store no restart points: opening walks every entry once (checking each, nothing
 * allocated per term) to find them. Version 4 stores them after the dictionary, so opening reads
 * only them (checked for order and bounds) and each block of entries is checked in full the first
 * time a lookup or an iteration decodes it — the same checks, paid as the blocks are used: the
 * walk was 35 ms of a cold CLI search over two 25k-document segments.
 */
import { ByteReader, bytesEqual } from '../../core/bytes.ts';
import { FsmeshError } from '../../core/errors.ts';
import { POSTINGS_BLOCK, RESTART_TERMS } from './segment-format.ts';

export interface TermEntry {
  df: number;
  /** Byte range of the term's data in the file (block table, if any, then postings). */
  offset: number;
  length: number;
  /** Where the postings proper start (after the block table). */
  postings: number;
  /**
   * Where the block table starts, or -1 (version 1, or at most POSTINGS_BLOCK postings), or
   * TABLE_UNRESOLVED (a ranged segment's dictionary: the table's length is in the term's pages).
   */
  table: number;
}

/**
 * `table` of a ranged segment's entry whose term has a block table: its length prefixes the term's
 * data, read with its pages (segment.ts resolves the entry then).
 */
export const TABLE_UNRESOLVED = -2;

/**
 * Where a term's block table and its postings start within its data (`data`: the term's bytes):
 * the table's byte length prefixes it. Damage is corrupt_data naming the segment.
 */
export function splitTermData(data: Uint8Array, objectId: string): { table: number; postings: number } {
  const corrupt = (m: string) =>
    new FsmeshError('corrupt_data', `lexical segment ${objectId}: ${m}`, { object_id: objectId });
  const r = new ByteReader(data, `lexical segment ${objectId}`);
  let tableLen: number;
  try {
    tableLen = r.varint();
  } catch {
    throw corrupt('block table length overruns its term');
  }
  const postings = r.pos + tableLen;
  if (postings > data.length) throw corrupt('block table overruns its term');
  return { table: r.pos, postings };
}

const RESTART = RESTART_TERMS;
/** Looked-up entries kept (queries repeat their terms); cleared when full. */
const CACHE_MAX = 4096;

const enc = new TextEncoder();
const dec = new TextDecoder();

export class TermDictionary {
  readonly size: number;
  private readonly body: Uint8Array;
  private readonly version: number;
  private readonly what: string;
  /** Each restart term's bytes as stored (compared as bytes: a term need not be valid UTF-8). */
  private readonly restartTerm: Uint8Array[] = [];
  private readonly objectId: string;
  private readonly restartEntry: number[] = [];
  private readonly restartData: number[] = [];
  /** Where the dictionary's entries end. */
  private dictEnd = 0;
  /** Version 4: which blocks of entries have been checked (walked dictionaries: all, at open). */
  private checked: Uint8Array | null = null;
  private readonly cache = new Map<string, TermEntry | null>();
  /** Where the term data (postings) ends: the body's end before version 5. */
  private dataEnd = 0;
  /** Version 5 read by ranges: entries leave `table` TABLE_UNRESOLVED (segment.ts resolves it). */
  private ranged = false;

  private constructor(body: Uint8Array, count: number, version: number, objectId: string) {
    this.objectId = objectId;
    this.body = body;
    this.version = version;
    this.what = `lexical segment ${objectId}`;
    this.size = count;
  }

  /**
   * Versions 1-3: walk the `count` entries starting at `dictPos` of `body` (the segment without
   * its footer), checking each; the postings follow them and must end at the body's end.
   */
  static walk(
    body: Uint8Array,
    dictPos: number,
    count: number,
    version: number,
    objectId: string,
  ): TermDictionary {
    const d = new TermDictionary(body, count, version, objectId);
    d.dataEnd = body.length;
    d.walkEntries(dictPos);
    return d;
  }

  /**
   * Version 4: the entries occupy `dictBytes` from `dictPos`, their restart points the next
   * `restartBytes`, and the postings the rest of `body`.
   */
  static fromRestarts(
    body: Uint8Array,
    dictPos: number,
    dictBytes: number,
    restartBytes: number,
    count: number,
    version: number,
    objectId: string,
    opts: { data_end?: number; ranged?: boolean } = {},
  ): TermDictionary {
    const d = new TermDictionary(body, count, version, objectId);
    // Version 5: the postings end before the page table (data_end), and a ranged segment's body
    // is its head alone: a block table's length is read when its term's pages are.
    d.dataEnd = opts.data_end ?? body.length;
    d.ranged = opts.ranged === true;
    d.readRestarts(dictPos, dictBytes, restartBytes);
    return d;
  }

  private walkEntries(dictPos: number): void {
    const { body, size: count } = this;
    const r = new ByteReader(body, this.what, dictPos);
    let cur = new Uint8Array(64);
    let prevLen = 0;
    const dfs: number[] = [];
    const lens: number[] = [];
    for (let i = 0; i < count; i++) {
      const entry = r.pos;
      const shared = r.varint();
      const suffixLen = r.varint();
      if (shared > prevLen) this.corrupt('bad term prefix');
      const suffix = r.bytes(suffixLen);
      // Strictly rising terms (what lookups and merges rely on): the new term, prev[0..shared] +
      // suffix, must sort after prev — compare the suffix with what it replaces.
      if (i > 0 && compareBytes(suffix, cur.subarray(shared, prevLen)) <= 0)
        this.corrupt('terms out of order');
      if (shared + suffixLen > cur.length) {
        const grown = new Uint8Array(Math.max(cur.length * 2, shared + suffixLen));
        grown.set(cur.subarray(0, shared));
        cur = grown;
      }
      cur.set(suffix, shared);
      prevLen = shared + suffixLen;
      if (i % RESTART === 0) {
        this.restartTerm.push(cur.slice(0, prevLen));
        this.restartEntry.push(entry);
      }
      dfs.push(r.varint());
      lens.push(r.varint());
    }
    this.dictEnd = r.pos;
    // The postings follow the dictionary, in term order: each restart's data offset, and the end.
    let off = r.pos;
    for (let i = 0; i < count; i++) {
      if (i % RESTART === 0) this.restartData.push(off);
      const df = dfs[i];
      const len = lens[i];
      if (off + len > body.length) this.corrupt('postings length mismatch');
      if (this.hasTable(df)) this.tableOf(off, len); // checked now: a damaged table is found at open
      off += len;
    }
    if (off !== body.length) this.corrupt('postings length mismatch');
  }

  private readRestarts(dictPos: number, dictBytes: number, restartBytes: number): void {
    const { body, dataEnd } = this;
    const restartPos = dictPos + dictBytes;
    const postingsPos = restartPos + restartBytes;
    if (postingsPos > body.length || postingsPos > dataEnd)
      this.corrupt('dictionary sizes overrun the segment');
    this.dictEnd = restartPos;
    const n = Math.ceil(this.size / RESTART);
    if (n === 0 && (dictBytes !== 0 || postingsPos !== dataEnd))
      this.corrupt('an empty dictionary with entries or postings');
    const r = new ByteReader(body.subarray(0, postingsPos), this.what, restartPos);
    for (let k = 0; k < n; k++) {
      const entry = r.varint();
      const data = r.varint();
      const term = r.bytes(r.varint());
      if (k === 0 ? entry !== 0 || data !== 0 : entry <= this.restartEntry[k - 1] - dictPos)
        this.corrupt('restart points out of order');
      if (k > 0 && postingsPos + data <= this.restartData[k - 1]) this.corrupt('restart points out of order');
      if (entry >= dictBytes || postingsPos + data >= dataEnd) this.corrupt('restart point past its section');
      if (k > 0 && compareBytes(term, this.restartTerm[k - 1]) <= 0) this.corrupt('terms out of order');
      this.restartEntry.push(dictPos + entry);
      this.restartData.push(postingsPos + data);
      this.restartTerm.push(term);
    }
    if (r.pos !== postingsPos) this.corrupt('restart points do not fill their section');
    this.checked = new Uint8Array(n);
  }

  /**
   * Version 4: check block `k` whole before it is used — each entry as the walk checks it, the
   * first entry being its restart term, and the block ending exactly where the next begins.
   */
  private checkBlock(k: number): void {
    if (!this.checked || this.checked[k] === 1) return;
    const last = k + 1 === this.restartEntry.length;
    const entryEnd = last ? this.dictEnd : this.restartEntry[k + 1];
    const dataEnd = last ? this.dataEnd : this.restartData[k + 1];
    const r = new ByteReader(this.body.subarray(0, entryEnd), this.what, this.restartEntry[k]);
    let off = this.restartData[k];
    let cur = this.restartTerm[k];
    const n = Math.min(RESTART, this.size - k * RESTART);
    for (let i = 0; i < n; i++) {
      const shared = r.varint();
      const suffix = r.bytes(r.varint());
      const base = i === 0 ? this.restartTerm[k] : cur;
      if (shared > base.length) this.corrupt('bad term prefix');
      const t = new Uint8Array(shared + suffix.length);
      t.set(base.subarray(0, shared));
      t.set(suffix, shared);
      if (i === 0 ? !bytesEqual(t, this.restartTerm[k]) : compareBytes(t, cur) <= 0)
        this.corrupt(i === 0 ? 'a restart term differs from its entry' : 'terms out of order');
      const df = r.varint();
      const len = r.varint();
      if (off + len > dataEnd) this.corrupt('postings length mismatch');
      if (this.hasTable(df) && !this.ranged) this.tableOf(off, len);
      off += len;
      cur = t;
    }
    if (r.pos !== entryEnd || off !== dataEnd)
      this.corrupt('a dictionary block does not end where the next begins');
    if (!last && compareBytes(cur, this.restartTerm[k + 1]) >= 0) this.corrupt('terms out of order');
    this.checked[k] = 1;
  }

  /** Named with the segment's object id: the engine repairs it from its symbols or peers. */
  private corrupt(m: string): never {
    throw new FsmeshError('corrupt_data', `${this.what}: ${m}`, { object_id: this.objectId });
  }

  private hasTable(df: number): boolean {
    return this.version >= 2 && df > POSTINGS_BLOCK;
  }

  /** Where a term's block table and postings start, its data being [off, off + len). */
  private tableOf(off: number, len: number): { table: number; postings: number } {
    const t = splitTermData(this.body.subarray(off, off + len), this.objectId);
    return { table: off + t.table, postings: off + t.postings };
  }

  private entryAt(df: number, off: number, len: number): TermEntry {
    if (!this.hasTable(df)) return { df, offset: off, length: len, postings: off, table: -1 };
    if (this.ranged) return { df, offset: off, length: len, postings: off, table: TABLE_UNRESOLVED };
    return { df, offset: off, length: len, ...this.tableOf(off, len) };
  }

  get(term: string): TermEntry | undefined {
    const hit = this.cache.get(term);
    if (hit !== undefined) return hit ?? undefined;
    const e = this.find(term);
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(term, e);
    return e ?? undefined;
  }

  has(term: string): boolean {
    return this.get(term) !== undefined;
  }

  private find(term: string): TermEntry | null {
    // The last restart point at or before the term (byte order, as the terms are stored).
    const want = enc.encode(term);
    let lo = 0;
    let hi = this.restartTerm.length - 1;
    if (hi < 0 || compareBytes(want, this.restartTerm[0]) < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (compareBytes(this.restartTerm[mid], want) <= 0) lo = mid;
      else hi = mid - 1;
    }
    this.checkBlock(lo);
    for (const [t, e] of this.block(lo)) {
      const c = compareBytes(t, want);
      if (c === 0) return e;
      if (c > 0) return null;
    }
    return null;
  }

  /** The entries of restart block `k`, decoded in order (terms as UTF-8 bytes). */
  private *block(k: number): Generator<[Uint8Array, TermEntry]> {
    const r = new ByteReader(this.body, this.what, this.restartEntry[k]);
    let off = this.restartData[k];
    let prev = new Uint8Array(0);
    const n = Math.min(RESTART, this.size - k * RESTART);
    for (let i = 0; i < n; i++) {
      const shared = r.varint();
      const suffix = r.bytes(r.varint());
      // Checked (at open, or by checkBlock): shared never exceeds the previous term (the restart's
      // own prefix is shared with a term of the previous block, whose bytes are the restart term's).
      const t = new Uint8Array(shared + suffix.length);
      t.set((i === 0 ? this.restartTerm[k] : prev).subarray(0, shared));
      t.set(suffix, shared);
      const df = r.varint();
      const len = r.varint();
      yield [t, this.entryAt(df, off, len)];
      off += len;
      prev = t;
    }
  }

  /** Every entry, in term order (merges, tools and tests). */
  *entries(): Generator<[string, TermEntry]> {
    for (let k = 0; k < this.restartTerm.length; k++) {
      this.checkBlock(k);
      for (const [t, e] of this.block(k)) yield [dec.decode(t), e];
    }
  }

  *keys(): Generator<string> {
    for (const [t] of this.entries()) yield t;
  }

  *values(): Generator<TermEntry> {
    for (const [, e] of this.entries()) yield e;
  }

  [Symbol.iterator](): Generator<[string, TermEntry]> {
    return this.entries();
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
