/**
 * BM25 top k over one segment without scoring every posting (issue 16): MaxScore — the terms whose
 * summed upper bounds cannot reach the current k-th score only complete candidates found by the
 * others, advancing by block — and block-max skipping — a run of blocks whose impact bounds sum
 * below the k-th score is jumped over undecoded (block tables: segment-format.ts).
 * Exact: only documents whose bound is strictly below the k-th score (with a relative margin for
 * floating-point rounding) are skipped, and contributions are summed in query-term order exactly as
 * the exhaustive scorer does, so the top k (ties by doc_id) is the exhaustive one, bit for bit.
 * A one-term query on a version-3 segment scores only the term's skyline (skylineTopK).
 */
import type { TopK } from '../topk.ts';
import { isDeletedIn } from './deletes.ts';
import { below, blockBounds, Cursor, END } from './postings-cursor.ts';
import type { LexicalScoring, QueryTerm } from './scoring.ts';
import type { BlockTable, Segment } from './segment.ts';
import { POSTINGS_BLOCK } from './segment-format.ts';

/**
 * Add segment `seg`'s best documents for `terms` to `top` (shared across segments, so the k-th
 * score found in one segment prunes the next). `base` maps docnums to global ones; `deleted` is the
 * segment's deletion bitmap or null.
 */
export function prunedTopK(
  seg: Segment,
  base: number,
  deleted: Uint8Array | null,
  terms: QueryTerm[],
  p: LexicalScoring,
  top: TopK<number>,
  docIdAt: (g: number) => string,
): void {
  if (terms.length === 1 && skylineTopK(seg, base, deleted, terms[0], p, top, docIdAt)) return;
  const search = new SegmentSearch({ seg, base, deleted, terms, p, top, docIdAt });
  if (search.cursors.length === 0) return;
  if (search.bestBlocksFirst()) return;
  search.seedFromRarest();
  search.maxScore();
}

/**
 * One term: score only its skyline (segment-format.ts SKYLINE_K), the postings fewer than
 * skyline_k others beat. Why that is exact: a posting outside it is beaten by at least skyline_k
 * postings of the skyline itself (take a beater outside the skyline beaten by the fewest: its own
 * beaters, all beating the first, are in the skyline), each scoring strictly higher or equal and
 * ahead by doc_id — BM25's tf/(tf + k1·(1 − b + b·len/avgdl)) grows with tf and shrinks with len
 * when k1 > 0 and b > 0, and document sizes are bounded, so rounding never turns a strict order
 * into a tie. With d of the skyline deleted, k + d ≤ skyline_k keeps k live beaters ahead of any
 * posting outside it. False when not applicable (older segment, short list, other title boost,
 * k1 or b of 0, k or deletions too large): the caller prunes blocks as before.
 */
export function skylineTopK(
  seg: Segment,
  base: number,
  deleted: Uint8Array | null,
  q: QueryTerm,
  p: LexicalScoring,
  top: TopK<number>,
  docIdAt: (g: number) => string,
): boolean {
  const K = seg.skyline_k;
  if (K === 0 || top.k > K || seg.impact_title_boost !== p.title_boost || !(p.k1 > 0) || !(p.normB > 0))
    return false;
  const tp = seg.postings(q.term);
  if (!tp) return true; // not in this segment
  const t = seg.blockTable(tp);
  if (!t) return false;
  const { sky_doc, sky_tt, sky_tx } = t;
  let dead = 0;
  if (deleted !== null) for (let i = 0; i < sky_doc.length; i++) if (isDeletedIn(deleted, sky_doc[i])) dead++;
  if (top.k + dead > K) return false;
  for (let i = 0; i < sky_doc.length; i++) {
    const d = sky_doc[i];
    if (isDeletedIn(deleted, d)) continue;
    // Same expression as SegmentSearch.score and the exhaustive scorer: scores equal bit for bit.
    const tf = sky_tx[i] + p.title_boost * sky_tt[i];
    const v = (q.idfK * tf) / (tf + p.norm[base + d]);
    if (top.admits(v)) top.push(v, docIdAt(base + d), base + d);
  }
  return true;
}

/** A term much rarer than the rest is scored first (exactly) when it has at most this many postings. */
const SEED_MAX_POSTINGS = 2048;

/**
 * Is one of these document frequencies much smaller than the others together, yet enough to fill
 * the top k? (seeding then starts the k-th score high)
 */
function hasRareTerm(dfs: number[], k: number): boolean {
  const min = Math.min(...dfs);
  const others = dfs.reduce((a, b) => a + b, 0) - min;
  return min >= k && min <= SEED_MAX_POSTINGS && min * 4 <= others;
}

