/**
 * One generation build (§6 write path step 3) as tasks: from the commits after the parent to a
 * stored candidate — artifacts, HNSW graphs and repair symbols written and fsynced — returning the
 * manifest (not yet stored: the engine stores it and leases it).
 *
 * The window is planned on the caller's thread (each document's final op, upserts cut into parts),
 * then each part — segment, embeddings, vector shards — is a task that stores its objects and
 * returns their ids, so a part's output is dropped as soon as it is on disk and parts run on
 * different compute threads. An assembly task adds the parent's segments, deletes, the merge policy
 * and the manifest; the HNSW graphs follow, one task per shard. Every task runs inline (simulator,
 * library, CLI) or in a compute worker (src/engine/compute-worker.ts) from its structured-cloneable
 * input, with the same bytes either way.
 */
import type { RepairParams } from '../codec/repair-descriptor.ts';
import type { UpsertOp } from '../core/capsule.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import { type ObjectId, objectIdOf } from '../core/ids.ts';
import type { GenerationManifest, Quantization } from '../core/manifest.ts';
import { buildPart, type EmbedderIdentity, type PartResult } from '../search/build-part.ts';
import { type AssembleInput, assembleGeneration, planWindow, type WindowCommit } from '../search/builder.ts';
import type { GenerationReader } from '../search/generation-reader.ts';
import { Segment } from '../search/lexical/segment.ts';
import type { Embedder } from '../search/vector/embedder.ts';
import { VectorShard } from '../search/vector/fsvi.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { SymbolStore } from '../storage/symbol-store.ts';
import { addHnswGraphs, type GraphBuilder, runLimited } from './hnsw-graphs.ts';

export interface BuildSettings {
  shard: string;
  created_by: string;
  quantization: Quantization;
  repair: RepairParams;
  max_segments: number;
  segment_max_docs: number;
  hnsw_min_rows: number;
}

export interface BuildTaskOutput {
  manifest: GenerationManifest;
  /** Objects this build wrote (parent artifacts it reuses are not listed). */
  new_artifact_ids: ObjectId[];
  new_artifact_bytes: number;
}

/** Where a task reads and writes: the engine's own stores inline, a worker's handles otherwise. */
export interface StoreEnv {
  objects: ObjectStore;
  symbols: SymbolStore;
}

const artifactId = (bytes: Uint8Array) => objectIdOf('artifact', bytes);

async function storeAll(made: Map<ObjectId, Uint8Array>, env: StoreEnv): Promise<number> {
  let bytes = 0;
  for (const [id, b] of made) {
    await env.objects.putVerified('artifact', id, b);
    await env.symbols.ensure('artifact', id, b);
    bytes += b.length;
  }
  return bytes;
}

/** A part built and stored: what the assembly needs of it, and what it wrote. */
export interface StoredPart extends PartResult {
  written: { ids: ObjectId[]; bytes: number };
}

/** Task build_part: one part's segment and shards, stored with their repair symbols. */
export async function buildStoredPart(
  ops: UpsertOp[],
  cfg: { embedder: Embedder; quality_embedder?: Embedder; quantization: Quantization },
  env: StoreEnv,
): Promise<StoredPart> {
  const made = new Map<ObjectId, Uint8Array>();
  const result = buildPart(ops, cfg, made, artifactId);
  const bytes = await storeAll(made, env);
  return { ...result, written: { ids: [...made.keys()], bytes } };
}

/** What the assembly task needs besides the parent reader, all structured-cloneable. */
export interface AssembleTaskArgs extends Omit<AssembleInput, 'parent' | 'parts'> {
  parts: PartResult[];
  settings: BuildSettings;
  embedder: EmbedderIdentity;
  quality_embedder?: EmbedderIdentity;
}

