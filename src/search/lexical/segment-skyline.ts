/**
 * A long term's skyline for the version-3 segment format (segment-format.ts SKYLINE_K,
 * docs/formats.md): the postings a one-term query can need, computed by the segment builder.
 */
import { IMPACT_TITLE_BOOST, SKYLINE_K } from './segment-format.ts';

/** A build's postings by term: term i's postings are [start[i], start[i + 1]), docnum ascending. */
export interface Inverted {
  start: Int32Array;
  postDoc: Int32Array;
  postTT: Int32Array;
  postTX: Int32Array;
}

/**
 * The postings of [from, to) beaten by fewer than SKYLINE_K others (beaten: tf at least as high and
 * length at most as long, and on an equal pair a smaller doc_id, the order TopK breaks ties in),
 * as posting indices in docnum order. BM25 with k1 > 0 and b > 0 scores a beating posting strictly
 * higher (or equal and ahead by doc_id) under any parameters, so the top k ≤ SKYLINE_K is among
 * these. Groups of equal tf are taken from the highest tf down, keeping the SKYLINE_K smallest
 * lengths seen so far: a posting at least as long as the last of them is beaten SKYLINE_K times
 * already, which discards most of a frequent term's low-tf postings by one comparison. `keys`: the
 * doc_ids by docnum, or null when docnum order is their order.
 */
export function termSkyline(
  inv: Inverted,
  lens: Int32Array,
  keys: string[] | null,
  from: number,
  to: number,
): Int32Array {
  // Counting sort of the postings by tf, highest first (tf is small; no allocation per posting:
  // this runs for every long term of a build).
  const tfs = new Int32Array(to - from);
  let maxTf = 0;
  for (let i = from; i < to; i++) {
    tfs[i - from] = inv.postTX[i] + IMPACT_TITLE_BOOST * inv.postTT[i];
    maxTf = Math.max(maxTf, tfs[i - from]);
  }
  const at = new Int32Array(maxTf + 2);
  for (const tf of tfs) at[maxTf - tf + 1]++;
  for (let t = 1; t < at.length; t++) at[t] += at[t - 1];
  const order = new Int32Array(to - from);
  for (let i = from; i < to; i++) order[at[maxTf - tfs[i - from]]++] = i;
  // at[r] is now where the group of tf = maxTf − r ends in `order`.
  let smallest: number[] = []; // ascending, at most SKYLINE_K: the shortest postings of higher tf
  const out: number[] = [];
  const n = to - from;
  const cand = new Int32Array(n);
  const candLen = new Int32Array(n);
  const before = (x: number, y: number) =>
    lens[inv.postDoc[x]] - lens[inv.postDoc[y]] ||
    (keys === null ? x - y : keys[inv.postDoc[x]] < keys[inv.postDoc[y]] ? -1 : 1);
  let groupStart = 0;
  for (let r = 0; r <= maxTf; r++) {
    const groupEnd = at[r];
    if (groupEnd === groupStart) continue;
    const cap = smallest.length >= SKYLINE_K ? smallest[SKYLINE_K - 1] : Number.POSITIVE_INFINITY;
    let m = 0;
    for (let j = groupStart; j < groupEnd; j++) {
      const len = lens[inv.postDoc[order[j]]];
      if (len < cap) {
        cand[m] = order[j];
        candLen[m++] = len;
      }
    }
    groupStart = groupEnd;
    const group: number[] = [];
    if (m > 2 * SKYLINE_K) {
      // Only the group's SKYLINE_K first by (length, doc_id) can qualify: cut at the K-th length;
      // of the postings at the cut length, docnum order is doc_id order when keys is null.
      const cut = kthSmallest(candLen.slice(0, m), SKYLINE_K - 1);
      for (let t = 0; t < m; t++) if (candLen[t] < cut) group.push(cand[t]);
      const room = SKYLINE_K - group.length;
      for (let t = 0, ties = 0; t < m && (keys !== null || ties < room); t++)
        if (candLen[t] === cut) {
          group.push(cand[t]);
          ties++;
        }
    } else for (let t = 0; t < m; t++) group.push(cand[t]);
    group.sort(before);
    // A posting's rank in the group counts the group's postings that beat it.
    let higher = 0;
    for (let g = 0; g < group.length && g < SKYLINE_K; g++) {
      const len = lens[inv.postDoc[group[g]]];
      while (higher < smallest.length && smallest[higher] <= len) higher++;
      if (higher + g < SKYLINE_K) out.push(group[g]);
    }
    const take = Math.min(group.length, SKYLINE_K);
    const groupLens: number[] = [];
    for (let g = 0; g < take; g++) groupLens.push(lens[inv.postDoc[group[g]]]);
    smallest = mergeAscending(smallest, groupLens).slice(0, SKYLINE_K);
  }
  return Int32Array.from(out).sort();
}

/** The value of rank k (0-based) in `a` (reordered in place): Hoare's selection, O(n) expected. */
function kthSmallest(a: Int32Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function mergeAscending(a: number[], b: number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length)
    out.push(j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i++] : b[j++]);
  return out;
}
