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

/**
 * Collection-wide BM25 statistics: each shard's `GenerationReader.lexicalStats` summed. Scoring
 * every shard with them gives the scores of one index over all shards (docs/sharding.md).
 */
export interface LexicalStats {
  live_docs: number;
  /** Σ over live documents of text_len + title_boost·title_len. */
  len_sum: number;
  /** Live documents containing each query term. */
  df: Record<string, number>;
}

/** BM25 idf of a term found in `df` of `n` documents (the +1 keeps it positive). */
export function bm25Idf(n: number, df: number): number {
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/**
 * A term's df in a statistics object. Terms are user text ("constructor", "__proto__"): the maps
 * have no prototype and are read by own property only.
 */
export function dfOf(stats: LexicalStats, term: string): number {
  return Object.hasOwn(stats.df, term) ? stats.df[term] : 0;
}

/** An empty df map with no prototype (see dfOf). */
export function emptyDf(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

/** Sum shards' statistics (terms absent from a share count 0 there). */
export function sumLexicalStats(shares: LexicalStats[]): LexicalStats {
  const out: LexicalStats = { live_docs: 0, len_sum: 0, df: emptyDf() };
  for (const s of shares) {
    out.live_docs += s.live_docs;
    out.len_sum += s.len_sum;
    for (const [t, n] of Object.entries(s.df)) out.df[t] = dfOf(out, t) + n;
  }
  return out;
}
