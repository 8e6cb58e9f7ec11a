/**
 * The capsule log's bytes (docs/formats.md §capsule log), as pure functions:
 *   segment header (24 B): magic "FSMLOG\r\n" | u32 format_version=1 | u32 reserved=0 | u64 first_commit_seq
 *   record:               u32 body_len | u32 crc32(body) | body = marker (80 B) || capsule bytes
 * `scanSegment` checks every record of a segment (crc, marker, commit_id = BLAKE3(capsule),
 * contiguous commit_seq, prev_marker_id links) and tells a torn tail from corruption.
 */
import { crc32 } from 'node:zlib';
import { ByteReader, ByteWriter, bytesEqual, concatBytes } from '../core/bytes.ts';
import { commitIdOf, decodeCapsule } from '../core/capsule.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import { type CommitMarker, decodeMarker, encodeMarker, MARKER_BYTES, markerIdOf } from '../core/marker.ts';

export const LOG_FORMAT_VERSION = 1;
export const MAGIC = new Uint8Array([0x46, 0x53, 0x4d, 0x4c, 0x4f, 0x47, 0x0d, 0x0a]); // "FSMLOG\r\n"
export const LOG_HEADER_BYTES = 24;
export const RECORD_HEADER_BYTES = 8;
export const MAX_RECORD_BODY_BYTES = 256 << 20;

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}.log`;
}

export function encodeRecord(marker: CommitMarker, capsuleBytes: Uint8Array): Uint8Array {
  const body = concatBytes([encodeMarker(marker), capsuleBytes]);
  const w = new ByteWriter(body.length + RECORD_HEADER_BYTES);
  w.u32(body.length);
  w.u32(crc32(body));
  w.bytes(body);
  return w.finish();
}

export function encodeHeader(firstSeq: number): Uint8Array {
  const w = new ByteWriter(LOG_HEADER_BYTES);
  w.bytes(MAGIC);
  w.u32(LOG_FORMAT_VERSION);
  w.u32(0);
  w.u64(firstSeq);
  return w.finish();
}

export interface ScannedRecord {
  offset: number;
  body_len: number;
  marker_id: ObjectId;
  commit_id: ObjectId;
  idempotency_key?: string;
}

/** The header's first commit_seq must continue the history exactly. */
function checkHeader(bytes: Uint8Array, path: string, expectSeq: number): void {
  if (bytes.length < LOG_HEADER_BYTES)
    throw new FsmeshError('corrupt_data', `capsule log ${path}: header truncated (${bytes.length} bytes)`, {
      file: path,
      offset: 0,
    });
  const hr = new ByteReader(bytes, path);
  if (!bytesEqual(hr.bytes(8), MAGIC))
    throw new FsmeshError('corrupt_data', `capsule log ${path}: bad magic at offset 0`, {
      file: path,
      offset: 0,
    });
  const version = hr.u32();
  if (version > LOG_FORMAT_VERSION) {
    throw new FsmeshError(
      'unsupported_version',
      `capsule log ${path} was written by a newer fsmesh (format ${version}; this build reads ${LOG_FORMAT_VERSION})`,
    );
  }
  hr.u32();
  const firstSeq = hr.u64();
  if (firstSeq !== expectSeq) {
    throw new FsmeshError(
      'corrupt_data',
      `capsule log ${path}: starts at commit_seq ${firstSeq}, expected ${expectSeq} (gap in history)`,
      { file: path, offset: 16 },
    );
  }
}

/**
 * Every valid record of one segment, in order. A damaged record that reaches the end of the last
 * segment is a torn tail (a crash mid-append, never acknowledged) and is reported to be cut; damage
 * followed by more bytes is corruption: an error naming file, offset and commit_seq.
 */
export function scanSegment(
  bytes: Uint8Array,
  path: string,
  isLast: boolean,
  expectSeq: number,
  prev: ObjectId,
  /**
   * `full` (verify): every capsule is decoded and validated too. `integrity` (opening the log):
   * checksum, marker chain and commit id only — the bytes are then exactly those validated when
   * they were appended, and decoding every capsule made opening a 50k-document log cost ~0.6 s.
   */
  depth: 'full' | 'integrity' = 'full',
): { records: ScannedRecord[]; torn?: { offset: number; size_bytes: number; reason: string } } {
  checkHeader(bytes, path, expectSeq);
  const records: ScannedRecord[] = [];
  let off = LOG_HEADER_BYTES;
  while (off < bytes.length) {
    const seq = expectSeq + records.length;
    const r = checkRecord(bytes, off, seq, prev, depth);
    if (typeof r === 'string') {
      const recordEnd =
        bytes.length >= off + RECORD_HEADER_BYTES
          ? off + RECORD_HEADER_BYTES + new DataView(bytes.buffer, bytes.byteOffset).getUint32(off, true)
          : Number.POSITIVE_INFINITY;
      if (!(isLast && recordEnd >= bytes.length)) {
        throw new FsmeshError(
          'corrupt_data',
          `capsule log ${path}: corrupt record at offset ${off} (commit_seq ${seq}): ${r}`,
          { file: path, offset: off, commit_seq: seq },
        );
      }
      return { records, torn: { offset: off, size_bytes: bytes.length - off, reason: r } };
    }
    records.push({ offset: off, ...r });
    prev = r.marker_id;
    const next = off + RECORD_HEADER_BYTES + r.body_len;
    invariant(next > off && next <= bytes.length, 'a valid record lies inside its segment');
    off = next;
  }
  return { records };
}

export function checkRecord(
  bytes: Uint8Array,
  off: number,
  expectSeq: number,
  prev: ObjectId,
  depth: 'full' | 'integrity' = 'full',
): string | { body_len: number; marker_id: ObjectId; commit_id: ObjectId; idempotency_key?: string } {
  if (bytes.length - off < RECORD_HEADER_BYTES) return 'record header truncated';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = dv.getUint32(off, true);
  const crc = dv.getUint32(off + 4, true);
  if (len < MARKER_BYTES || len > MAX_RECORD_BODY_BYTES) return `implausible body length ${len}`;
  if (off + RECORD_HEADER_BYTES + len > bytes.length) return 'record body truncated';
  const body = bytes.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len);
  if (crc32(body) !== crc) return 'checksum mismatch';
  let marker: CommitMarker;
  let idempotencyKey: string | undefined;
  try {
    marker = decodeMarker(body.subarray(0, MARKER_BYTES));
    const capsuleBytes = body.subarray(MARKER_BYTES);
    idempotencyKey =
      depth === 'full' || mayHoldIdempotencyKey(capsuleBytes)
        ? decodeCapsule(capsuleBytes).idempotency_key
        : undefined;
  } catch (err) {
    return (err as Error).message;
  }
  if (marker.commit_seq !== expectSeq)
    return `commit_seq ${marker.commit_seq} where ${expectSeq} was expected`;
  if (marker.prev_marker_id !== prev) return 'prev_marker_id does not link to the previous marker';
  const commitId = commitIdOf(body.subarray(MARKER_BYTES));
  if (commitId !== marker.commit_id) return 'commit_id does not match the capsule bytes';
  return {
    body_len: len,
    marker_id: markerIdOf(marker),
    commit_id: commitId,
    idempotency_key: idempotencyKey,
  };
}

const KEY_NEEDLE = Buffer.from('idempotency_key"');
const ESCAPE_NEEDLE = Buffer.from('\\u');

/**
 * False only when the capsule cannot have an idempotency key member, in any JSON spelling: the
 * name is letters and `_`, so it is either written plainly — `idempotency_key"`, which never occurs
 * inside a JSON string (a quote there is escaped) — or with `\u` escapes. Neither present: no key.
 * Otherwise (the key, a field or text of that name, an escape) the capsule is decoded to be sure.
 */
function mayHoldIdempotencyKey(capsuleBytes: Uint8Array): boolean {
  const b = Buffer.from(capsuleBytes.buffer, capsuleBytes.byteOffset, capsuleBytes.byteLength);
  return b.indexOf(KEY_NEEDLE) >= 0 || b.indexOf(ESCAPE_NEEDLE) >= 0;
}
