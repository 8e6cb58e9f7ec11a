/** HNSW graph artifacts for large vector shards: reused from the parent for a reused shard, else built. */
import { describeRepair, type RepairParams } from '../codec/repair-descriptor.ts';
import { type ObjectId, objectIdOf } from '../core/ids.ts';
import type { GenerationManifest } from '../core/manifest.ts';
import type { Storage } from '../runtime/index.ts';
import type { GenerationReader } from '../search/generation-reader.ts';
import { VectorShard } from '../search/vector/fsvi.ts';
import { buildHnsw } from '../search/vector/hnsw.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export async function addHnswGraphs(
  out: { manifest: GenerationManifest; new_artifacts: Map<ObjectId, Uint8Array> },
  parent: GenerationReader | null,
  c: { storage: Storage; objects: ObjectStore; hnsw_min_rows: number; repair: RepairParams },
): Promise<void> {
  const m = out.manifest;
  const added = [];
  for (const a of m.vector_artifacts) {
    if (a.role !== 'fsvi' || a.tier === 'quality' || a.count < c.hnsw_min_rows) continue;
    const prev = parent?.manifest.vector_artifacts.find(
      (p) => p.role === 'hnsw' && p.shard_object_id === a.object_id,
    );
    if (prev) {
      added.push(prev);
      continue;
    }
    const shardBytes = out.new_artifacts.get(a.object_id) ?? (await c.objects.get('artifact', a.object_id));
    const graph = await buildHnsw(c.storage, VectorShard.open(a.object_id, shardBytes));
    if (!graph) continue;
    const id = objectIdOf('artifact', graph);
    out.new_artifacts.set(id, graph);
    added.push({
      ...a,
      object_id: id,
      role: 'hnsw' as const,
      shard_object_id: a.object_id,
      size_bytes: graph.length,
    });
  }
  if (added.length === 0) return;
  m.vector_artifacts.push(...added);
  for (const a of added) m.repair.descriptors.push(describeRepair(a.object_id, a.size_bytes, c.repair));
}
