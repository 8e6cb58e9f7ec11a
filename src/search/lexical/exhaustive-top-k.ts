/**
 * BM25 top k scoring every posting, term at a time, into per-document accumulators: the plain
 * scorer (and the reference the pruned one, pruned-top-k.ts, must equal bit for bit). Used for
 * queries of several terms of similar frequency, where pruning skips little (worthPruning).
 */
import type { TopK } from '../topk.ts';
import { isDeletedIn } from './deletes.ts';
import type { LexicalScoring, QueryTerm } from './scoring.ts';
import type { Segment } from './segment.ts';

export interface SegmentView {
  seg: Segment;
  /** Global docnum of the segment's docnum 0. */
  base: number;
  /** Deletion bitmap (bit d set: docnum d deleted) or null. */
  deleted: Uint8Array | null;
}

export class ExhaustiveScorer {
  private readonly acc: Float64Array;
  /** Docnums (global) touched by the running query, in first-touch order. */
  private readonly touched: Int32Array;

  /** `totalDocs`: the generation's documents over all segments (the accumulator size). */
  constructor(totalDocs: number) {
    this.acc = new Float64Array(totalDocs);
    this.touched = new Int32Array(totalDocs);
  }

  addTopK(
    views: SegmentView[],
    terms: QueryTerm[],
    p: LexicalScoring,
    top: TopK<number>,
    docIdAt: (g: number) => string,
  ): void {
    const { acc, touched } = this;
    let nTouched = 0;
    const { title_boost, norm } = p;
    for (const { term, idfK } of terms) {
      for (const { seg, base, deleted: del } of views) {
        const tp = seg.postings(term);
        if (!tp) continue;
        const { e, bytes: b8 } = tp;
        const packed = seg.version >= 2;
        // Postings decoded inline (same layout as Segment.forEachPosting): the lexical hot loop.
        // Most values fit one LEB128 byte, so that case skips the inner loop.
        let pos = e.postings;
        const end = e.offset + e.length;
        let d = 0;
        while (pos < end) {
          let c = b8[pos++];
          let v = c & 0x7f;
          for (let shift = 7; c & 0x80; shift += 7) {
            c = b8[pos++];
            v |= (c & 0x7f) << shift;
          }
          d += v;
          c = b8[pos++];
          let f = c & 0x7f;
          for (let shift = 7; c & 0x80; shift += 7) {
            c = b8[pos++];
            f |= (c & 0x7f) << shift;
          }
          let tt = 0;
          let tx: number;
          if (packed) {
            // Version 2: f = tf_text·2 + title flag, tf_title follows when flagged.
            tx = f >>> 1;
            if (f & 1) {
              c = b8[pos++];
              tt = c & 0x7f;
              for (let shift = 7; c & 0x80; shift += 7) {
                c = b8[pos++];
                tt |= (c & 0x7f) << shift;
              }
            }
          } else {
            tt = f;
            c = b8[pos++];
            tx = c & 0x7f;
            for (let shift = 7; c & 0x80; shift += 7) {
              c = b8[pos++];
              tx |= (c & 0x7f) << shift;
            }
          }
          if (isDeletedIn(del, d)) continue;
          const tf = tx + title_boost * tt;
          const g = base + d;
          if (acc[g] === 0) touched[nTouched++] = g;
          acc[g] += (idfK * tf) / (tf + norm[g]);
        }
      }
    }
    for (let i = 0; i < nTouched; i++) {
      const g = touched[i];
      const score = acc[g];
      acc[g] = 0;
      if (top.admits(score)) top.push(score, docIdAt(g), g);
    }
  }
}
