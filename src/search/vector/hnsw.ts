/**
 * HNSW graph artifact (role `hnsw`) over one FSVI shard, built with hnswlib-node with a fixed
 * seed, fixed parameters and rows inserted in row order, so the same shard always gives the same
 * graph bytes (DESIGN.md §4) and the graph can be content-addressed and replicated like any
 * artifact. Labels are shard row numbers. hnswlib only reads and writes files by name, so the
 * bytes pass through a scratch file under the data directory (Storage.nativePath).
 */

import { createRequire } from 'node:module';
import { threadId } from 'node:worker_threads';
import { FsmeshError } from '../../core/errors.ts';
import type { Storage } from '../../runtime/index.ts';
import type { VectorShard } from './fsvi.ts';

const require = createRequire(import.meta.url);
type HnswIndex = {
  initIndex(o: { maxElements: number; m?: number; efConstruction?: number; randomSeed?: number }): void;
  addPoint(p: number[] | Float32Array, label: number): void;
  searchKnn(
    q: number[] | Float32Array,
    k: number,
    filter?: (label: number) => boolean,
  ): { distances: number[]; neighbors: number[] };
  writeIndexSync(f: string): void;
  /** Reads on a libuv thread (hnswlib-node's AsyncWorker): the event loop keeps answering. */
  readIndex(f: string): Promise<boolean>;
  setEf(ef: number): void;
  getCurrentCount(): number;
  getPoint(label: number): number[];
};
type HnswCtor = new (space: 'ip' | 'l2' | 'cosine', dims: number) => HnswIndex;

export const HNSW_PARAMS = { m: 16, efConstruction: 200, randomSeed: 42, efSearch: 200 } as const;

function ctor(): HnswCtor {
  return (require('hnswlib-node') as { HierarchicalNSW: HnswCtor }).HierarchicalNSW;
}

let scratchCounter = 0;
/** Scratch names carry the thread: a compute worker and the main thread share objects/tmp. */
const SCRATCH_TAG = `t${threadId}`;

/**
 * Build a shard's graph into a scratch file under objects/tmp; returns its storage path (the
 * caller adopts it into the object store or removes it), or null when the storage has no native
 * path. The graph's bytes never sit in memory here: hnswlib writes them, the store reads by ranges.
 */
export async function buildHnswFile(
  storage: Storage,
  shard: { dims: number; count: number; rows: ArrayLike<number> },
): Promise<string | null> {
  const rel = `objects/tmp/hnsw-${SCRATCH_TAG}-${scratchCounter++}.bin`;
  const file = storage.nativePath(rel);
  if (!file) return null;
  await storage.mkdirp('objects/tmp');
  const H = ctor();
  const idx = new H('ip', shard.dims);
  idx.initIndex({
    maxElements: Math.max(1, shard.count),
    m: HNSW_PARAMS.m,
    efConstruction: HNSW_PARAMS.efConstruction,
    randomSeed: HNSW_PARAMS.randomSeed,
  });
  // hnswlib-node takes plain arrays and copies them: one array refilled per row, not one per row
  // (50k rows of 256 numbers were ~100 MB of garbage per build).
  const row: number[] = new Array(shard.dims).fill(0);
  for (let r = 0; r < shard.count; r++) {
    const base = r * shard.dims;
    for (let j = 0; j < shard.dims; j++) row[j] = shard.rows[base + j];
    idx.addPoint(row, r);
  }
  try {
    idx.writeIndexSync(file);
  } catch (err) {
    await storage.remove(rel).catch(() => {});
    throw err;
  } finally {
    // hnswlib-node frees an index only when its wrapper is garbage-collected; initialising it
    // again (room for one row) frees the graph's native memory (~30 MB at 25k rows) right now.
    idx.initIndex({ maxElements: 1, m: HNSW_PARAMS.m });
  }
  return rel;
}

export class HnswGraph {
  readonly object_id: string;
  private readonly index: HnswIndex;
  private constructor(objectId: string, index: HnswIndex) {
    this.object_id = objectId;
    this.index = index;
  }

