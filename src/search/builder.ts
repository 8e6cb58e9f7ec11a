/**
 * Generation builder (§6 write path step 3, §8.3): turns the commits since the parent generation
 * into one new segment + vector shard + updated delete bitmap, reusing every unchanged artifact
 * of the parent by object id, so a new generation adds only new objects. A merge policy compacts
 * small segments; merged output is deterministic (sorted docs and terms; f16 round-trips exactly).
 */

import { describeRepair, type RepairParams } from '../codec/repair-descriptor.ts';
import type { CommitCapsule, UpsertOp } from '../core/capsule.ts';
import { crc32Checksum } from '../core/checksum.ts';
import { invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import {
  type GenerationManifest,
  generationIdFor,
  type LexicalArtifact,
  MANIFEST_VERSION,
  type Quantization,
  type VectorArtifact,
} from '../core/manifest.ts';
import {
  buildPart,
  type EmbedderIdentity,
  encodeShard,
  makeSegment,
  type ObjectIdFn,
  type PartResult,
} from './build-part.ts';
import type { GenerationReader } from './generation-reader.ts';
import { DeleteBitmap } from './lexical/deletes.ts';
import { buildSegment, type IndexedDoc, Segment } from './lexical/segment.ts';
import type { Embedder } from './vector/embedder.ts';
import { VectorShard } from './vector/fsvi.ts';

export {
  buildPart,
  type EmbedderIdentity,
  type ObjectIdFn,
  type PartConfig,
  type PartResult,
} from './build-part.ts';

export interface BuildConfig {
  shard: string;
  created_by: string;
  embedder: Embedder;
  quantization: Quantization;
  repair: RepairParams;
  /** Merge when a generation would have more segments than this. */
  max_segments: number;
  /** A window's upserts are cut into segments of at most this many documents (equal sizes). */
  segment_max_docs: number;
  /** Quality-tier (semantic) embedder: each segment also gets a quality shard (TwoTierSearcher). */
  quality_embedder?: Embedder;
}

export interface BuildInput {
  parent: GenerationReader | null;
  /** Parent generation's manifest id, if any (for the lineage). */
  next_generation_seq: number;
  commits: WindowCommit[];
  /** Used when the window is empty (generation over no new commits). */
  head_marker_id: ObjectId;
  commit_seq_high: number;
}

export type WindowCommit = { commit_seq: number; marker_id: ObjectId; capsule: CommitCapsule };

export interface BuildOutput {
  manifest: GenerationManifest;
  /** New objects to store (id -> bytes). Parent artifacts are reused, not listed. */
  new_artifacts: Map<ObjectId, Uint8Array>;
}

/**
 * A build in three steps, so that no step holds the whole window's output (issue 16: bounded
 * ingest memory) and parts can run on different threads:
 *  1. planWindow — the window's final op per document, upserts cut into parts (segments);
 *  2. buildPart — one part's segment and vector shards, stored by the caller, then dropped;
 *  3. assembleGeneration — parent carry-over, deletes, merge policy and the manifest.
 * The bytes are the same as building the window at once: each part is built alone either way.
 */
export interface WindowPlan {
  /** Every document the window touches (upserted or deleted), in first-touch order. */
  touched: string[];
  /** The final upserts in first-touch order, cut into parts of at most segment_max_docs. */
  parts: UpsertOp[][];
}

export function planWindow(
  input: Pick<BuildInput, 'parent' | 'commits' | 'commit_seq_high'>,
  cfg: { shard: string; segment_max_docs: number },
): WindowPlan {
  const parent = input.parent;
  const from = parent ? parent.commit_seq_high + 1 : 1;
  invariant(input.commit_seq_high >= from - 1, 'build window must not go backwards');
  for (let i = 0; i < input.commits.length; i++)
    invariant(input.commits[i].commit_seq === from + i, 'build window must be contiguous');
  // Final state per doc within the window (last op wins, in commit order; first touch fixes order).
  const finalOps = new Map<string, UpsertOp | null>();
  for (const c of input.commits) {
    invariant(c.capsule.shard === cfg.shard, `capsule for shard ${c.capsule.shard} in a ${cfg.shard} build`);
    for (const op of c.capsule.ops) finalOps.set(op.doc_id, op.op === 'upsert' ? op : null);
  }
  const upserts = [...finalOps.values()].filter((o): o is UpsertOp => o !== null);
  return { touched: [...finalOps.keys()], parts: splitEvenly(upserts, cfg.segment_max_docs) };
}

export interface AssembleConfig {
  shard: string;
  created_by: string;
  embedder: EmbedderIdentity;
  quality_embedder?: EmbedderIdentity;
  quantization: Quantization;
  repair: RepairParams;
  max_segments: number;
}

export interface AssembleInput {
  parent: GenerationReader | null;
  next_generation_seq: number;
  touched: string[];
  parts: PartResult[];
  head_marker_id: ObjectId;
  commit_seq_high: number;
}

/** Reads back a part's stored objects (only the merge policy needs them). */
export interface PartLoader {
  segment(id: ObjectId): Promise<Segment>;
  shard(id: ObjectId): Promise<VectorShard>;
}

export async function assembleGeneration(
  input: AssembleInput,
  cfg: AssembleConfig,
  artifactId: ObjectIdFn,
  load: PartLoader,
): Promise<BuildOutput> {
  const parent = input.parent;
  const from = parent ? parent.commit_seq_high + 1 : 1;
  // Carry over the parent's segments and deletions, then delete every touched doc.
  const deletes = new DeleteBitmap();
  let segments = parent ? carryParentSegments(parent, deletes, input.touched) : [];
  const newArtifacts = new Map<ObjectId, Uint8Array>();
  for (const p of input.parts)
    segments.push({
      id: p.segment.object_id,
      doc_count: p.segment.doc_count,
      size_bytes: p.segment.size_bytes,
      checksum: p.segment.checksum,
      seg: null,
      vectors: null,
      qvectors: null,
      docnums: null,
      shardId: p.shard.object_id,
      shardBytes: p.shard.size_bytes,
      qShardId: p.qshard?.object_id,
      qShardBytes: p.qshard?.size_bytes,
    });
  // Merge policy: fold the smallest segments together when there are too many.
  if (segments.length > cfg.max_segments)
    segments = await mergeSmallest(segments, deletes, cfg, parent, newArtifacts, artifactId, load);
  const { lexical, doc_count } = lexicalArtifacts(segments, deletes, newArtifacts, artifactId);
  const vector = vectorArtifacts(segments, cfg.embedder, cfg.quantization, 'fast', newArtifacts, artifactId);
  if (cfg.quality_embedder)
    vector.push(
      ...vectorArtifacts(segments, cfg.quality_embedder, 'f16', 'quality', newArtifacts, artifactId),
    );
  const manifest = assembleManifest(input, cfg, { from, lexical, vector, doc_count });
  return { manifest, new_artifacts: newArtifacts };
}

/** The three steps in memory, every new object in the output (tests; small windows). */
export async function buildGeneration(
  input: BuildInput,
  cfg: BuildConfig,
  artifactId: ObjectIdFn,
): Promise<BuildOutput> {
  const plan = planWindow(input, cfg);
  const made = new Map<ObjectId, Uint8Array>();
  const parts = plan.parts.map((p) => buildPart(p, cfg, made, artifactId));
  const out = await assembleGeneration({ ...input, touched: plan.touched, parts }, cfg, artifactId, {
    segment: async (id) => Segment.open(id, made.get(id)!),
    shard: async (id) => VectorShard.open(id, made.get(id)!),
  });
  for (const [id, b] of made) if (!out.new_artifacts.has(id)) out.new_artifacts.set(id, b);
  return out;
}

/** The parent's segments (reused as they are) with its deletions, plus every doc this window touches. */
function carryParentSegments(parent: GenerationReader, deletes: DeleteBitmap, touched: string[]): SegEntry[] {
  const segments: SegEntry[] = [];
  parent.segments.forEach((seg, si) => {
    const prevBits = parent.deletes.bySegment.get(seg.object_id);
    if (prevBits)
      deletes.bySegment.set(seg.object_id, { doc_count: prevBits.doc_count, bits: prevBits.bits.slice() });
    // Shards are carried by id (the manifest's): a build never needs the parent's vectors in memory.
    const va = parent.manifest.vector_artifacts.find(
      (a) => a.role === 'fsvi' && a.segment_object_id === seg.object_id,
    );
    const qa = parent.manifest.vector_artifacts.find(
      (a) => a.tier === 'quality' && a.segment_object_id === seg.object_id,
    );
    // Size and checksum as the manifest has them: a segment read by ranges has no whole bytes.
    const la = parent.manifest.lexical_artifacts.find((a) => a.object_id === seg.object_id)!;
    segments.push({
      id: seg.object_id,
      doc_count: seg.doc_count,
      size_bytes: la.size_bytes,
      checksum: la.checksum,
      seg,
      vectors: null,
      qvectors: null,
      docnums: null,
      shardId: va?.object_id,
      shardBytes: va?.size_bytes,
      qShardId: qa?.object_id,
      qShardBytes: qa?.size_bytes,
    });
  });
  for (const { seg } of segments) {
    for (const docId of touched) {
      const d = seg!.docnumOf(docId);
      if (d >= 0) deletes.mark(seg!.object_id, seg!.doc_count, d);
    }
  }
  return segments;
}

/** One `segment` artifact per segment, then the generation's `deletes` bitmap. */
function lexicalArtifacts(
  segments: SegEntry[],
  deletes: DeleteBitmap,
  newArtifacts: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
): { lexical: LexicalArtifact[]; doc_count: number } {
  const lexical: LexicalArtifact[] = [];
  let docCount = 0;
  for (const s of segments) {
    docCount += s.doc_count - deletes.deletedCount(s.id);
    lexical.push({
      object_id: s.id,
      role: 'segment',
      size_bytes: s.size_bytes,
      checksum: s.checksum,
      doc_count: s.doc_count,
    });
  }
  const presentSegs = new Set(segments.map((s) => s.id));
  for (const id of [...deletes.bySegment.keys()]) if (!presentSegs.has(id)) deletes.bySegment.delete(id);
  const delBytes = deletes.encode(segments.map((s) => ({ object_id: s.id, doc_count: s.doc_count })));
  const delId = artifactId(delBytes);
  newArtifacts.set(delId, delBytes);
  lexical.push({
    object_id: delId,
    role: 'deletes',
    size_bytes: delBytes.length,
    checksum: crc32Checksum(delBytes),
    doc_count: docCount,
  });
  return { lexical, doc_count: docCount };
}

/**
 * One FSVI shard per segment for a tier: reused from the parent when the segment is, else encoded
 * from the new vectors. The fast tier may lack a shard (an empty segment); the quality tier may not.
 */
function vectorArtifacts(
  segments: SegEntry[],
  e: EmbedderIdentity,
  quantization: 'f16' | 'f32',
  tier: 'fast' | 'quality',
  newArtifacts: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
): VectorArtifact[] {
  const out: VectorArtifact[] = [];
  for (const s of segments) {
    let id = tier === 'fast' ? s.shardId : s.qShardId;
    let size = tier === 'fast' ? s.shardBytes : s.qShardBytes;
    const vectors = tier === 'fast' ? s.vectors : s.qvectors;
    // A merged segment's vectors are in memory; every other segment's shard is stored already.
    if (vectors && s.docnums) {
      const made = encodeShard(s.seg!, vectors, s.docnums, e, quantization, newArtifacts, artifactId);
      id = made.object_id;
      size = made.size_bytes;
    }
    if (tier === 'quality') invariant(id && size !== undefined, `segment ${s.id} lacks a quality shard`);
    if (!id || size === undefined) continue;
    out.push({
      object_id: id,
      role: 'fsvi',
      ...(tier === 'quality' ? { tier: 'quality' as const } : {}),
      segment_object_id: s.id,
      dims: e.dims,
      quantization,
      count: s.doc_count,
      size_bytes: size,
    });
  }
  return out;
}

/** Every §5.2 item: commit range, embedder identity, artifacts, repair descriptors, invariants. */
function assembleManifest(
  input: Pick<AssembleInput, 'parent' | 'next_generation_seq' | 'commit_seq_high' | 'head_marker_id'>,
  cfg: AssembleConfig,
  a: { from: number; lexical: LexicalArtifact[]; vector: VectorArtifact[]; doc_count: number },
): GenerationManifest {
  const parent = input.parent;
  const parentId = parent ? parent.generation_id : null;
  const seq = input.next_generation_seq;
  const sizeOf = (id: ObjectId): number =>
    a.lexical.find((x) => x.object_id === id)?.size_bytes ??
    a.vector.find((x) => x.object_id === id)!.size_bytes;
  return {
    manifest_version: MANIFEST_VERSION,
    shard: cfg.shard,
    generation_id: generationIdFor(seq),
    generation_seq: seq,
    parent_generation_id: parentId,
    created_by: cfg.created_by,
    commit_range: { from_commit_seq: a.from, to_commit_seq: input.commit_seq_high },
    commit_seq_high: input.commit_seq_high,
    head_marker_id: input.head_marker_id,
    doc_count: a.doc_count,
    embedder: { id: cfg.embedder.id, revision_hash: cfg.embedder.revision_hash, dims: cfg.embedder.dims },
    ...(cfg.quality_embedder
      ? {
          quality_embedder: {
            id: cfg.quality_embedder.id,
            revision_hash: cfg.quality_embedder.revision_hash,
            dims: cfg.quality_embedder.dims,
          },
        }
      : {}),
    vector_artifacts: a.vector,
    lexical_artifacts: a.lexical,
    repair: {
      symbol_size: cfg.repair.symbol_size,
      overhead_ratio: cfg.repair.overhead_ratio,
      descriptors: [...a.lexical, ...a.vector].map((x) =>
        describeRepair(x.object_id, sizeOf(x.object_id), cfg.repair),
      ),
    },
    activation_invariants: {
      require_all_artifacts: true,
      require_embedder_revision: cfg.embedder.revision_hash,
      min_commit_seq_high: parent ? parent.commit_seq_high : 0,
      require_parent_generation_id: parentId,
    },
  };
}

interface SegEntry {
  id: ObjectId;
  doc_count: number;
  size_bytes: number;
  checksum: string;
  /** In memory for the parent's and a merged segment; a new part's is read back only to merge. */
  seg: Segment | null;
  vectors: Float32Array[] | null;
  qvectors: Float32Array[] | null;
  docnums: number[] | null;
  shardId?: ObjectId;
  shardBytes?: number;
  qShardId?: ObjectId;
  qShardBytes?: number;
}

/** `items` in order, cut into the fewest parts of at most `max` items, of equal sizes (±1). */
export function splitEvenly<T>(items: T[], max: number): T[][] {
  invariant(max >= 1, 'segment_max_docs must be at least 1');
  if (items.length === 0) return [];
  const parts = Math.ceil(items.length / max);
  const out: T[][] = [];
  for (let p = 0; p < parts; p++)
    out.push(
      items.slice(Math.floor((p * items.length) / parts), Math.floor(((p + 1) * items.length) / parts)),
    );
  return out;
}

async function mergeSmallest(
  segments: SegEntry[],
  deletes: DeleteBitmap,
  cfg: AssembleConfig,
  parent: GenerationReader | null,
  out: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
  load: PartLoader,
): Promise<SegEntry[]> {
  // Pick the (count - max + 2) smallest by live docs; ties by object id: deterministic.
  const n = segments.length - cfg.max_segments + 2;
  const ranked = segments
    .map((s, i) => ({ s, i, live: s.doc_count - deletes.deletedCount(s.id) }))
    .sort((a, b) => a.live - b.live || (a.s.id < b.s.id ? -1 : 1))
    .slice(0, n);
  const chosen = new Set(ranked.map((r) => r.i));
  const docs: IndexedDoc[] = [];
  const vecs: Float32Array[] = [];
  const qvecs: Float32Array[] = [];
  const quality = !!cfg.quality_embedder;
  for (const { s } of ranked) {
    const segId = s.id;
    const live = (d: number) => !deletes.isDeleted(segId, d); // a merge reads every posting: whole
    const seg = s.seg && !s.seg.is_ranged ? s.seg : await load.segment(segId);
    docs.push(...seg.toIndexedDocs(live));
    // Live docs' vectors, the parent's or a new part's (f16 → f32 → f16 is exact: the same bytes).
    const si = parent?.segments.findIndex((p) => p.object_id === segId) ?? -1;
    const held = si >= 0 ? parent!.shards[si] : undefined; // unread, or without rows (graph-answered)
    const shard = held?.has_rows ? held : s.shardId ? await load.shard(s.shardId) : undefined;
    invariant(shard, `segment ${segId} has no vector shard to merge`);
    for (const v of liveRows(shard, seg.doc_count, live)) vecs.push(v);
    if (quality) {
      const qheld = si >= 0 ? parent!.qshards[si] : undefined;
      const qs = qheld ?? (s.qShardId ? await load.shard(s.qShardId) : undefined);
      invariant(qs, `segment ${segId} has no quality shard to merge`);
      for (const v of liveRows(qs, seg.doc_count, live)) qvecs.push(v);
    }
    deletes.bySegment.delete(segId);
  }
  const m = makeSegment({ bytes: buildSegment(docs), docs }, vecs, out, artifactId, quality ? qvecs : null);
  const merged: SegEntry = {
    ...m,
    id: m.seg.object_id,
    doc_count: m.seg.doc_count,
    size_bytes: m.seg.bytes.length,
    checksum: crc32Checksum(m.seg.bytes),
  };
  const firstIdx = Math.min(...chosen);
  const result: SegEntry[] = [];
  segments.forEach((s, i) => {
    if (i === firstIdx) result.push(merged);
    if (!chosen.has(i)) result.push(s);
  });
  return result;
}

/** A shard's vectors of the live docs of its segment, in docnum order. */
function liveRows(shard: VectorShard, docCount: number, live: (d: number) => boolean): Float32Array[] {
  const byDoc: (Float32Array | undefined)[] = new Array(docCount);
  for (let r = 0; r < shard.count; r++)
    byDoc[shard.docnums[r]] = shard.vectors.subarray(r * shard.dims, (r + 1) * shard.dims);
  const out: Float32Array[] = [];
  for (let d = 0; d < docCount; d++) if (live(d)) out.push(byDoc[d]!);
  return out;
}
