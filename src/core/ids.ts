/**
 * ObjectId = BLAKE3(domain_tag || exact bytes), 32 bytes, hex in JSON (§3, §5.1).
 * The domain tag separates object kinds so a capsule can never be confused with a manifest
 * whose bytes happen to match.
 */
import { createRequire } from 'node:module';
import { blake3 as blake3Js } from '@noble/hashes/blake3.js';
import { concatBytes, toHex, utf8 } from './bytes.ts';

/**
 * BLAKE3 backend: the prebuilt napi-rs binary (several GB/s) where it exists for this platform,
 * else @noble/hashes (pure JS, same digests, slower). The `@napi-rs/blake-hash` umbrella package
 * cannot be used: its optional per-platform packages name versions missing from the registry, which
 * makes `npm ci` refuse the lock file (see docs/dependencies.md).
 */
type Blake3Fn = (input: Uint8Array) => Uint8Array;
/** BLAKE3 of the concatenation of `parts`, without copying them into one buffer. */
type Blake3PartsFn = (parts: Uint8Array[]) => Uint8Array;
type Blake3Incremental = () => { update(b: Uint8Array): void; digest(): Uint8Array };
interface NativeBlake3 {
  blake3(input: Uint8Array): Uint8Array;
  Blake3Hasher: new () => { update(b: Uint8Array): unknown; digestBuffer(): Uint8Array };
}
function loadBlake3(): { fn: Blake3Fn; parts: Blake3PartsFn; create: Blake3Incremental; backend: string } {
  const require = createRequire(import.meta.url);
  for (const pkg of [
    `@napi-rs/blake-hash-${process.platform}-${process.arch}-gnu`,
    `@napi-rs/blake-hash-${process.platform}-${process.arch}-musl`,
  ]) {
    try {
      const native = require(pkg) as NativeBlake3;
      const create: Blake3Incremental = () => {
        const h = new native.Blake3Hasher();
        return { update: (b) => void h.update(b), digest: () => h.digestBuffer() };
      };
      const parts: Blake3PartsFn = (ps) => {
        const h = create();
        for (const p of ps) h.update(p);
        return h.digest();
      };
      return { fn: (b) => native.blake3(b), parts, create, backend: pkg };
    } catch {
      // not installed for this platform: try the next
    }
  }
  const create: Blake3Incremental = () => {
    const h = blake3Js.create();
    return { update: (b) => void h.update(b), digest: () => h.digest() };
  };
  const parts: Blake3PartsFn = (ps) => {
    const h = create();
    for (const p of ps) h.update(p);
    return h.digest();
  };
  return { fn: (b) => blake3Js(b), parts, create, backend: '@noble/hashes' };
}
const BLAKE3 = loadBlake3();
export const BLAKE3_BACKEND = BLAKE3.backend;
const blake3 = BLAKE3.fn;
/** Past this size an object is hashed as tag + bytes in place: copying it into one buffer cost more. */
const HASH_IN_PLACE_BYTES = 64 << 10;

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
  const d = blake3(bytes);
  return d instanceof Buffer ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : d;
}

export function objectIdOf(kind: ObjectKind, bytes: Uint8Array): ObjectId {
  if (bytes.length >= HASH_IN_PLACE_BYTES) return toHex(BLAKE3.parts([TAGS[kind], bytes]));
  return toHex(blake3(concatBytes([TAGS[kind], bytes])));
}

export interface ObjectIdHasher {
  update(b: Uint8Array): void;
  digest(): ObjectId;
}

/** An object id over bytes fed in pieces (a file read by ranges): the same id as objectIdOf. */
export function objectIdHasher(kind: ObjectKind): ObjectIdHasher {
  const h = BLAKE3.create();
  h.update(TAGS[kind]);
  return { update: (b) => h.update(b), digest: () => toHex(h.digest()) };
}

const ID_RE = /^[0-9a-f]{64}$/;
export function isObjectId(s: unknown): s is ObjectId {
  return typeof s === 'string' && ID_RE.test(s);
}

export const ZERO_ID: ObjectId = '0'.repeat(64);