/** Task assemble_generation: parent carry-over, deletes, merges and the manifest; stores new objects. */
export async function assembleStored(
  args: AssembleTaskArgs,
  env: StoreEnv & { parent: GenerationReader | null },
): Promise<BuildTaskOutput> {
  const s = args.settings;
  const out = await assembleGeneration(
    { ...args, parent: env.parent },
    {
      shard: s.shard,
      created_by: s.created_by,
      embedder: identity(args.embedder),
      quality_embedder: args.quality_embedder && identity(args.quality_embedder),
      quantization: s.quantization,
      repair: s.repair,
      max_segments: s.max_segments,
    },
    artifactId,
    {
      segment: async (id) => Segment.open(id, await env.objects.get('artifact', id)),
      shard: async (id) => VectorShard.open(id, await env.objects.get('artifact', id)),
    },
  );
  const bytes = await storeAll(out.new_artifacts, env);
  return {
    manifest: out.manifest,
    new_artifact_ids: [...out.new_artifacts.keys()],
    new_artifact_bytes: bytes,
  };
}

/** An embedder's identity alone (what a manifest names; structured-cloneable). */
export function identity(e: EmbedderIdentity): EmbedderIdentity {
  return { id: e.id, revision_hash: e.revision_hash, dims: e.dims };
}

/** How the steps run: on compute threads or inline (src/engine/local-engine.ts decides). */
export interface BuildSteps {
  part(ops: UpsertOp[]): Promise<StoredPart>;
  assemble(args: AssembleTaskArgs): Promise<BuildTaskOutput>;
  graph: GraphBuilder;
  /** Graphs at once: the compute threads, 1 without (each holds its shard and index in memory). */
  concurrency: number;
  /** Parts at once: the same on threads; 1 when parts run here (each holds its part in memory). */
  part_concurrency: number;
  /** Told each object as soon as it is stored (the engine keeps GC away until the manifest is leased). */
  onStored?(ids: ObjectId[]): void;
}

export interface BuildWindow {
  parent: GenerationReader | null;
  commits: WindowCommit[];
  next_generation_seq: number;
  head_marker_id: ObjectId;
  commit_seq_high: number;
  settings: BuildSettings;
  embedder: EmbedderIdentity;
  quality_embedder?: EmbedderIdentity;
}

/** Plan, parts, assembly, graphs. `w.commits` is emptied once planned (the parts hold the ops). */
export async function runGenerationBuild(w: BuildWindow, steps: BuildSteps): Promise<BuildTaskOutput> {
  const plan = planWindow(w, w.settings);
  w.commits = [];
  const pending: (UpsertOp[] | null)[] = plan.parts;
  const written: ObjectId[] = [];
  let writtenBytes = 0;
  const parts = await runLimited(
    pending.map((_, i) => async () => {
      const ops = pending[i]!;
      pending[i] = null; // the task holds its ops; nothing here keeps them past it
      const p = await steps.part(ops);
      steps.onStored?.(p.written.ids);
      written.push(...p.written.ids);
      writtenBytes += p.written.bytes;
      return { segment: p.segment, shard: p.shard, ...(p.qshard ? { qshard: p.qshard } : {}) };
    }),
    steps.part_concurrency,
  );
  invariant(parts.length === plan.parts.length, 'every part was built');
  const out = await steps.assemble({
    touched: plan.touched,
    parts,
    next_generation_seq: w.next_generation_seq,
    head_marker_id: w.head_marker_id,
    commit_seq_high: w.commit_seq_high,
    settings: w.settings,
    embedder: identity(w.embedder),
    ...(w.quality_embedder ? { quality_embedder: identity(w.quality_embedder) } : {}),
  });
  steps.onStored?.(out.new_artifact_ids);
  await addHnswGraphs(out, w.parent, {
    hnsw_min_rows: w.settings.hnsw_min_rows,
    repair: w.settings.repair,
    build_graph: async (id) => {
      const g = await steps.graph(id);
      if (g) steps.onStored?.([g.object_id]);
      return g;
    },
    concurrency: steps.concurrency,
  });
  return {
    manifest: out.manifest,
    new_artifact_ids: [...written, ...out.new_artifact_ids],
    new_artifact_bytes: writtenBytes + out.new_artifact_bytes,
  };
}

/** A worker's parent must be the generation the engine pinned: same id, same manifest. */
export function checkParent(
  reader: GenerationReader | null,
  parent: { artifact_manifest_id: ObjectId } | null,
): void {
  if ((reader?.artifact_manifest_id ?? null) !== (parent?.artifact_manifest_id ?? null))
    throw new FsmeshError('conflict', 'build task: the parent generation opened is not the one pinned');
}
