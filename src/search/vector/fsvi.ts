/**
 * FSVI vector shard (frankensearch-style; docs/formats.md §fsvi). Little-endian:
 *   header: magic "FSVI" | u16 version=1 | u16 quantization (0 = f32, 1 = f16) | u32 dims | u32 count
 *           | u16 len + embedder id (UTF-8) | u16 len + revision hash (UTF-8)
 *           | 32 B object id of the paired lexical segment (binds the shard to its rows' documents)
 *           | u32 crc32 of the header bytes so far
 *   zero padding to a 64-byte boundary
 *   doc table: count × u32 docnum (row -> document number in the paired lexical segment)
 *   zero padding to a 64-byte boundary
 *   vectors: count × dims, row-major, f16 or f32 (64-byte aligned for fast scans)
 * Integrity of the whole file is its object id (BLAKE3), checked when the artifact is opened (whole,
 * or re-hashed by ranges before openHead reads the header and doc table alone).
 */
import { crc32 } from 'node:zlib';
import { ByteReader, ByteWriter, bytesEqual, fromHex, toHex, utf8 } from '../../core/bytes.ts';
import { FsmeshError, invariant } from '../../core/errors.ts';
import type { Quantization } from '../../core/manifest.ts';

const MAGIC = utf8.encode('FSVI');
export const FSVI_VERSION = 1;

export interface FsviInput {
  dims: number;
  quantization: Quantization;
  embedder_id: string;
  revision_hash: string;
  segment_object_id: string;
  docnums: number[];
  /** Rows in order: an array, or rows made on demand (read once each, in order). */
  vectors: { readonly length: number; at(i: number): Float32Array | undefined };
}

export function encodeFsvi(s: FsviInput): Uint8Array {
  if (s.docnums.length !== s.vectors.length)
    throw new FsmeshError('internal', 'fsvi: docnums and vectors differ in length');
  const w = new ByteWriter(64 + s.vectors.length * s.dims * 4);
  w.bytes(MAGIC);
  w.u16(FSVI_VERSION);
  w.u16(s.quantization === 'f16' ? 1 : 0);
  w.u32(s.dims);
  w.u32(s.vectors.length);
  const id = utf8.encode(s.embedder_id);
  const rev = utf8.encode(s.revision_hash);
  w.u16(id.length);
  w.bytes(id);
  w.u16(rev.length);
  w.bytes(rev);
  w.bytes(fromHex(s.segment_object_id));
  const header = w.finish();
  w.u32(crc32(header));
  w.padTo(64);
  for (const d of s.docnums) w.u32(d);
  w.padTo(64);
  const row = s.quantization === 'f16' ? new Float16Array(s.dims) : new Float32Array(s.dims);
  const rowBytes = new Uint8Array(row.buffer);
  for (let i = 0; i < s.vectors.length; i++) {
    const v = s.vectors.at(i);
    invariant(v !== undefined, `fsvi: row ${i} missing`);
    if (v.length !== s.dims)
      throw new FsmeshError('internal', `fsvi: vector of ${v.length} dims in a ${s.dims}-dim shard`);
    row.set(v);
    w.bytes(rowBytes);
  }
  return w.finish();
}

/** What a shard's header and doc table say: everything but its rows. */
export interface FsviHead {
  object_id: string;
  dims: number;
  count: number;
  quantization: Quantization;
  embedder_id: string;
  revision_hash: string;
  segment_object_id: string;
  docnums: Uint32Array;
}

/** Read by openHead first: a header with two short ids fits (a longer one is read again, whole). */
const HEAD_PROBE_BYTES = 4096;
/** Each id is a u16-length string: the header can never be longer than this. */
const MAX_HEADER_BYTES = 4 + 2 + 2 + 4 + 4 + 2 * (2 + 0xffff) + 32 + 4;

const align64 = (n: number) => Math.ceil(n / 64) * 64;

