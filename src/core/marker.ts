/**
 * Commit marker (§5.1): puts a capsule in order. Markers form a hash chain, so commit_seq is
 * gap-free per shard and the chain proves the history. Fixed 80-byte binary encoding:
 *   u8 version=1 | 7 bytes zero | u64 commit_seq | 32 B commit_id | 32 B prev_marker_id
 * marker_id = BLAKE3("fsmesh/marker/v1\0" || those 80 bytes). Genesis prev_marker_id = 32 zero bytes.
 */
import { ByteReader, ByteWriter, fromHex, toHex } from './bytes.ts';
import { FsmeshError } from './errors.ts';
import { type ObjectId, objectIdOf, ZERO_ID } from './ids.ts';

export const MARKER_VERSION = 1;
export const MARKER_BYTES = 80;

export interface CommitMarker {
  commit_seq: number;
  commit_id: ObjectId;
  prev_marker_id: ObjectId;
}

export function encodeMarker(m: CommitMarker): Uint8Array {
  if (!Number.isSafeInteger(m.commit_seq) || m.commit_seq < 1) {
    throw new FsmeshError(
      'invalid_input',
      `marker: commit_seq must be a positive integer, got ${m.commit_seq}`,
    );
  }
  const w = new ByteWriter(MARKER_BYTES);
  w.u8(MARKER_VERSION);
  for (let i = 0; i < 7; i++) w.u8(0);
  w.u64(m.commit_seq);
  w.bytes(fromHex(m.commit_id));
  w.bytes(fromHex(m.prev_marker_id));
  return w.finish();
}

export function decodeMarker(b: Uint8Array): CommitMarker {
  if (b.length !== MARKER_BYTES)
    throw new FsmeshError('corrupt_data', `marker: expected ${MARKER_BYTES} bytes, got ${b.length}`);
  const r = new ByteReader(b, 'marker');
  const v = r.u8();
  if (v !== MARKER_VERSION) throw new FsmeshError('unsupported_version', `marker: unsupported version ${v}`);
  r.bytes(7);
  const commit_seq = r.u64();
  return { commit_seq, commit_id: toHex(r.bytes(32)), prev_marker_id: toHex(r.bytes(32)) };
}

export function markerIdOf(m: CommitMarker): ObjectId {
  return objectIdOf('marker', encodeMarker(m));
}

export const GENESIS_MARKER_ID = ZERO_ID;
