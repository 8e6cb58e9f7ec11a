/**
 * Reading a generation's artifacts for its reader (generation-reader.ts): the lexical ones when it
 * opens — whole and checked against their manifest entries, or a version 5 segment by ranges — and
 * the vector ones when a vector query first needs them.
 */
import { crc32Checksum } from '../core/checksum.ts';
import { objectPath } from '../core/data-dir-layout.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import type { GenerationManifest, LexicalArtifact, VectorArtifact } from '../core/manifest.ts';
import type { Storage } from '../runtime/index.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { DeleteBitmap } from './lexical/deletes.ts';
import type { PostingsCache } from './lexical/postings-cache.ts';
import { Segment } from './lexical/segment.ts';
import { VectorShard } from './vector/fsvi.ts';
import { HnswGraph } from './vector/hnsw.ts';

/**
 * The lexical artifacts: each must match its manifest entry (size, checksum) before it is decoded.
 * With a postings cache, a version 5 segment opens by ranges instead: its head and page table are
 * checked now (their crc32s), its pages as they are read; the object's hash was checked when it
 * was written or fetched, and the scrubber re-checks it.
 */
export async function openLexical(
  objects: ObjectStore,
  manifest: GenerationManifest,
  cache?: PostingsCache,
): Promise<{ segments: Segment[]; deletes: DeleteBitmap }> {
  // Opened side by side (each a few reads), kept in manifest order.
  const opened = await Promise.all(
    manifest.lexical_artifacts.map((a) => openLexicalArtifact(objects, a, cache)),
  );
  const segments = opened.filter((x): x is Segment => x instanceof Segment);
  const deletes = opened.find((x): x is DeleteBitmap => x instanceof DeleteBitmap) ?? new DeleteBitmap();
  return { segments, deletes };
}

async function openLexicalArtifact(
  objects: ObjectStore,
  a: LexicalArtifact,
  cache?: PostingsCache,
): Promise<Segment | DeleteBitmap> {
  if (cache && a.role === 'segment') {
    const read = (offset: number, length: number) =>
      objects.readRange('artifact', a.object_id, offset, length);
    const seg = await Segment.openRanged(a.object_id, a.size_bytes, read, cache);
    if (seg) return seg;
  }
  const bytes = await objects.get('artifact', a.object_id);
  if (bytes.length !== a.size_bytes || crc32Checksum(bytes) !== a.checksum) {
    throw new FsmeshError(
      'corrupt_data',
      `artifact ${a.object_id} does not match its manifest entry (size or checksum)`,
      { object_id: a.object_id },
    );
  }
  return a.role === 'segment' ? Segment.open(a.object_id, bytes) : DeleteBitmap.decode(a.object_id, bytes);
}

function corruptEntry(objectId: ObjectId, what: string): FsmeshError {
  return new FsmeshError('corrupt_data', `${what} ${objectId} does not match its manifest entry`, {
    object_id: objectId,
  });
}

/**
 * A generation's vector shards, quality shards and HNSW graphs (graphs only with `storage`: loaded
 * from the stored file), each checked against its manifest entry; per segment index. A shard with
 * a graph is re-hashed by ranges and opened by its head (header and doc table): queries walk the
 * graph, so its rows stay on disk until an exact scan or a fallback needs them
 * (`GenerationReader.loadVectorRows`; a build's merge reads the shard from the store itself).
 */
export async function readVectorArtifacts(
  objects: ObjectStore,
  manifest: GenerationManifest,
  segments: Segment[],
  storage?: Storage,
): Promise<{
  shards: (VectorShard | undefined)[];
  qshards: (VectorShard | undefined)[];
  graphs: (HnswGraph | undefined)[];
}> {
  const shards: (VectorShard | undefined)[] = segments.map(() => undefined);
  const qshards: (VectorShard | undefined)[] = [];
  const graphs: (HnswGraph | undefined)[] = [];
  const graphed = (id: ObjectId) =>
    !!storage?.nativePath('') &&
    manifest.vector_artifacts.some((g) => g.role === 'hnsw' && g.shard_object_id === id);
  // Read side by side: one shard's file is read while another's bytes are hashed.
  const fast = manifest.vector_artifacts.filter((a) => a.role === 'fsvi' && a.tier !== 'quality');
  const read = await Promise.all(
    fast.map((a) => readVectorShard(objects, a, manifest, { head_only: graphed(a.object_id) })),
  );
  for (const [i, a] of fast.entries()) {
    const shard = read[i];
    const si = segments.findIndex((s) => s.object_id === a.segment_object_id);
    if (si < 0)
      throw new FsmeshError('corrupt_data', `vector shard ${a.object_id} names a missing segment`, {
        object_id: a.object_id,
      });
    shards[si] = shard;
  }
  for (const a of manifest.vector_artifacts) {
    if (a.tier !== 'quality') continue;
    const shard = VectorShard.open(a.object_id, await objects.get('artifact', a.object_id));
    const si = segments.findIndex((s) => s.object_id === a.segment_object_id);
    if (
      si < 0 ||
      shard.count !== a.count ||
      shard.dims !== a.dims ||
      shard.revision_hash !== manifest.quality_embedder?.revision_hash
    )
      throw corruptEntry(a.object_id, 'quality shard');
    qshards[si] = shard;
  }
  for (const a of manifest.vector_artifacts) {
    if (a.role !== 'hnsw' || !storage) continue;
    const si = shards.findIndex((s) => s?.object_id === a.shard_object_id);
    if (si < 0)
      throw new FsmeshError('corrupt_data', `hnsw graph ${a.object_id} names a missing shard`, {
        object_id: a.object_id,
      });
    // Re-hashed by ranges, then loaded from the stored file itself: no copy of a ~30 MB graph.
    await objects.verify('artifact', a.object_id);
    const g = await HnswGraph.openFile(
      storage,
      a.object_id,
      objectPath('artifact', a.object_id),
      shards[si]!,
    );
    if (g) graphs[si] = g;
  }
  // Every shard either has its rows or a graph to answer from.
  shards.forEach((s, si) =>
    invariant(!s || s.has_rows || graphs[si], `vector shard ${s?.object_id}: no rows, no graph`),
  );
  return { shards, qshards, graphs };
}

/**
 * One fast-tier vector shard, checked against its manifest entry: whole (its hash checked on the
 * bytes read), or by its head after re-hashing the stored file by ranges (`head_only`).
 */
export async function readVectorShard(
  objects: ObjectStore,
  a: VectorArtifact,
  manifest: GenerationManifest,
  opts: { head_only?: boolean } = {},
): Promise<VectorShard> {
  let shard: VectorShard;
  if (opts.head_only) {
    await objects.verify('artifact', a.object_id);
    shard = await VectorShard.openHead(a.object_id, a.size_bytes, (offset, length) =>
      objects.readRange('artifact', a.object_id, offset, length),
    );
  } else shard = VectorShard.open(a.object_id, await objects.get('artifact', a.object_id));
  if (
    shard.dims !== a.dims ||
    shard.count !== a.count ||
    shard.revision_hash !== manifest.embedder.revision_hash ||
    shard.segment_object_id !== a.segment_object_id
  )
    throw corruptEntry(a.object_id, 'vector shard');
  return shard;
}
