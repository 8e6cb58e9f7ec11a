/**
 * Document placement in a multi-shard collection (docs/sharding.md): a document belongs to shard
 * `u64le(BLAKE3("fsmesh/shard/v1\0" ‖ utf8(doc_id))[0..8]) mod S`. Stable forever for a given S
 * (the shard count is fixed for a cluster's life), independent of the platform and of insertion
 * order, and uniform enough that S shards hold about the same number of documents.
 */

import { utf8 } from './bytes.ts';
import type { DocOp } from './capsule.ts';
import { FsmeshError, invariant } from './errors.ts';
import { blake3Bytes } from './ids.ts';

/** Most shards a collection may have (bounds every per-shard structure, label and request). */
export const MAX_SHARDS = 64;

const TAG = utf8.encode('fsmesh/shard/v1\0');

/** The shard of a document id among `shards` shards. */
export function shardOf(docId: string, shards: number): number {
  invariant(Number.isSafeInteger(shards) && shards >= 1 && shards <= MAX_SHARDS, `shard count ${shards}`);
  if (shards === 1) return 0;
  const id = utf8.encode(docId);
  const buf = new Uint8Array(TAG.length + id.length);
  buf.set(TAG);
  buf.set(id, TAG.length);
  const d = blake3Bytes(buf);
  const v = new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, true);
  return Number(v % BigInt(shards));
}

/** The name a shard has in manifests, records, topics and answers: its number in decimal. */
export function shardName(k: number): string {
  return String(k);
}

/** `--shards S` / a config value: an integer from 1 to MAX_SHARDS, or an error naming `what`. */
export function checkShardCount(s: unknown, what = 'shards'): number {
  if (!Number.isSafeInteger(s) || (s as number) < 1 || (s as number) > MAX_SHARDS)
    throw new FsmeshError('invalid_input', `${what}: must be an integer from 1 to ${MAX_SHARDS}, got ${s}`);
  return s as number;
}

/** A shard number given by a user (`--writer-of K`, a snapshot key): 0..S-1, or an error. */
export function checkShardIndex(k: unknown, shards: number, what: string): number {
  const n = typeof k === 'string' && /^\d{1,2}$/.test(k) ? Number(k) : k;
  if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) >= shards)
    throw new FsmeshError(
      'invalid_input',
      `${what}: a shard number from 0 to ${shards - 1}, got ${JSON.stringify(k)}`,
    );
  return n as number;
}

/**
 * Split ops by shard, keeping each shard's ops in their batch order (a later op on the same
 * document still wins). Shards with no ops are absent.
 */
export function splitOpsByShard(ops: DocOp[], shards: number): Map<number, DocOp[]> {
  const out = new Map<number, DocOp[]>();
  for (const op of ops) {
    const k = shardOf(op.doc_id, shards);
    let part = out.get(k);
    if (!part) {
      part = [];
      out.set(k, part);
    }
    part.push(op);
  }
  return new Map([...out.entries()].sort((a, b) => a[0] - b[0]));
}
