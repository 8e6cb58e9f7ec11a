/**
 * ObjectId = BLAKE3(domain_tag || exact bytes), 32 bytes, hex in JSON (§3, §5.1).
 * The domain tag separates object kinds so a capsule can never be confused with a manifest
 * whose bytes happen to match.
 */
import { blake3 } from '@napi-rs/blake-hash';
import { concatBytes, toHex, utf8 } from './bytes.ts';

export type ObjectId = string; // 64 lowercase hex chars

export const OBJECT_KINDS = ['capsule', 'marker', 'manifest', 'artifact', 'log_segment'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

const TAGS: Record<ObjectKind, Uint8Array> = Object.fromEntries(
  OBJECT_KINDS.map((k) => [k, utf8.encode(`fsmesh/${k}/v1\0`)]),
) as Record<ObjectKind, Uint8Array>;

export function domainTag(kind: ObjectKind): Uint8Array {
  return TAGS[kind];
}

/** Raw BLAKE3 digest of bytes (no domain tag): checksums and benchmarks. */
export function blake3Hex(bytes: Uint8Array): string {
  return toHex(blake3(bytes));
}

export function blake3Bytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(blake3(bytes));
}

export function objectIdOf(kind: ObjectKind, bytes: Uint8Array): ObjectId {
  return toHex(blake3(concatBytes([TAGS[kind], bytes])));
}

const ID_RE = /^[0-9a-f]{64}$/;
export function isObjectId(s: unknown): s is ObjectId {
  return typeof s === 'string' && ID_RE.test(s);
}

export const ZERO_ID: ObjectId = '0'.repeat(64);