/**
 * Query planning: pruning pays for one term (best blocks first, the rest skipped) and for a term
 * much rarer than the others (seeded, the common terms turn non-essential); for several terms of
 * similar frequency, or short lists, most postings are scored anyway and the plain term-at-a-time
 * scorer is as fast or faster. Measured per class on the 50k-document bench corpus (300 queries,
 * total time pruned vs exhaustive): one term −32 %, a rare term −9 %.
 */
export function worthPruning(dfs: number[], k: number): boolean {
  if (dfs.length === 1) return dfs[0] > POSTINGS_BLOCK && dfs[0] > 4 * k;
  // Short lists: scoring them all is cheaper than setting up cursors.
  return dfs.reduce((a, b) => a + b, 0) > 8 * POSTINGS_BLOCK && hasRareTerm(dfs, k);
}

/** One segment's share of a query: cursors by ascending bound, and the MaxScore loop over them. */
class SegmentSearch {
  readonly cursors: Cursor[] = [];
  /** prefix[i]: sum of the bounds of cursors[0..i]. */
  private readonly prefix: Float64Array;
  private readonly contrib: Float64Array;
  /** Documents already scored exactly by the seeding pass (local docnums). */
  private seeded: Set<number> | null = null;

  private readonly base: number;
  private readonly deleted: Uint8Array | null;
  private readonly p: LexicalScoring;
  private readonly top: TopK<number>;
  private readonly docIdAt: (g: number) => string;

  constructor(q: {
    seg: Segment;
    base: number;
    deleted: Uint8Array | null;
    terms: QueryTerm[];
    p: LexicalScoring;
    top: TopK<number>;
    docIdAt: (g: number) => string;
  }) {
    const { seg, base, deleted, terms, p, top, docIdAt } = q;
    this.base = base;
    this.deleted = deleted;
    this.p = p;
    this.top = top;
    this.docIdAt = docIdAt;
    const impacts = seg.impact_title_boost !== 0 && seg.impact_title_boost === p.title_boost;
    for (const q of terms) {
      const tp = seg.postings(q.term);
      if (!tp) continue;
      const { e } = tp;
      const table = seg.blockTable(tp);
      const blockUb = impacts && table ? this.blockBoundsOf(seg, q, table) : null;
      const c = new Cursor(tp.bytes, seg.version >= 2, e, table, q.order, q.idfK, blockUb);
      if (e.table < 0 && e.df <= 4 * POSTINGS_BLOCK) c.exactBound((x) => this.score(x));
      if (c.doc !== END) this.cursors.push(c);
    }
    this.cursors.sort((a, b) => a.ub - b.ub);
    this.prefix = new Float64Array(this.cursors.length);
    this.cursors.forEach((c, i) => {
      this.prefix[i] = (i > 0 ? this.prefix[i - 1] : 0) + c.ub;
    });
    this.contrib = new Float64Array(terms.length);
  }

  /** The term's per-block bounds in this generation, from the reader's cache when it has them. */
  private blockBoundsOf(seg: Segment, q: QueryTerm, table: BlockTable): Float64Array {
    const key = `${seg.object_id}\u0000${q.term}`;
    const cached = this.p.bound_cache?.get(key);
    if (cached) return cached;
    const { normA, normB } = this.p;
    // Same operation order as the per-posting score, so a bound is never below a score it covers.
    const ub = blockBounds(table, (tf, len) => (q.idfK * tf) / (tf + (normA + normB * len)));
    this.p.bound_cache?.set(key, ub);
    return ub;
  }

  private score(c: Cursor): number {
    const tf = c.tx + this.p.title_boost * c.tt;
    return (c.idfK * tf) / (tf + this.p.norm[this.base + c.doc]);
  }

  private isDeleted(d: number): boolean {
    return isDeletedIn(this.deleted, d);
  }

  /** Sum the recorded contributions in query-term order (as the exhaustive scorer does); reset them. */
  private total(): number {
    let sum = 0;
    const c = this.contrib;
    for (let o = 0; o < c.length; o++)
      if (c[o] !== 0) {
        sum += c[o];
        c[o] = 0;
      }
    return sum;
  }

  private offer(d: number, sum: number): void {
    if (this.top.admits(sum)) this.top.push(sum, this.docIdAt(this.base + d), this.base + d);
  }