export class VectorShard {
  readonly object_id: string;
  readonly dims: number;
  readonly count: number;
  readonly quantization: Quantization;
  readonly embedder_id: string;
  readonly revision_hash: string;
  readonly segment_object_id: string;
  readonly docnums: Uint32Array;
  private readonly stored: Float32Array | Float16Array | null;
  private f32: Float32Array | null = null;

  private constructor(o: FsviHead, rows: Float32Array | Float16Array | null) {
    this.object_id = o.object_id;
    this.dims = o.dims;
    this.count = o.count;
    this.quantization = o.quantization;
    this.embedder_id = o.embedder_id;
    this.revision_hash = o.revision_hash;
    this.segment_object_id = o.segment_object_id;
    this.docnums = o.docnums;
    this.stored = rows;
  }

  /**
   * False for a shard opened by its head alone (openHead): a shard answered through its HNSW graph
   * needs only its doc table, so its rows (12.8 MB per 25k f16 rows of 256 dims) stay on disk.
   */
  get has_rows(): boolean {
    return this.stored !== null;
  }

  /** The rows as stored (f16 or f32), a view of the object's bytes. */
  get rows(): Float32Array | Float16Array {
    invariant(this.stored, `vector shard ${this.object_id}: opened by its head, its rows are not read`);
    return this.stored;
  }

  /**
   * The rows as f32, decoded on first use: exact scans and merges need them, a shard answered
   * through its HNSW graph never does (activating a 50k-document generation decoded 2 × 25 MB).
   */
  get vectors(): Float32Array {
    if (!this.f32) {
      const r = this.rows;
      if (r instanceof Float32Array) this.f32 = r;
      else {
        const out = new Float32Array(r.length);
        for (let i = 0; i < r.length; i++) out[i] = r[i];
        this.f32 = out;
      }
    }
    return this.f32;
  }

  static open(objectId: string, bytes: Uint8Array): VectorShard {
    const v = VectorShard.view(objectId, bytes);
    return new VectorShard(v, v.rows);
  }

  /**
   * The header and doc table alone, read by ranges (`read(offset, length)`), checked as open()
   * checks them against the object's size; the rows are not read (has_rows is false). The header
   * has its crc32; the doc table has none: the caller verifies the object's hash first (the
   * graph path re-hashes it by ranges, as it does the graph).
   */
  static async openHead(
    objectId: string,
    size_bytes: number,
    read: (offset: number, length: number) => Promise<Uint8Array>,
  ): Promise<VectorShard> {
    const what = `vector shard ${objectId}`;
    let probe = await read(0, Math.min(size_bytes, HEAD_PROBE_BYTES));
    let head: ReturnType<typeof parseHeader>;
    try {
      head = parseHeader(objectId, probe);
    } catch (err) {
      if (probe.length === size_bytes || (err as FsmeshError).code !== 'corrupt_data') throw err;
      probe = await read(0, Math.min(size_bytes, MAX_HEADER_BYTES));
      head = parseHeader(objectId, probe);
    }
    const docStart = align64(head.header_end);
    const rowsStart = align64(docStart + head.count * 4);
    const elem = head.quantization === 'f16' ? 2 : 4;
    if (rowsStart + head.count * head.dims * elem !== size_bytes)
      throw new FsmeshError(
        'corrupt_data',
        `${what}: ${head.count} rows of ${head.dims} dims do not fill its ${size_bytes} bytes`,
        { object_id: objectId },
      );
    const table = await read(docStart, head.count * 4);
    // The table as read bounds what is allocated: a size the caller got wrong cannot.
    const r = new ByteReader(table, what);
    r.need(head.count * 4);
    const docnums = new Uint32Array(head.count);
    for (let i = 0; i < head.count; i++) docnums[i] = r.u32();
    const { header_end: _end, ...fields } = head;
    return new VectorShard({ ...fields, docnums }, null);
  }

