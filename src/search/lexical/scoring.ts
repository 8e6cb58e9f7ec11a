/** What the lexical scorers (pruned-top-k.ts, exhaustive-top-k.ts) take: BM25 inputs per query. */

/** What scores a posting: BM25 with per-document length norms precomputed by the reader. */
export interface LexicalScoring {
  k1: number;
  title_boost: number;
  /** k1·(1 − b) and k1·b / avgdl: norm = normA + normB · len. */
  normA: number;
  normB: number;
  /** Per global docnum (base + docnum): normA + normB · len. */
  norm: Float64Array;
  /**
   * Block bounds already computed by this reader, by segment id and term (they depend only on the
   * term's idf and the norms, both fixed for a generation). Optional; bounded by the caller.
   */
  bound_cache?: Map<string, Float64Array>;
}

export interface QueryTerm {
  term: string;
  /** Position among the query's distinct terms (the summation order). */
  order: number;
  /** idf · (k1 + 1). */
  idfK: number;
}
