/**
 * HNSW graph artifacts for large vector shards: reused from the parent for a reused shard, else
 * built. Graphs are independent of each other, so they are built concurrently: on the compute
 * threads when the engine has them (task `build_hnsw`, one per shard), else here one by one.
 */
import { describeRepair, type RepairParams } from '../codec/repair-descriptor.ts';
import type { ObjectId } from '../core/ids.ts';
import type { GenerationManifest, VectorArtifact } from '../core/manifest.ts';
import type { Storage } from '../runtime/index.ts';
import type { GenerationReader } from '../search/generation-reader.ts';
import { VectorShard } from '../search/vector/fsvi.ts';
import { buildHnswFile } from '../search/vector/hnsw.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { SymbolStore } from '../storage/symbol-store.ts';

/** A graph built and stored (object and repair symbols) elsewhere, e.g. on a compute thread. */
export type GraphBuilder = (shardId: ObjectId) => Promise<{ object_id: ObjectId; size_bytes: number } | null>;

export async function addHnswGraphs(
  out: { manifest: GenerationManifest },
  parent: GenerationReader | null,
  c: {
    hnsw_min_rows: number;
    repair: RepairParams;
    /** Builds and stores one shard's graph (a compute task, or buildStoredGraph inline). */
    build_graph: GraphBuilder;
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
      const g = await c.build_graph(a.object_id);
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
  // Two shards with the same rows in the same order (documents ingested again under other ids)
  // get byte-identical graphs: one object, which a manifest lists once. The later shard keeps no
  // graph and is scanned exactly (a build used to fail on it, for good: "listed twice").
  const listed = new Set([...m.lexical_artifacts, ...m.vector_artifacts].map((a) => a.object_id));
  const added: VectorArtifact[] = [];
  for (const g of await runLimited(jobs, c.concurrency ?? jobs.length)) {
    if (g === null || listed.has(g.object_id)) continue;
    listed.add(g.object_id);
    added.push(g);
  }
  if (added.length === 0) return;
  m.vector_artifacts.push(...added);
  for (const a of added) m.repair.descriptors.push(describeRepair(a.object_id, a.size_bytes, c.repair));
}

/**
 * Every job's result in job order, at most `limit` running at once. After a failure no further
 * job starts (the caller's error path must not race jobs still being started).
 */
export async function runLimited<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < jobs.length && !failed) {
      const i = next++;
      try {
        out[i] = await jobs[i]();
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, lane));
  return out;
}

/**
 * Build one shard's graph from the stored shard and store it with its repair symbols. The graph
 * goes from hnswlib's scratch file into the store by rename, hashed and encoded by ranges: its
 * bytes are never held whole (a 25k-row graph is ~30 MB).
 */
export async function buildStoredGraph(
  shardId: ObjectId,
  env: { storage: Storage; objects: ObjectStore; symbols: SymbolStore },
): Promise<{ object_id: ObjectId; size_bytes: number } | null> {
  // Rows read as stored (f16 → number as hnswlib takes them): no f32 copy of the shard.
  const shard = VectorShard.view(shardId, await env.objects.get('artifact', shardId));
  const file = await buildHnswFile(env.storage, shard);
  if (!file) return null;
  let g: { object_id: ObjectId; size_bytes: number };
  try {
    g = await env.objects.adoptFile('artifact', file);
  } catch (err) {
    await env.storage.remove(file).catch(() => {});
    throw err;
  }
  await env.symbols.ensure('artifact', g.object_id);
  return g;
}
