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
import type { GenerationReader } from './generation-reader.ts';
import { DeleteBitmap } from './lexical/deletes.ts';
import { buildSegment, type IndexedDoc, Segment, SegmentBuilder } from './lexical/segment.ts';
import type { Embedder } from './vector/embedder.ts';
import { encodeFsvi } from './vector/fsvi.ts';

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
  commits: { commit_seq: number; marker_id: ObjectId; capsule: CommitCapsule }[];
  /** Used when the window is empty (generation over no new commits). */
  head_marker_id: ObjectId;
  commit_seq_high: number;
}

export interface BuildOutput {
  manifest: GenerationManifest;
  /** New objects to store (id -> bytes). Parent artifacts are reused, not listed. */
  new_artifacts: Map<ObjectId, Uint8Array>;
}

export type ObjectIdFn = (bytes: Uint8Array) => ObjectId;

export function buildGeneration(input: BuildInput, cfg: BuildConfig, artifactId: ObjectIdFn): BuildOutput {
  const parent = input.parent;
  invariant(!parent || parent.vectors_loaded, 'a build reuses its parent vector shards: load them first');
  const from = parent ? parent.commit_seq_high + 1 : 1;
  invariant(input.commit_seq_high >= from - 1, 'build window must not go backwards');
  for (let i = 0; i < input.commits.length; i++)
    invariant(input.commits[i].commit_seq === from + i, 'build window must be contiguous');
  // 1. Final state per doc within the window (last op wins, in commit order).
  const finalOps = new Map<string, UpsertOp | null>();
  for (const c of input.commits) {
    invariant(c.capsule.shard === cfg.shard, `capsule for shard ${c.capsule.shard} in a ${cfg.shard} build`);
    for (const op of c.capsule.ops) finalOps.set(op.doc_id, op.op === 'upsert' ? op : null);
  }
  // 2. Carry over the parent's segments and deletions, then delete every touched doc.
  const deletes = new DeleteBitmap();
  let segments = parent ? carryParentSegments(parent, deletes, finalOps) : [];
  const newArtifacts = new Map<ObjectId, Uint8Array>();
  // 3. New segment + vector shard for the upserted docs.
  const upserts = [...finalOps.values()].filter((o): o is UpsertOp => o !== null);
  for (const part of splitEvenly(upserts, cfg.segment_max_docs))
    segments.push(
      makeSegment(
        segmentOf(part),
        embedTexts(cfg.embedder, part),
        newArtifacts,
        artifactId,
        cfg.quality_embedder ? embedTexts(cfg.quality_embedder, part) : null,
      ),
    );
  // 4. Merge policy: fold the smallest segments together when there are too many.
  if (segments.length > cfg.max_segments)
    segments = mergeSmallest(segments, deletes, cfg, parent, newArtifacts, artifactId);
  // 5. Artifacts and the manifest.
  const { lexical, doc_count } = lexicalArtifacts(segments, deletes, newArtifacts, artifactId);
  const vector = vectorArtifacts(segments, cfg.embedder, cfg.quantization, 'fast', newArtifacts, artifactId);
  if (cfg.quality_embedder)
    vector.push(
      ...vectorArtifacts(segments, cfg.quality_embedder, 'f16', 'quality', newArtifacts, artifactId),
    );
  const manifest = assembleManifest(input, cfg, { from, lexical, vector, doc_count });
  return { manifest, new_artifacts: newArtifacts };
}

/** The parent's segments (reused as they are) with its deletions, plus every doc this window touches. */
function carryParentSegments(
  parent: GenerationReader,
  deletes: DeleteBitmap,
  finalOps: Map<string, UpsertOp | null>,
): SegEntry[] {
  const segments: SegEntry[] = [];
  parent.segments.forEach((seg, si) => {
    const prevBits = parent.deletes.bySegment.get(seg.object_id);
    if (prevBits)
      deletes.bySegment.set(seg.object_id, { doc_count: prevBits.doc_count, bits: prevBits.bits.slice() });
    const shard = parent.shards[si];
    const va = parent.manifest.vector_artifacts.find(
      (a) => a.role === 'fsvi' && a.segment_object_id === seg.object_id,
    );
    const qshard = parent.qshards[si];
    const qa = parent.manifest.vector_artifacts.find(
      (a) => a.tier === 'quality' && a.segment_object_id === seg.object_id,
    );
    segments.push({
      seg,
      vectors: null,
      qvectors: null,
      docnums: null,
      shardId: shard?.object_id,
      shardBytes: va?.size_bytes,
      qShardId: qshard?.object_id,
      qShardBytes: qa?.size_bytes,
    });
  });
  for (const { seg } of segments) {
    for (const docId of finalOps.keys()) {
      const d = seg.docnumOf(docId);
      if (d >= 0) deletes.mark(seg.object_id, seg.doc_count, d);
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
    docCount += s.seg.doc_count - deletes.deletedCount(s.seg.object_id);
    lexical.push({
      object_id: s.seg.object_id,
      role: 'segment',
      size_bytes: s.seg.bytes.length,
      checksum: crc32Checksum(s.seg.bytes),
      doc_count: s.seg.doc_count,
    });
  }
  const presentSegs = new Set(segments.map((s) => s.seg.object_id));
  for (const id of [...deletes.bySegment.keys()]) if (!presentSegs.has(id)) deletes.bySegment.delete(id);
  const delBytes = deletes.encode(segments.map((s) => s.seg));
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
  e: Embedder,
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
    if (vectors && s.docnums) {
      const bytes = encodeFsvi({
        dims: e.dims,
        quantization,
        embedder_id: e.id,
        revision_hash: e.revision_hash,
        segment_object_id: s.seg.object_id,
        docnums: s.docnums,
        vectors,
      });
      id = artifactId(bytes);
      size = bytes.length;
      newArtifacts.set(id, bytes);
    }
    if (tier === 'quality')
      invariant(id && size !== undefined, `segment ${s.seg.object_id} lacks a quality shard`);
    if (!id || size === undefined) continue;
    out.push({
      object_id: id,
      role: 'fsvi',
      ...(tier === 'quality' ? { tier: 'quality' as const } : {}),
      segment_object_id: s.seg.object_id,
      dims: e.dims,
      quantization,
      count: s.seg.doc_count,
      size_bytes: size,
    });
  }
  return out;
}

