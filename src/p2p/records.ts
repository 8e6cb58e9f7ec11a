/**
 * The signed control-plane record of a generation (§8.4): the writer signs
 * `{format, cluster, shard, generation_id, generation_seq, artifact_manifest_id, commit_seq_high, writer}`
 * plus `shards` in a multi-shard collection (canonical JSON) with its ed25519 key. Replicas activate a manifest only when its id equals a
 * record signed by the shard's trusted writer; two different records for one generation are
 * divergence.
 */

import type { PrivateKey } from '@libp2p/interface';
import { fromHex, toHex, utf8 } from '../core/bytes.ts';
import { canonicalBytes } from '../core/canonical-json.ts';
import { FsmeshError } from '../core/errors.ts';
import { isObjectId } from '../core/ids.ts';
import { verifyByPeerId } from './identity.ts';

export interface GenerationRecord {
  format: 1;
  cluster: string;
  shard: string;
  generation_id: string;
  generation_seq: number;
  artifact_manifest_id: string;
  commit_seq_high: number;
  writer: string;
  /** The collection's shard count when it has more than one (fixed for its life; docs/sharding.md). */
  shards?: number;
}

export interface SignedRecord {
  record: GenerationRecord;
  signature: string; // hex
}

export const MAX_RECORD_BYTES = 4096;

export async function signRecord(key: PrivateKey, record: GenerationRecord): Promise<SignedRecord> {
  return { record, signature: toHex(await key.sign(canonicalBytes(record))) };
}

export function encodeSignedRecord(s: SignedRecord): Uint8Array {
  return canonicalBytes(s);
}

/** Parse and structurally check; throws invalid_input naming the problem. Does not check trust. */
export function decodeSignedRecord(bytes: Uint8Array): SignedRecord {
  if (bytes.length > MAX_RECORD_BYTES)
    throw new FsmeshError('invalid_input', `record of ${bytes.length} bytes exceeds ${MAX_RECORD_BYTES}`);
  let s: SignedRecord;
  try {
    s = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new FsmeshError('invalid_input', 'record: not valid UTF-8 JSON');
  }
  const r = s?.record;
  const bad = (m: string) => {
    throw new FsmeshError('invalid_input', `record: ${m}`);
  };
  if (!r || typeof r !== 'object') bad('missing record');
  if (r.format !== 1) bad('format must be 1');
  for (const k of ['cluster', 'shard', 'generation_id', 'writer'] as const)
    if (typeof r[k] !== 'string' || r[k].length === 0 || r[k].length > 128)
      bad(`${k} must be a short string`);
  if (!Number.isSafeInteger(r.generation_seq) || r.generation_seq < 1)
    bad('generation_seq must be a positive integer');
  if (r.generation_id !== `gen-${r.generation_seq}`) bad('generation_id must match generation_seq');
  if (!Number.isSafeInteger(r.commit_seq_high) || r.commit_seq_high < 0)
    bad('commit_seq_high must be a non-negative integer');
  if (!isObjectId(r.artifact_manifest_id)) bad('artifact_manifest_id must be 64 hex characters');
  if (typeof s.signature !== 'string' || !/^[0-9a-f]{128}$/.test(s.signature))
    bad('signature must be 64 bytes of hex');
  if (r.shards !== undefined && (!Number.isSafeInteger(r.shards) || r.shards < 2 || r.shards > 64))
    bad('shards must be an integer from 2 to 64 when present');
  if (Object.keys(r).length !== (r.shards === undefined ? 8 : 9)) bad('unexpected fields');
  return s;
}

export async function verifyRecordSignature(s: SignedRecord): Promise<boolean> {
  return verifyByPeerId(s.record.writer, canonicalBytes(s.record), fromHex(s.signature));
}

export function recordKey(r: GenerationRecord): string {
  return `${r.cluster}/${r.shard}/${r.generation_id}`;
}

export const _utf8 = utf8;
