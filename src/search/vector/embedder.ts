/**
 * Embedders (§3, §13): `id`, `revision_hash` (pinned in manifests; activation is gated on it),
 * `dims`, `embed(texts)`. The hashed embedder is honest about what it is: lexical feature
 * hashing (tokens + character trigrams), fast and download-free, not semantic.
 */

import { utf8 } from '../../core/bytes.ts';
import { blake3Hex } from '../../core/ids.ts';
import { canonicalize, tokenize } from '../text.ts';

export interface Embedder {
  readonly id: string;
  readonly revision_hash: string;
  readonly dims: number;
  /** L2-normalised vectors, one per text. */
  embed(texts: string[]): Float32Array[];
  /**
   * How a worker thread rebuilds this very embedder (src/runtime/compute.ts). An embedder without
   * one (a user's own) makes builds run on the caller's thread.
   */
  readonly spec?: EmbedderSpec;
}

/** A structured-cloneable description of an embedder; `revision_hash` names what it must rebuild. */
export type EmbedderSpec =
  | { kind: 'hashed'; dims: number; revision_hash: string }
  /** The table sits in shared memory, so sending the spec to a thread copies nothing. */
  | { kind: 'static'; table: Uint8Array; revision_hash: string };

/** FNV-1a 32-bit over a string's UTF-16 code units: cheap and stable across machines. */
function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const TRIGRAM_BASIS = (0x811c9dc5 ^ 0x9e3779b9) >>> 0;

export function l2normalize(v: Float32Array): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  if (n > 0) {
    const inv = 1 / Math.sqrt(n);
    for (let i = 0; i < v.length; i++) v[i] *= inv;
  }
  return v;
}

export class HashedEmbedder implements Embedder {
  readonly id: string;
  readonly revision_hash: string;
  readonly dims: number;

  constructor(dims = 256) {
    this.dims = dims;
    this.id = `fsmesh-hash-ngram-${dims}`;
    // The revision covers everything that changes the vectors: algorithm version and dims.
    this.revision_hash = blake3Hex(
      utf8.encode(`fsmesh hashed embedder v1 dims=${dims} tokens+char3 fnv1a signed`),
    ).slice(0, 32);
  }

  get spec(): EmbedderSpec {
    return { kind: 'hashed', dims: this.dims, revision_hash: this.revision_hash };
  }

  embed(texts: string[]): Float32Array[] {
    const d = this.dims;
    // One allocation for the batch, rows as views: 25k separate small buffers per build part
    // were as many mallocs, and their freed memory stayed in the process.
    const slab = new Float32Array(texts.length * d);
    return texts.map((t, k) => {
      const v = slab.subarray(k * d, (k + 1) * d);
      for (const tok of tokenize(t)) {
        const h = fnv1a(tok, 0);
        v[h % d] += h & 0x80000000 ? -1 : 1;
      }
      // fnv1a(c.slice(i, i + 3), TRIGRAM_SEED), without making the substring.
      const c = ` ${canonicalize(t)} `;
      for (let i = 0; i + 3 <= c.length; i++) {
        let h = TRIGRAM_BASIS;
        h = Math.imul(h ^ c.charCodeAt(i), 0x01000193) >>> 0;
        h = Math.imul(h ^ c.charCodeAt(i + 1), 0x01000193) >>> 0;
        h = Math.imul(h ^ c.charCodeAt(i + 2), 0x01000193) >>> 0;
        v[h % d] += h & 0x80000000 ? -0.5 : 0.5;
      }
      return l2normalize(v);
    });
  }
}