  /**
   * The shard checked as open() checks it, its rows left as stored (f16 or f32, a view of a
   * copy only when `bytes` is misaligned): what a graph build reads row by row, without the
   * f32 copy of every vector.
   */
  static view(objectId: string, bytes: Uint8Array): FsviHead & { rows: Float32Array | Float16Array } {
    const what = `vector shard ${objectId}`;
    const { header_end, ...head } = parseHeader(objectId, bytes);
    const r = new ByteReader(bytes, what, header_end);
    const { count, dims } = head;
    r.align(64);
    r.need(count * 4);
    const docnums = new Uint32Array(count);
    for (let i = 0; i < count; i++) docnums[i] = r.u32();
    r.align(64);
    const elem = head.quantization === 'f16' ? 2 : 4;
    const raw = r.bytes(count * dims * elem);
    if (r.remaining !== 0)
      throw new FsmeshError('corrupt_data', `${what}: trailing bytes`, { object_id: objectId });
    const aligned = raw.byteOffset % elem === 0 ? raw : raw.slice();
    const rows =
      elem === 2
        ? new Float16Array(aligned.buffer, aligned.byteOffset, count * dims)
        : new Float32Array(aligned.buffer, aligned.byteOffset, count * dims);
    return { ...head, docnums, rows };
  }

  /** Exact dot-product scan (vectors are L2-normalised, so dot = cosine). fn(row, score). */
  scan(query: Float32Array, fn: (row: number, score: number) => void): void {
    // The rows as stored: reading f16 elements scans as fast as f32 (6.7 vs 6.4 ms for 25k × 256),
    // and decoding them first cost 25 ms and an f32 copy of the shard. One function per element
    // type keeps each loop monomorphic (a shared one ran both at 12 ms).
    const r = this.f32 ?? this.rows;
    if (r instanceof Float32Array) scanF32(r, this.count, this.dims, query, fn);
    else scanF16(r, this.count, this.dims, query, fn);
  }
}

/** Magic, version, quantization, sizes, ids and the header's crc32, from the file's first bytes. */
function parseHeader(
  objectId: string,
  bytes: Uint8Array,
): Omit<FsviHead, 'docnums'> & { header_end: number } {
  const what = `vector shard ${objectId}`;
  const r = new ByteReader(bytes, what);
  if (!bytesEqual(r.bytes(4), MAGIC))
    throw new FsmeshError('corrupt_data', `${what}: bad magic`, { object_id: objectId });
  const version = r.u16();
  if (version !== FSVI_VERSION)
    throw new FsmeshError('unsupported_version', `${what}: unsupported version ${version}`);
  const q = r.u16();
  if (q > 1)
    throw new FsmeshError('corrupt_data', `${what}: unknown quantization ${q}`, { object_id: objectId });
  const dims = r.u32();
  const count = r.u32();
  const embedder_id = new TextDecoder().decode(r.bytes(r.u16()));
  const revision_hash = new TextDecoder().decode(r.bytes(r.u16()));
  const segment_object_id = toHex(r.bytes(32));
  const headerEnd = r.pos;
  if (crc32(bytes.subarray(0, headerEnd)) !== r.u32())
    throw new FsmeshError('corrupt_data', `${what}: header checksum mismatch`, { object_id: objectId });
  return {
    object_id: objectId,
    dims,
    count,
    quantization: q === 1 ? 'f16' : 'f32',
    embedder_id,
    revision_hash,
    segment_object_id,
    header_end: r.pos,
  };
}

function scanF32(
  v: Float32Array,
  count: number,
  d: number,
  query: Float32Array,
  fn: (row: number, score: number) => void,
): void {
  for (let row = 0, base = 0; row < count; row++, base += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += v[base + j] * query[j];
    fn(row, s);
  }
}

function scanF16(
  v: Float16Array,
  count: number,
  d: number,
  query: Float32Array,
  fn: (row: number, score: number) => void,
): void {
  for (let row = 0, base = 0; row < count; row++, base += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += v[base + j] * query[j];
    fn(row, s);
  }
}
