/**
 * HNSW graph artifacts for large vector shards: reused from the parent for a reused shard, else
 * built. Graphs are independent of each other, so they are built concurrently: on the compute
 * threads when the engine has them (task `build_hnsw`, one per shard), else here one by one.
 */
import { describeRepair, type RepairParams } from '../codec/repair-descriptor.ts';
import { type ObjectId, objectIdOf } from '../core/ids.ts';
import type { GenerationManifest, VectorArtifact } from '../core/manifest.ts';
import type { Storage } from '../runtime/index.ts';
import type { GenerationReader } from '../search/generation-reader.ts';
import { VectorShard } from '../search/vector/fsvi.ts';
import { buildHnsw } from '../search/vector/hnsw.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { SymbolStore } from '../storage/symbol-store.ts';

/** A graph built and stored (object and repair symbols) elsewhere, e.g. on a compute thread. */
export type GraphBuilder = (shardId: ObjectId) => Promise<{ object_id: ObjectId; size_bytes: number } | null>;

export async function addHnswGraphs(
  out: { manifest: GenerationManifest; new_artifacts: Map<ObjectId, Uint8Array> },
  parent: GenerationReader | null,
  c: {
    storage: Storage;
    objects: ObjectStore;
    hnsw_min_rows: number;
    repair: RepairParams;
    /** Build each graph with this (stored by it) instead of here (added to new_artifacts). */
    build_graph?: GraphBuilder;
    /**
     * Graphs built at once (default: all). One on a single thread: each build holds its shard's
     * vectors and hnswlib's copy, and two at once on one thread only add their memory.
     */
    concurrency?: number;
  },
): Promise<void> {
  const m = out.manifest;
  const jobs: (() => Promise<VectorArtifact | null>)[] = [];
  for (const a of m.vector_artifacts) {
    if (a.role !== 'fsvi' || a.tier === 'quality' || a.count < c.hnsw_min_rows) continue;
    const prev = parent?.manifest.vector_artifacts.find(
      (p) => p.role === 'hnsw' && p.shard_object_id === a.object_id,
    );
    if (prev) {
      jobs.push(async () => prev);
      continue;
    }
    jobs.push(async () => {
      const g = c.build_graph
        ? await c.build_graph(a.object_id)
        : await buildHere(a.object_id, out.new_artifacts, c.storage, c.objects);
      return g === null
        ? null
        : {
            ...a,
            object_id: g.object_id,
            role: 'hnsw' as const,
            shard_object_id: a.object_id,
            size_bytes: g.size_bytes,
          };
    });
  }
  // In manifest order whatever order the builds finish in: the manifest stays deterministic.
  const added = (await runLimited(jobs, c.concurrency ?? jobs.length)).filter((x) => x !== null);
  if (added.length === 0) return;
  m.vector_artifacts.push(...added);
  for (const a of added) m.repair.descriptors.push(describeRepair(a.object_id, a.size_bytes, c.repair));
}

/** Every job's result in job order, at most `limit` running at once. */
async function runLimited<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, lane));
  return out;
}

async function buildHere(
  shardId: ObjectId,
  newArtifacts: Map<ObjectId, Uint8Array>,
  storage: Storage,
  objects: ObjectStore,
) {
  const shardBytes = newArtifacts.get(shardId) ?? (await objects.get('artifact', shardId));
  const graph = await buildHnsw(storage, VectorShard.open(shardId, shardBytes));
  if (!graph) return null;
  const id = objectIdOf('artifact', graph);
  newArtifacts.set(id, graph);
  return { object_id: id, size_bytes: graph.length };
}

/** Build one shard's graph from the stored shard and store it with its repair symbols. */
export async function buildStoredGraph(
  shardId: ObjectId,
  env: { storage: Storage; objects: ObjectStore; symbols: SymbolStore },
): Promise<{ object_id: ObjectId; size_bytes: number } | null> {
  const bytes = new Map<ObjectId, Uint8Array>();
  const g = await buildHere(shardId, bytes, env.storage, env.objects);
  if (!g) return null;
  const graph = bytes.get(g.object_id)!;
  await env.objects.putVerified('artifact', g.object_id, graph);
  await env.symbols.ensure('artifact', g.object_id, graph);
  return g;
}
