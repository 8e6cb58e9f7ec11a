/**
 * Query pipeline (§3): canonicalize → classify → lexical / vector retrieval → Reciprocal Rank
 * Fusion → optional rerank. Runs against exactly one GenerationReader (§5.3).
 */
import { FsmeshError } from '../core/errors.ts';
import type { GenerationReader, ScoredDoc } from './generation-reader.ts';
import { canonicalize, tokenize } from './text.ts';
import type { Embedder } from './vector/embedder.ts';

export const SEARCH_MODES = ['lexical', 'vector', 'hybrid'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];
export const MAX_QUERY_CHARS = 1024;
export const MAX_K = 1000;

export type QueryClass = 'identifier' | 'natural_language';

export interface SearchOptions {
  q: string;
  k?: number;
  mode?: SearchMode;
  rrf_k?: number;
  /** 'fast' returns the initial phase only; default: the refined answer when a quality tier exists. */
  tier?: 'fast' | 'refined';
}

/** The quality tier of the TwoTierSearcher: a semantic embedder and its blend weight. */
export interface QualityTier {
  embedder: Embedder;
  /** Weight of the semantic score against the fast tier's normalised fused score (0..1). */
  weight: number;
}

export interface Hit {
  doc_id: string;
  score: number;
  rank: number;
}

export interface SearchResult {
  generation_id: string;
  commit_seq_high: number;
  artifact_manifest_id: string;
  mode: SearchMode;
  query_class: QueryClass;
  tiers: string[];
  /** 'initial' (fast tier) or 'refined' (quality tier applied). */
  phase: 'initial' | 'refined';
  hits: Hit[];
}

/** Optional rerank stage: gets the fused candidates, returns them reordered. Default: none. */
export interface Reranker {
  readonly name: string;
  rerank(query: string, hits: ScoredDoc[], reader: GenerationReader): ScoredDoc[];
}

export function validateSearchOptions(
  o: SearchOptions,
): Required<Omit<SearchOptions, 'tier'>> & { tier?: 'fast' | 'refined' } {
  if (typeof o.q !== 'string' || o.q.trim() === '')
    throw new FsmeshError('invalid_input', 'query: must be a non-empty string');
  if (o.q.length > MAX_QUERY_CHARS)
    throw new FsmeshError('invalid_input', `query: longer than ${MAX_QUERY_CHARS} characters`);
  const k = o.k ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K)
    throw new FsmeshError('invalid_input', `k: must be an integer in 1..${MAX_K}, got ${o.k}`);
  const mode = o.mode ?? 'hybrid';
  if (!SEARCH_MODES.includes(mode))
    throw new FsmeshError(
      'invalid_input',
      `mode: must be one of ${SEARCH_MODES.join(', ')}, got ${JSON.stringify(o.mode)}`,
    );
  const rrf_k = o.rrf_k ?? 60;
  if (!(typeof rrf_k === 'number' && rrf_k > 0 && Number.isFinite(rrf_k)))
    throw new FsmeshError('invalid_input', 'rrf_k: must be a positive number');
  if (o.tier !== undefined && o.tier !== 'fast' && o.tier !== 'refined')
    throw new FsmeshError(
      'invalid_input',
      `tier: must be "fast" or "refined", got ${JSON.stringify(o.tier)}`,
    );
  return { q: o.q, k, mode, rrf_k, tier: o.tier };
}

