/**
 * One part of a build window (src/search/builder.ts): its segment, the embeddings of its
 * documents and their FSVI shards. A part is built alone — on a compute thread, or inline one
 * after the other — and its objects are stored and dropped before the next (bounded memory).
 */
import type { UpsertOp } from '../core/capsule.ts';
import { crc32Checksum } from '../core/checksum.ts';
import { invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import type { Quantization } from '../core/manifest.ts';
import { Segment, SegmentBuilder } from './lexical/segment.ts';
import type { Embedder } from './vector/embedder.ts';
import { encodeFsvi } from './vector/fsvi.ts';

export type ObjectIdFn = (bytes: Uint8Array) => ObjectId;

/** The embedder a manifest names (a part needs the embedder itself; assembling only its identity). */
export type EmbedderIdentity = Pick<Embedder, 'id' | 'revision_hash' | 'dims'>;

/** A part's objects: its segment and vector shards (the quality one with a quality embedder). */
export interface PartResult {
  segment: { object_id: ObjectId; size_bytes: number; checksum: string; doc_count: number };
  shard: { object_id: ObjectId; size_bytes: number };
  qshard?: { object_id: ObjectId; size_bytes: number };
}

export interface PartConfig {
  embedder: Embedder;
  quality_embedder?: Embedder;
  quantization: Quantization;
}

/** One part's segment, embeddings and shards; `out` receives the new objects. */
export function buildPart(
  part: UpsertOp[],
  cfg: PartConfig,
  out: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
): PartResult {
  invariant(part.length > 0, 'a part has documents');
  const built = segmentOf(part);
  const id = artifactId(built.bytes);
  out.set(id, built.bytes);
  const seg = Segment.open(id, built.bytes);
  // Rows are sorted by doc_id: each row's input document.
  const inputOfRow = new Int32Array(seg.doc_count).fill(-1);
  part.forEach((d, i) => {
    inputOfRow[seg.docnumOf(d.doc_id)] = i;
  });
  invariant(!inputOfRow.includes(-1), 'every row of a part has its document');
  const docnums = Array.from({ length: seg.doc_count }, (_, i) => i);
  // Embedded in row order a chunk at a time, straight into the shard: a part's vectors are never
  // all in memory (25k rows × 256 dims were 25 MB of f32 besides the shard).
  const rows = (e: Embedder) => embeddedRows(e, seg.doc_count, (r) => textOf(part[inputOfRow[r]]));
  const shard = encodeShard(
    seg,
    rows(cfg.embedder),
    docnums,
    cfg.embedder,
    cfg.quantization,
    out,
    artifactId,
  );
  const qshard = cfg.quality_embedder
    ? encodeShard(seg, rows(cfg.quality_embedder), docnums, cfg.quality_embedder, 'f16', out, artifactId)
    : undefined;
  return {
    segment: {
      object_id: seg.object_id,
      size_bytes: seg.bytes.length,
      checksum: crc32Checksum(seg.bytes),
      doc_count: seg.doc_count,
    },
    shard,
    ...(qshard ? { qshard } : {}),
  };
}

/** Rows a shard encoder reads in order (an array, or embeddings made a chunk at a time). */
export type ShardRows = { readonly length: number; at(row: number): Float32Array | undefined };

const EMBED_CHUNK_ROWS = 256;

/** `count` rows embedded in row order, EMBED_CHUNK_ROWS texts per embedder call. */
function embeddedRows(e: Embedder, count: number, text: (row: number) => string): ShardRows {
  let from = -1;
  let chunk: Float32Array[] = [];
  return {
    length: count,
    at(row) {
      if (row < from || row >= from + chunk.length) {
        from = row;
        const texts: string[] = [];
        for (let r = row; r < Math.min(count, row + EMBED_CHUNK_ROWS); r++) texts.push(text(r));
        chunk = e.embed(texts);
      }
      return chunk[row - from];
    },
  };
}

const textOf = (d: { title?: string; text: string }) => (d.title ? `${d.title}\n${d.text}` : d.text);

/** One FSVI shard of a segment's vectors (rows in segment order); `out` receives it. */
export function encodeShard(
  seg: Segment,
  vectors: ShardRows,
  docnums: number[],
  e: EmbedderIdentity,
  quantization: Quantization,
  out: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
): { object_id: ObjectId; size_bytes: number } {
  const bytes = encodeFsvi({
    dims: e.dims,
    quantization,
    embedder_id: e.id,
    revision_hash: e.revision_hash,
    segment_object_id: seg.object_id,
    docnums,
    vectors,
  });
  const id = artifactId(bytes);
  out.set(id, bytes);
  return { object_id: id, size_bytes: bytes.length };
}

/** Segment bytes and doc ids (input order) of freshly upserted documents, tokenized as they stream. */
function segmentOf(upserts: UpsertOp[]): { bytes: Uint8Array; docs: { doc_id: string }[] } {
  const b = new SegmentBuilder();
  for (const u of upserts) b.add(u);
  return { bytes: b.finish(), docs: upserts };
}

export function makeSegment(
  built: { bytes: Uint8Array; docs: { doc_id: string }[] },
  vectorsInInputOrder: Float32Array[],
  out: Map<ObjectId, Uint8Array>,
  artifactId: ObjectIdFn,
  qualityInInputOrder: Float32Array[] | null = null,
): SegmentWithVectors {
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

/** A segment with its vectors in row order (a fresh part, or a merge's output). */
export interface SegmentWithVectors {
  seg: Segment;
  vectors: Float32Array[];
  qvectors: Float32Array[] | null;
  docnums: number[];
}
