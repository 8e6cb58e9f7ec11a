/**
 * One generation build as a task (§6 write path step 3): from the commits after the parent to a
 * stored candidate — artifacts, HNSW graphs and repair symbols written and fsynced — returning the
 * manifest (not yet stored: the engine stores it and leases it). The same function runs inline
 * (simulator, library) and in a compute worker (src/engine/compute-worker.ts), where everything it
 * needs comes from its structured-cloneable input: the commits, the parent's manifest (its
 * artifacts are read from the data directory) and the embedders' specs.
 */
import type { RepairParams } from '../codec/repair-descriptor.ts';
import { FsmeshError } from '../core/errors.ts';
import { type ObjectId, objectIdOf } from '../core/ids.ts';
import type { GenerationManifest, Quantization } from '../core/manifest.ts';
import type { Storage } from '../runtime/index.ts';
import { type BuildInput, buildGeneration } from '../search/builder.ts';
import type { GenerationReader } from '../search/generation-reader.ts';
import type { Embedder, EmbedderSpec } from '../search/vector/embedder.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { SymbolStore } from '../storage/symbol-store.ts';
import { addHnswGraphs, type GraphBuilder } from './hnsw-graphs.ts';

export interface BuildSettings {
  shard: string;
  created_by: string;
  quantization: Quantization;
  repair: RepairParams;
  max_segments: number;
  segment_max_docs: number;
  hnsw_min_rows: number;
}

/** What a build needs besides its settings, all structured-cloneable. */
export interface BuildTaskInput {
  /** The node's data directory (the worker opens its own handle on it). */
  data_dir: string;
  parent: { artifact_manifest_id: ObjectId; manifest: GenerationManifest } | null;
  commits: BuildInput['commits'];
  next_generation_seq: number;
  head_marker_id: ObjectId;
  commit_seq_high: number;
  settings: BuildSettings;
  embedder: EmbedderSpec;
  quality_embedder?: EmbedderSpec;
  /** Leave the HNSW graphs out: the caller builds them in parallel (task build_hnsw) and adds them. */
  defer_graphs?: boolean;
}

export interface BuildTaskOutput {
  manifest: GenerationManifest;
  /** Objects this build wrote (parent artifacts it reuses are not listed). */
  new_artifact_ids: ObjectId[];
  new_artifact_bytes: number;
  /** The HNSW graphs were left out (defer_graphs): the caller adds them. */
  graphs_deferred: boolean;
}

/** Where a build reads and writes: the engine's own stores inline, a worker's handles otherwise. */
export interface BuildEnv {
  storage: Storage;
  objects: ObjectStore;
  symbols: SymbolStore;
  parent: GenerationReader | null;
  embedder: Embedder;
  quality_embedder?: Embedder;
  /** HNSW graphs built at once (default all): the compute threads' count, 1 with none. */
  graph_concurrency?: number;
}

export async function buildCandidateArtifacts(
  input: Omit<BuildTaskInput, 'data_dir' | 'embedder' | 'quality_embedder' | 'parent'>,
  env: BuildEnv,
  graphs?: GraphBuilder,
): Promise<BuildTaskOutput> {
  const s = input.settings;
  const out = buildGeneration(
    {
      parent: env.parent,
      next_generation_seq: input.next_generation_seq,
      commits: input.commits,
      head_marker_id: input.head_marker_id,
      commit_seq_high: input.commit_seq_high,
    },
    {
      shard: s.shard,
      created_by: s.created_by,
      embedder: env.embedder,
      quantization: s.quantization,
      repair: s.repair,
      max_segments: s.max_segments,
      segment_max_docs: s.segment_max_docs,
      quality_embedder: env.quality_embedder,
    },
    (bytes) => objectIdOf('artifact', bytes),
  );
  // Graphs built elsewhere (compute threads) read their shard from the store: store first.
  const stored = new Set<ObjectId>();
  const store = async () => {
    for (const [id, b] of out.new_artifacts) {
      if (stored.has(id)) continue;
      stored.add(id);
      await env.objects.putVerified('artifact', id, b);
      await env.symbols.ensure('artifact', id, b);
    }
  };
  if (graphs) await store();
  if (!input.defer_graphs)
    await addHnswGraphs(out, env.parent, {
      storage: env.storage,
      objects: env.objects,
      hnsw_min_rows: s.hnsw_min_rows,
      repair: s.repair,
      build_graph: graphs,
      concurrency: env.graph_concurrency,
    });
  await store();
  let bytes = 0;
  for (const b of out.new_artifacts.values()) bytes += b.length;
  return {
    manifest: out.manifest,
    new_artifact_ids: [...out.new_artifacts.keys()],
    new_artifact_bytes: bytes,
    graphs_deferred: input.defer_graphs === true,
  };
}

/** A worker's parent must be the generation the engine pinned: same id, same manifest. */
export function checkParent(reader: GenerationReader | null, input: BuildTaskInput): void {
  if ((reader?.artifact_manifest_id ?? null) !== (input.parent?.artifact_manifest_id ?? null))
    throw new FsmeshError('conflict', 'build task: the parent generation opened is not the one pinned');
}