/** Identifiers and quoted phrases lean lexical; natural language leans on vectors too. */
export function classifyQuery(q: string): QueryClass {
  const c = canonicalize(q);
  if (/^".*"$/.test(q.trim())) return 'identifier';
  const toks = tokenize(c);
  if (toks.length <= 2 && (/[_./:#-]/.test(q) || /\d/.test(q) || /[a-z][A-Z]/.test(q))) return 'identifier';
  return 'natural_language';
}

export function fusionWeights(cls: QueryClass): { lexical: number; vector: number } {
  return cls === 'identifier' ? { lexical: 1, vector: 0.3 } : { lexical: 1, vector: 1 };
}

/** Reciprocal Rank Fusion: score(d) = Σ_lists w / (rrf_k + rank_in_list(d)), rank from 1. */
export function reciprocalRankFusion(
  lists: { hits: ScoredDoc[]; weight: number }[],
  rrfK: number,
): ScoredDoc[] {
  const acc = new Map<string, number>();
  for (const { hits, weight } of lists) {
    hits.forEach((h, i) => acc.set(h.doc_id, (acc.get(h.doc_id) ?? 0) + weight / (rrfK + i + 1)));
  }
  return [...acc.entries()]
    .map(([doc_id, score]) => ({ doc_id, score }))
    .sort((a, b) => b.score - a.score || (a.doc_id < b.doc_id ? -1 : a.doc_id > b.doc_id ? 1 : 0));
}

/**
 * TwoTierSearcher (§11 behaviour kept): the fast tier (lexical + fast embedder, fused by RRF)
 * answers first; the quality tier fuses the fast ranking with the semantic embedder's nearest
 * neighbours by weighted reciprocal rank, (1 − w)·2/(k + rank_fast) + w·2/(k + rank_semantic), so
 * documents both tiers agree on rise and a strong semantic match with no shared word can surface;
 * then the optional rerank runs.
 * `onInitial` receives the fast answer as soon as it exists.
 */
export function searchTwoTier(
  reader: GenerationReader,
  opts: SearchOptions,
  embedder: Embedder,
  quality: QualityTier | undefined,
  reranker?: Reranker,
  onInitial?: (r: SearchResult) => void,
): { initial: SearchResult; refined: SearchResult | null } {
  const o = validateSearchOptions(opts);
  const useQuality = !!quality && reader.has_quality_tier && o.mode === 'hybrid' && o.tier !== 'fast';
  const initial = searchGeneration(reader, opts, embedder, useQuality ? undefined : reranker);
  onInitial?.(initial);
  if (!useQuality || !quality) return { initial, refined: null };
  const depth = Math.max(o.k * 3, 30);
  const fast = searchGeneration(reader, { ...opts, k: depth }, embedder);
  const qv = quality.embedder.embed([o.q])[0];
  const semantic = reader.searchQuality(qv, depth);
  const w = quality.weight;
  let scored = reciprocalRankFusion(
    [
      { hits: fast.hits.map((h) => ({ doc_id: h.doc_id, score: h.score })), weight: 2 * (1 - w) },
      { hits: semantic, weight: 2 * w },
    ],
    o.rrf_k,
  );
  const tiers = [...initial.tiers, `quality:${quality.embedder.id}`];
  if (reranker) {
    scored = reranker.rerank(o.q, scored, reader);
    tiers.push(`rerank:${reranker.name}`);
  }
  const refined: SearchResult = {
    ...initial,
    tiers,
    phase: 'refined',
    hits: scored.slice(0, o.k).map((h, i) => ({ doc_id: h.doc_id, score: h.score, rank: i + 1 })),
  };
  return { initial, refined };
}

export function searchGeneration(
  reader: GenerationReader,
  opts: SearchOptions,
  embedder: Embedder,
  reranker?: Reranker,
): SearchResult {
  const o = validateSearchOptions(opts);
  const cls = classifyQuery(o.q);
  const tiers: string[] = [];
  let scored: ScoredDoc[];
  const depth = Math.max(o.k * 3, 30);
  if (o.mode === 'lexical') {
    scored = reader.searchLexical(tokenize(o.q), o.k);
    tiers.push('lexical');
  } else if (o.mode === 'vector') {
    scored = reader.searchVector(embedder.embed([o.q])[0], o.k);
    tiers.push(`vector:${embedder.id}`);
  } else {
    const w = fusionWeights(cls);
    const lex = reader.searchLexical(tokenize(o.q), depth);
    const vec = reader.searchVector(embedder.embed([o.q])[0], depth);
    scored = reciprocalRankFusion(
      [
        { hits: lex, weight: w.lexical },
        { hits: vec, weight: w.vector },
      ],
      o.rrf_k,
    );
    tiers.push('lexical', `vector:${embedder.id}`, 'rrf');
  }
  if (reranker) {
    scored = reranker.rerank(o.q, scored, reader);
    tiers.push(`rerank:${reranker.name}`);
  }
  return {
    generation_id: reader.generation_id,
    commit_seq_high: reader.commit_seq_high,
    artifact_manifest_id: reader.artifact_manifest_id,
    mode: o.mode,
    query_class: cls,
    tiers,
    phase: 'initial',
    hits: scored.slice(0, o.k).map((h, i) => ({ doc_id: h.doc_id, score: h.score, rank: i + 1 })),
  };
}
