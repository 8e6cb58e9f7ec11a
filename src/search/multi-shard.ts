/**
 * Scatter-gather over shards (docs/sharding.md). Each shard answers from exactly one pinned
 * generation with ranked lists whose scores are comparable across shards — lexical lists scored
 * with collection-wide BM25 statistics (`LexicalStats`, summed over the shards first, as
 * Elasticsearch's dfs_query_then_fetch does), vector lists by cosine — and the coordinator merges
 * each list by score, then fuses exactly as one generation would (searcher.ts): lexical and
 * vector answers equal those of one index over all shards; hybrid fuses after the merge.
 */
import type { GenerationReader, ScoredDoc } from './generation-reader.ts';
import type { LexicalStats } from './lexical/scoring.ts';
import {
  classifyQuery,
  fusionWeights,
  type Hit,
  type QualityTier,
  type QueryClass,
  reciprocalRankFusion,
  type SearchMode,
  type SearchOptions,
  validateSearchOptions,
} from './searcher.ts';
import { tokenize } from './text.ts';
import type { Embedder } from './vector/embedder.ts';

/** One shard's ranked lists for a query; absent lists were not asked for by its mode. */
export interface ShardLists {
  lexical?: ScoredDoc[];
  vector?: ScoredDoc[];
  /** The quality tier's nearest neighbours (hybrid, refined, when the shard has the tier). */
  semantic?: ScoredDoc[];
}

/** How deep each list goes: what the fusion of searcher.ts reads of it. */
function depths(k: number, refined: boolean): { list: number; semantic: number } {
  const fast = Math.max(k * 3, 30);
  return { list: refined ? Math.max(fast * 3, 30) : fast, semantic: fast };
}

/** Whether a query reads the quality tier (the same rule as searchTwoTier). */
function wantsQuality(o: SearchOptions, reader: GenerationReader, quality: QualityTier | undefined): boolean {
  return !!quality && reader.has_quality_tier && (o.mode ?? 'hybrid') === 'hybrid' && o.tier !== 'fast';
}

/** A shard's lists from its pinned generation, lexical scores under the collection's `stats`. */
export function shardLists(
  reader: GenerationReader,
  opts: SearchOptions,
  embedder: Embedder,
  quality: QualityTier | undefined,
  stats: LexicalStats,
): ShardLists {
  const o = validateSearchOptions(opts);
  const refined = wantsQuality(o, reader, quality);
  const d = depths(o.k, refined);
  const depth = o.mode === 'hybrid' ? d.list : o.k;
  const out: ShardLists = {};
  if (o.mode !== 'vector') out.lexical = reader.searchLexical(tokenize(o.q), depth, { stats });
  if (o.mode !== 'lexical') out.vector = reader.searchVector(embedder.embed([o.q])[0], depth);
  if (refined && quality) out.semantic = reader.searchQuality(quality.embedder.embed([o.q])[0], d.semantic);
  return out;
}

/** Best first: score descending, then doc_id ascending (the tie rule of TopK). */
function byScore(a: ScoredDoc, b: ScoredDoc): number {
  return b.score - a.score || (a.doc_id < b.doc_id ? -1 : a.doc_id > b.doc_id ? 1 : 0);
}

function mergeList(lists: (ScoredDoc[] | undefined)[], depth: number): ScoredDoc[] | undefined {
  const present = lists.filter((l): l is ScoredDoc[] => l !== undefined);
  if (present.length === 0) return undefined;
  return present.flat().sort(byScore).slice(0, depth);
}

export interface MergedAnswer {
  mode: SearchMode;
  query_class: QueryClass;
  tiers: string[];
  phase: 'initial' | 'refined';
  hits: Hit[];
}

/**
 * Merge the shards' lists and fuse them as one generation would: lexical or vector mode take the
 * merged list's top k; hybrid fuses lexical and vector by RRF, then the quality tier when every
 * shard sent semantic neighbours.
 */
export function mergeShardLists(
  shards: ShardLists[],
  opts: SearchOptions,
  embedder: Embedder,
  quality: QualityTier | undefined,
): MergedAnswer {
  const o = validateSearchOptions(opts);
  const cls = classifyQuery(o.q);
  const refined = !!quality && shards.length > 0 && shards.every((s) => s.semantic !== undefined);
  const d = depths(o.k, refined);
  const lex = mergeList(
    shards.map((s) => s.lexical),
    o.mode === 'hybrid' ? d.list : o.k,
  );
  const vec = mergeList(
    shards.map((s) => s.vector),
    o.mode === 'hybrid' ? d.list : o.k,
  );
  const top = (list: ScoredDoc[], k: number): Hit[] =>
    list.slice(0, k).map((h, i) => ({ doc_id: h.doc_id, score: h.score, rank: i + 1 }));
  if (o.mode === 'lexical')
    return {
      mode: o.mode,
      query_class: cls,
      tiers: ['lexical'],
      phase: 'initial',
      hits: top(lex ?? [], o.k),
    };
  if (o.mode === 'vector')
    return {
      mode: o.mode,
      query_class: cls,
      tiers: [`vector:${embedder.id}`],
      phase: 'initial',
      hits: top(vec ?? [], o.k),
    };
  const w = fusionWeights(cls);
  const fast = reciprocalRankFusion(
    [
      { hits: lex ?? [], weight: w.lexical },
      { hits: vec ?? [], weight: w.vector },
    ],
    o.rrf_k,
  );
  const tiers = ['lexical', `vector:${embedder.id}`, 'rrf'];
  if (!refined || !quality)
    return { mode: o.mode, query_class: cls, tiers, phase: 'initial', hits: top(fast, o.k) };
  const semantic = mergeList(
    shards.map((s) => s.semantic),
    d.semantic,
  );
  const qw = quality.weight;
  const fused = reciprocalRankFusion(
    [
      { hits: fast.slice(0, d.semantic), weight: 2 * (1 - qw) },
      { hits: semantic ?? [], weight: 2 * qw },
    ],
    o.rrf_k,
  );
  return {
    mode: o.mode,
    query_class: cls,
    tiers: [...tiers, `quality:${quality.embedder.id}`],
    phase: 'refined',
    hits: top(fused, o.k),
  };
}
