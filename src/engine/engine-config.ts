/** The engine's configuration and its defaults (values from src/core/defaults.ts). */
import { DEFAULT_REPAIR, type RepairParams } from '../codec/repair-descriptor.ts';
import { ENGINE_DEFAULTS } from '../core/defaults.ts';
import { type Bm25Params, DEFAULT_BM25 } from '../search/generation-reader.ts';
import type { Reranker } from '../search/searcher.ts';
import { type Embedder, HashedEmbedder } from '../search/vector/embedder.ts';
import type { DurabilityPolicy } from '../storage/capsule-log.ts';
import type { RetentionPolicy } from '../storage/generations.ts';

export interface EngineConfig {
  shard: string;
  /** Identity written into manifests as created_by (the writer's name or peer id). */
  created_by: string;
  durability: DurabilityPolicy;
  embedder: Embedder;
  quantization: 'f16' | 'f32';
  repair: RepairParams;
  max_segments: number;
  /** A build window's upserts are cut into segments of at most this many documents. */
  segment_max_docs: number;
  retention: RetentionPolicy;
  /** Embedder revisions explicitly allowed to activate although they differ from ours (§8.5). */
  embedder_revision_overrides: string[];
  bm25: Bm25Params;
  reranker?: Reranker;
  /** TwoTierSearcher quality tier (e.g. StaticEmbedder): builds quality shards and refines answers. */
  quality_embedder?: Embedder;
  quality_weight: number;
  log_segment_max_bytes: number;
  /** 'writer' builds generations from its log; 'replica' receives them from peers. */
  role: 'writer' | 'replica';
  /** Vector shards with at least this many rows also get an HNSW graph artifact. */
  hnsw_min_rows: number;
  /**
   * Open generations other than the active and pinned ones are kept while all held fit in this
   * many bytes (most recently used first); beyond it a time-travel read reopens its generation.
   */
  reader_cache_bytes: number;
  /**
   * Postings of version 5 segments' terms, read by ranges as queries need them, are kept while
   * they fit in this many bytes (most recently used first); 0 keeps none beyond each query.
   */
  postings_cache_bytes: number;
}

export function defaultEngineConfig(over: Partial<EngineConfig> = {}): EngineConfig {
  return {
    shard: ENGINE_DEFAULTS.shard,
    created_by: ENGINE_DEFAULTS.created_by,
    durability: { mode: 'fsync' },
    embedder: new HashedEmbedder(ENGINE_DEFAULTS.hashed_embedder_dims),
    quantization: ENGINE_DEFAULTS.quantization,
    repair: DEFAULT_REPAIR,
    max_segments: ENGINE_DEFAULTS.max_segments,
    segment_max_docs: ENGINE_DEFAULTS.segment_max_docs,
    retention: {
      keep_last: ENGINE_DEFAULTS.retention_keep_last,
      keep_newer_than_ms: ENGINE_DEFAULTS.retention_keep_newer_than_ms,
    },
    embedder_revision_overrides: [],
    bm25: DEFAULT_BM25,
    log_segment_max_bytes: ENGINE_DEFAULTS.log_segment_max_bytes,
    hnsw_min_rows: ENGINE_DEFAULTS.hnsw_min_rows,
    reader_cache_bytes: ENGINE_DEFAULTS.reader_cache_bytes,
    postings_cache_bytes: ENGINE_DEFAULTS.postings_cache_bytes,
    quality_weight: ENGINE_DEFAULTS.quality_weight,
    role: 'writer',
    ...over,
  };
}