/** Every §5.2 item: commit range, embedder identity, artifacts, repair descriptors, invariants. */
function assembleManifest(
  input: BuildInput,
  cfg: BuildConfig,
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

function embedTexts(e: Embedder, docs: { title?: string; text: string }[]): Float32Array[] {
  return e.embed(docs.map((d) => (d.title ? `${d.title}\n${d.text}` : d.text)));
}

interface SegEntry {
  seg: Segment;
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

/** Segment bytes and doc ids (input order) of freshly upserted documents, tokenized as they stream. */
function segmentOf(upserts: UpsertOp[]): { bytes: Uint8Array; docs: { doc_id: string }[] } {
  const b = new SegmentBuilder();
  for (const u of upserts) b.add(u);
  return { bytes: b.finish(), docs: upserts };
}

function makeSegment(
  built: { bytes: Uint8Array; docs: { doc_id: string }[] },
  vectorsInInputOrder: Float32Array[],
  out: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
  qualityInInputOrder: Float32Array[] | null = null,
): SegEntry {
  const { bytes, docs } = built;
  const id = artifactId(bytes);
  out.set(id, bytes);
  const seg = Segment.open(id, bytes);
  // Segment rows are sorted by doc_id: map each input doc's vector to its row.
  const vectors: Float32Array[] = new Array(seg.doc_count);
  docs.forEach((d, i) => {
    vectors[seg.docnumOf(d.doc_id)] = vectorsInInputOrder[i];
  });
  const docnums = vectors.map((_, i) => i);
  let qvectors: Float32Array[] | null = null;
  if (qualityInInputOrder) {
    const qv: Float32Array[] = new Array(seg.doc_count);
    docs.forEach((d, i) => {
      qv[seg.docnumOf(d.doc_id)] = qualityInInputOrder[i];
    });
    qvectors = qv;
  }
  return { seg, vectors, qvectors, docnums };
}

function mergeSmallest(
  segments: SegEntry[],
  deletes: DeleteBitmap,
  cfg: BuildConfig,
  parent: GenerationReader | null,
  out: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
) {
  // Pick the (count - max + 2) smallest by live docs; ties by object id: deterministic.
  const n = segments.length - cfg.max_segments + 2;
  const ranked = segments
    .map((s, i) => ({ s, i, live: s.seg.doc_count - deletes.deletedCount(s.seg.object_id) }))
    .sort((a, b) => a.live - b.live || (a.s.seg.object_id < b.s.seg.object_id ? -1 : 1))
    .slice(0, n);
  const chosen = new Set(ranked.map((r) => r.i));
  const docs: IndexedDoc[] = [];
  const vecs: Float32Array[] = [];
  const qvecs: Float32Array[] = [];
  const quality = !!cfg.quality_embedder;
  for (const { s } of ranked) {
    const segId = s.seg.object_id;
    const live = (d: number) => !deletes.isDeleted(segId, d);
    const rows = s.seg.toIndexedDocs(live);
    docs.push(...rows);
    // Vectors of live docs: from the fresh build, or decoded from the parent's shard.
    const rowVec = new Map<number, Float32Array>();
    if (s.vectors && s.docnums) s.docnums.forEach((d, r) => rowVec.set(d, s.vectors![r]));
    else {
      const si = parent?.segments.findIndex((p) => p.object_id === segId) ?? -1;
      const shard = si >= 0 ? parent!.shards[si] : undefined;
      invariant(shard, `segment ${segId} has no vector shard to merge`);
      for (let r = 0; r < shard.count; r++)
        rowVec.set(shard.docnums[r], shard.vectors.subarray(r * shard.dims, (r + 1) * shard.dims));
    }
    for (let d = 0; d < s.seg.doc_count; d++) if (live(d)) vecs.push(rowVec.get(d)!);
    if (quality) {
      const qRow = new Map<number, Float32Array>();
      if (s.qvectors && s.docnums) s.docnums.forEach((d, r) => qRow.set(d, s.qvectors![r]));
      else {
        const si = parent?.segments.findIndex((p) => p.object_id === segId) ?? -1;
        const qs = si >= 0 ? parent!.qshards[si] : undefined;
        invariant(qs, `segment ${segId} has no quality shard to merge`);
        for (let r = 0; r < qs.count; r++)
          qRow.set(qs.docnums[r], qs.vectors.subarray(r * qs.dims, (r + 1) * qs.dims));
      }
      for (let d = 0; d < s.seg.doc_count; d++) if (live(d)) qvecs.push(qRow.get(d)!);
    }
    deletes.bySegment.delete(segId);
  }
  const merged = makeSegment(
    { bytes: buildSegment(docs), docs },
    vecs,
    out,
    artifactId,
    quality ? qvecs : null,
  );
  const firstIdx = Math.min(...chosen);
  const result: typeof segments = [];
  segments.forEach((s, i) => {
    if (i === firstIdx) result.push(merged);
    if (!chosen.has(i)) result.push(s);
  });
  return result;
}
