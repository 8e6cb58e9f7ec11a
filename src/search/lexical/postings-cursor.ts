/**
 * A cursor over one term's postings in one segment, for the pruned search (pruned-top-k.ts): decodes
 * postings of either segment version, jumps whole blocks through the term's block table, and carries
 * the term's per-block score bounds.
 */
import type { LexicalScoring } from './scoring.ts';
import type { BlockTable, TermEntry } from './segment.ts';

/** Docnum of an exhausted cursor. */
export const END = 0x7fffffff;

/** Is `bound` certainly below `theta`? A margin of 1e-9 covers summation-order rounding. */
export function below(bound: number, theta: number): boolean {
  return bound * (1 + 1e-9) < theta;
}

/** A cursor over one term's postings in one segment. */
export class Cursor {
  doc = -1;
  tt = 0;
  tx = 0;
  private pos: number;
  private readonly first: number;
  private readonly end: number;
  private prev = 0;
  private blk = 0;
  /** Upper bound of this term's contribution over the whole list, and per block. */
  ub: number;
  private readonly blockUb: Float64Array | null;

  private readonly bytes: Uint8Array;
  /** Version-2 postings (packed tf) rather than version 1. */
  private readonly packed: boolean;
  private readonly entry: TermEntry;
  private readonly table: BlockTable | null;
  readonly order: number;
  readonly idfK: number;

  constructor(
    bytes: Uint8Array,
    packed: boolean,
    e: TermEntry,
    table: BlockTable | null,
    order: number,
    idfK: number,
    blockUb: Float64Array | null,
  ) {
    this.bytes = bytes;
    this.packed = packed;
    this.entry = e;
    this.table = table;
    this.order = order;
    this.idfK = idfK;
    this.pos = e.postings;
    this.first = e.postings;
    this.end = e.offset + e.length;
    this.blockUb = blockUb;
    let ub = blockUb ? 0 : idfK;
    if (blockUb) for (const x of blockUb) if (x > ub) ub = x;
    this.ub = ub;
    this.next();
  }

  get df(): number {
    return this.entry.df;
  }

  /** A cursor over the same postings from the start (the block table is shared, bounds are not kept). */
  restarted(): Cursor {
    return new Cursor(this.bytes, this.packed, this.entry, this.table, this.order, this.idfK, null);
  }

  /** Tighten the whole-list bound to an exact maximum (short lists: one cheap pass). */
  exactBound(score: (c: Cursor) => number): void {
    let best = 0;
    for (; this.doc !== END; this.next()) best = Math.max(best, score(this));
    this.pos = this.first;
    this.prev = 0;
    this.blk = 0;
    this.next();
    this.ub = best;
  }

  next(): void {
    if (this.pos >= this.end) {
      this.doc = END;
      return;
    }
    const b = this.bytes;
    let pos = this.pos;
    let c = b[pos++];
    let v = c & 0x7f;
    for (let s = 7; c & 0x80; s += 7) {
      c = b[pos++];
      v |= (c & 0x7f) << s;
    }
    c = b[pos++];
    let f = c & 0x7f;
    for (let s = 7; c & 0x80; s += 7) {
      c = b[pos++];
      f |= (c & 0x7f) << s;
    }
    let tt = 0;
    let tx: number;
    if (this.packed) {
      // Version 2: f = tf_text·2 + title flag, tf_title follows when flagged.
      tx = f >>> 1;
      if (f & 1) {
        c = b[pos++];
        tt = c & 0x7f;
        for (let s = 7; c & 0x80; s += 7) {
          c = b[pos++];
          tt |= (c & 0x7f) << s;
        }
      }
    } else {
      tt = f;
      c = b[pos++];
      tx = c & 0x7f;
      for (let s = 7; c & 0x80; s += 7) {
        c = b[pos++];
        tx |= (c & 0x7f) << s;
      }
    }
    this.pos = pos;
    this.prev += v;
    this.doc = this.prev;
    this.tt = tt;
    this.tx = tx;
    const t = this.table;
    if (t !== null && this.doc > t.last_doc[this.blk]) this.blk++;
  }

  /** Move to the first posting with docnum >= target, jumping whole blocks when it can. */
  advance(target: number): void {
    if (this.doc >= target) return;
    const t = this.table;
    if (t !== null && t.last_doc[this.blk] < target) {
      let b = this.blk;
      while (b < t.count && t.last_doc[b] < target) b++;
      if (b === t.count) {
        this.doc = END;
        this.pos = this.end;
        return;
      }
      this.blk = b;
      this.pos = t.start[b];
      this.prev = t.last_doc[b - 1];
    }
    do this.next();
    while (this.doc < target);
  }

  /**
   * MaxScore's inner loop when this is the only essential term: pass over postings up to docnum
   * `last` whose score plus `extra` (the other terms' bounds) stays below `theta`, stopping at the
   * first that may not. Same formula as `score` in prunedTopK.
   */
  skipBelow(last: number, theta: number, extra: number, p: LexicalScoring, base: number): void {
    const norm = p.norm;
    const tb = p.title_boost;
    while (this.doc <= last) {
      const tf = this.tx + tb * this.tt;
      if (!below((this.idfK * tf) / (tf + norm[base + this.doc]) + extra, theta)) return;
      this.next();
    }
  }

  /** Has per-block bounds (a block table and impacts usable with this reader's title boost). */
  hasBlockBounds(): boolean {
    return this.blockUb !== null;
  }
  get blockCount(): number {
    return this.blockUb === null ? 0 : this.blockUb.length;
  }
  boundOfBlock(blk: number): number {
    return this.blockUb === null ? this.ub : this.blockUb[blk];
  }
  /** Position on the first posting of block `blk` (a table is required). */
  enterBlock(blk: number): void {
    const t = this.table!;
    this.blk = blk;
    this.pos = t.start[blk];
    this.prev = blk > 0 ? t.last_doc[blk - 1] : 0;
    this.next();
  }
  /** Is the current posting still inside block `blk`? */
  inBlock(blk: number): boolean {
    return this.doc !== END && this.doc <= this.table!.last_doc[blk];
  }

  /** Last docnum the current block may hold (END − 1 without blocks). */
  blockLast(): number {
    return this.table === null ? END - 1 : this.table.last_doc[this.blk];
  }
  blockBound(): number {
    return this.blockUb === null ? this.ub : this.blockUb[this.blk];
  }
}

export function blockBounds(t: BlockTable, boundOf: (tf: number, len: number) => number): Float64Array {
  const out = new Float64Array(t.count);
  for (let i = 0; i < t.count; i++) {
    let best = 0;
    for (let j = t.impact_start[i]; j < t.impact_start[i + 1]; j++)
      best = Math.max(best, boundOf(t.impact_tf[j], t.impact_len[j]));
    out[i] = best;
  }
  return out;
}