  /**
   * A graph read straight from a file of the data directory — its stored object, which the caller
   * has verified against its id — without copying it first.
   */
  static async openFile(
    storage: Storage,
    objectId: string,
    path: string,
    shard: VectorShard,
  ): Promise<HnswGraph | null> {
    const file = storage.nativePath(path);
    if (!file) return null;
    await checkGraphHeader(storage, objectId, path, shard);
    const idx = new (ctor())('ip', shard.dims);
    try {
      // Off the event loop: a 25k-row graph is ~26 MB read and linked, and an activation must not
      // stall the queries answered meanwhile (issue 16: p99 under activations).
      await idx.readIndex(file);
    } catch (err) {
      throw new FsmeshError(
        'corrupt_data',
        `hnsw graph ${objectId}: cannot be loaded (${(err as Error).message})`,
        { object_id: objectId },
      );
    }
    if (idx.getCurrentCount() !== shard.count)
      throw new FsmeshError(
        'corrupt_data',
        `hnsw graph ${objectId}: ${idx.getCurrentCount()} points, shard has ${shard.count}`,
        { object_id: objectId },
      );
    idx.setEf(HNSW_PARAMS.efSearch);
    return new HnswGraph(objectId, idx);
  }

  /**
   * Every row's inner product with `query`, from the graph's own copy of the rows (the shard's
   * values as f32: the same scores as the shard's scan). A native call per row: for a shard
   * whose rows were not read, when the graph alone cannot answer.
   */
  scan(query: Float32Array, fn: (row: number, score: number) => void): void {
    const n = this.index.getCurrentCount();
    for (let row = 0; row < n; row++) {
      const p = this.index.getPoint(row);
      let s = 0;
      for (let j = 0; j < p.length; j++) s += p[j] * query[j];
      fn(row, s);
    }
  }

  /** Approximate top-k rows by inner product; `live(row)` filters deleted rows. */
  search(query: Float32Array, k: number, live?: (row: number) => boolean): { row: number; score: number }[] {
    const r = this.index.searchKnn(Array.from(query), k, live);
    // hnswlib's 'ip' distance is 1 - dot.
    return r.neighbors.map((row, i) => ({ row, score: 1 - r.distances[i] }));
  }
}

/** Bytes of hnswlib's index header (hnswalg.h saveIndex): eleven size_t, two u32, a double. */
const GRAPH_HEADER_BYTES = 96;

/**
 * hnswlib allocates max_elements × size_data_per_element as the header says before reading the
 * rest: check the header against the shard (and the file's size) first, so a damaged or hostile
 * graph is corrupt_data instead of a huge allocation.
 */
async function checkGraphHeader(storage: Storage, objectId: string, path: string, shard: VectorShard) {
  const bad = (m: string) =>
    new FsmeshError('corrupt_data', `hnsw graph ${objectId}: ${m}`, { object_id: objectId });
  const size = await storage.size(path);
  if (size < GRAPH_HEADER_BYTES) throw bad(`${size} bytes, shorter than its header`);
  const h = await storage.readRange(path, 0, GRAPH_HEADER_BYTES);
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const u64 = (off: number) => Number(v.getBigUint64(off, true));
  const maxElements = u64(8);
  const elements = u64(16);
  const perElement = u64(24);
  const maxM0 = u64(64);
  const m = u64(72);
  if (maxElements !== Math.max(1, shard.count) || elements !== shard.count)
    throw bad(`header says ${elements} of ${maxElements} points, the shard has ${shard.count}`);
  // M itself is the builder's choice (HNSW_PARAMS today); the sizes must follow from it.
  if (m < 2 || maxM0 !== 2 * m || perElement !== (maxM0 + 1) * 4 + shard.dims * 4 + 8)
    throw bad(`header parameters (M ${m}, ${perElement} bytes per point) do not match ${shard.dims} dims`);
  if (GRAPH_HEADER_BYTES + maxElements * perElement > size)
    throw bad(`${size} bytes, too short for its points`);
}