  /**
   * When one term is much rarer than the others, score its documents first, exactly: they are the
   * likely winners, so the k-th score starts high and MaxScore turns the common terms into
   * non-essential ones from the first document on, instead of after walking most of their lists.
   */
  seedFromRarest(): void {
    if (this.cursors.length < 2) return;
    let rare = this.cursors[0];
    let others = 0;
    for (const c of this.cursors) if (c.df < rare.df) rare = c;
    for (const c of this.cursors) if (c !== rare) others += c.df;
    if (!hasRareTerm([rare.df, others], this.top.k)) return;
    const fresh = this.cursors.map((c) => c.restarted());
    const lead = fresh[this.cursors.indexOf(rare)];
    this.seeded = new Set();
    for (; lead.doc !== END; lead.next()) {
      const d = lead.doc;
      this.seeded.add(d);
      if (this.isDeleted(d)) continue;
      for (const c of fresh) {
        c.advance(d);
        if (c.doc === d) this.contrib[c.order] = this.score(c);
      }
      this.offer(d, this.total());
    }
  }

  /**
   * One term with block bounds: visit its blocks best bound first, so the k-th score rises at once
   * and the walk stops at the first block whose bound cannot reach it (false: not applicable).
   */
  bestBlocksFirst(): boolean {
    if (this.cursors.length !== 1 || !this.cursors[0].hasBlockBounds()) return false;
    const c = this.cursors[0];
    // Few blocks are visited before the bound falls below the k-th score: pick the best unvisited
    // block by a scan each time rather than sorting them all.
    const visited = new Uint8Array(c.blockCount);
    for (;;) {
      let blk = -1;
      for (let i = 0; i < visited.length; i++)
        if (visited[i] === 0 && (blk < 0 || c.boundOfBlock(i) > c.boundOfBlock(blk))) blk = i;
      if (blk < 0 || below(c.boundOfBlock(blk), this.top.threshold())) break;
      visited[blk] = 1;
      for (c.enterBlock(blk); c.inBlock(blk); c.next()) {
        if (this.isDeleted(c.doc)) continue;
        const v = this.score(c);
        if (this.top.admits(v)) this.offer(c.doc, v);
      }
    }
    return true;
  }

  /** MaxScore with block-max skipping over the remaining documents. */
  maxScore(): void {
    const { cursors, prefix, contrib, p, base } = this;
    const n = cursors.length;
    let theta = this.top.threshold();
    let e = 0;
    while (e < n && below(prefix[e], theta)) e++;
    // The block-max check holds for a run of documents (up to the nearest block end among the
    // essential cursors): it is redone only past that run or when the k-th score rises.
    let regionEnd = -1;
    let regionTheta = theta;
    while (e < n) {
      let d = cursors[n - 1].doc;
      for (let i = e; i < n - 1; i++) if (cursors[i].doc < d) d = cursors[i].doc;
      if (d === END) break;
      if (theta !== Number.NEGATIVE_INFINITY && (d > regionEnd || theta !== regionTheta)) {
        const upTo = this.regionEnd(e);
        if (below(this.regionBound(e), theta)) {
          for (let i = e; i < n; i++) cursors[i].advance(upTo + 1);
          continue;
        }
        // (upTo >= d: every essential cursor's block ends at or after its doc >= d.)
        regionEnd = upTo;
        regionTheta = theta;
      }
      if (theta !== Number.NEGATIVE_INFINITY && e === n - 1) {
        const c = cursors[e];
        c.skipBelow(regionEnd, theta, e > 0 ? prefix[e - 1] : 0, p, base);
        if (c.doc > regionEnd) continue;
        d = c.doc;
      }
      const skip = this.isDeleted(d) || (this.seeded !== null && this.seeded.has(d));
      let partial = 0;
      for (let i = e; i < n; i++) {
        const c = cursors[i];
        if (c.doc !== d) continue;
        if (!skip) {
          const v = this.score(c);
          contrib[c.order] = v;
          partial += v;
        }
        c.next();
      }
      if (skip) continue;
      let alive = true;
      for (let i = e - 1; i >= 0 && alive; i--) {
        alive = !below(partial + prefix[i], theta);
        if (!alive) break;
        const c = cursors[i];
        c.advance(d);
        if (c.doc === d) {
          const v = this.score(c);
          contrib[c.order] = v;
          partial += v;
        }
      }
      const sum = this.total();
      if (alive && this.top.admits(sum)) {
        this.offer(d, sum);
        theta = this.top.threshold();
        while (e < n && below(prefix[e], theta)) e++;
      }
    }
  }

  /** Bound of any document up to the nearest block end of the essential cursors (from index e). */
  private regionBound(e: number): number {
    let bound = e > 0 ? this.prefix[e - 1] : 0;
    for (let i = e; i < this.cursors.length; i++)
      if (this.cursors[i].doc !== END) bound += this.cursors[i].blockBound();
    return bound;
  }
  private regionEnd(e: number): number {
    let upTo = END;
    for (let i = e; i < this.cursors.length; i++)
      if (this.cursors[i].doc !== END) upTo = Math.min(upTo, this.cursors[i].blockLast());
    return upTo;
  }
}

export type { LexicalScoring, QueryTerm } from './scoring.ts';
