/**
 * An object fetched as symbols, assembled on disk as they arrive (§7.2): each source symbol is
 * written at its offset in a temporary file, so a bootstrap holds only the requests in flight
 * rather than the whole object (twice: symbols, then the concatenation). Repair symbols, asked for
 * only for blocks short of source symbols, stay in memory. `finish` decodes those blocks into the
 * file, fsyncs it, checks the bytes against the object id and moves it into place.
 *
 * The id check is incremental: bytes are hashed as they arrive in order, and runs that arrive ahead
 * of the hashed prefix wait in memory (at most AHEAD_MAX_BYTES) until it reaches them. `finish`
 * reads back only what the prefix did not cover (a decoded block, runs past the bound): reading a
 * 20 MB object back and hashing it had put 75-90 ms between its last symbol and its activation.
 */
import { decodeBlockOn } from '../codec/raptorq.ts';
import type { SymbolLayout } from '../codec/symbols.ts';
import { invariant } from '../core/errors.ts';
import { type ObjectId, type ObjectIdHasher, objectIdHasher } from '../core/ids.ts';
import { type Compute, inlineCompute, isNotFound, type Storage, type WriteHandle } from '../runtime/index.ts';
import type { ObjectStore } from './object-store.ts';

/** Consecutive symbols from `first` on: `data` holds whole symbols. */
export interface SymbolRun {
  first: number;
  data: Uint8Array;
}

/** Bytes received ahead of the hashed prefix that an assembly keeps in memory for the hash. */
const AHEAD_MAX_BYTES = 8 << 20;

export class ObjectAssembly {
  private readonly received: Uint8Array;
  private readonly repair = new Map<number, Uint8Array>();
  private sourceCount = 0;
  private closed = false;
  /** The object's bytes [0, hashedUpTo) have been fed to `hasher`, in order. */
  private readonly hasher: ObjectIdHasher = objectIdHasher('artifact');
  private hashedUpTo = 0;
  /** Written runs past the hashed prefix, by file offset, kept until the prefix reaches them. */
  private readonly ahead = new Map<number, Uint8Array>();
  private aheadBytes = 0;

  private readonly storage: Storage;
  private readonly objects: ObjectStore;
  readonly object_id: ObjectId;
  readonly layout: SymbolLayout;
  private readonly tmp: string;
  private readonly file: WriteHandle;
  private readonly compute: Compute;

  private constructor(
    storage: Storage,
    objects: ObjectStore,
    objectId: ObjectId,
    layout: SymbolLayout,
    tmp: string,
    file: WriteHandle,
    compute: Compute,
  ) {
    this.storage = storage;
    this.objects = objects;
    this.object_id = objectId;
    this.layout = layout;
    this.tmp = tmp;
    this.compute = compute;
    this.file = file;
    this.received = new Uint8Array(layout.source_symbols);
  }

  static async open(
    storage: Storage,
    objects: ObjectStore,
    objectId: ObjectId,
    layout: SymbolLayout,
    compute: Compute = inlineCompute,
  ): Promise<ObjectAssembly> {
    const tmp = objects.tempPathFor('artifact', objectId);
    const file = await storage.openWrite(tmp);
    return new ObjectAssembly(storage, objects, objectId, layout, tmp, file, compute);
  }

  has(symbolId: number): boolean {
    return symbolId < this.layout.source_symbols ? this.received[symbolId] === 1 : this.repair.has(symbolId);
  }

  get source_received(): number {
    return this.sourceCount;
  }

  /**
   * Keep runs of consecutive symbols (already checked to be ones the caller asked for, whole
   * symbols). Source symbols not held yet are written at their offsets straight from the run, one
   * write per stretch of new ones; repair symbols are kept in memory.
   */
  async putRuns(runs: SymbolRun[]): Promise<void> {
    const { layout } = this;
    const size = layout.symbol_size;
    for (const r of runs) {
      invariant(r.data.length > 0 && r.data.length % size === 0, 'assembly: a run of partial symbols');
      const count = r.data.length / size;
      for (let i = 0; i < count; ) {
        const id = r.first + i;
        if (this.has(id)) i++;
        else if (id >= layout.source_symbols) {
          // A copy (also when `data` is a Buffer, whose slice is a view): not the whole frame kept.
          this.repair.set(id, new Uint8Array(r.data.subarray(i * size, (i + 1) * size)));
          i++;
        } else {
          // Marked before the write: a duplicate arriving meanwhile is not written twice.
          let j = i;
          for (; j < count && r.first + j < layout.source_symbols && !this.has(r.first + j); j++) {
            this.received[r.first + j] = 1;
            this.sourceCount++;
          }
          const offset = id * size;
          // The last source symbol is zero-padded past the object's end: only real bytes are written.
          const bytes = r.data.subarray(i * size, Math.min(j * size, layout.length - r.first * size));
          this.feedHash(offset, bytes);
          await this.file.writeAt(offset, bytes);
          i = j;
        }
      }
    }
  }

  /** Hash `run` (bytes at `offset`) now if it extends the hashed prefix, else keep it for later. */
  private feedHash(offset: number, run: Uint8Array): void {
    if (offset > this.hashedUpTo) {
      // Past the bound the run is not kept: the prefix stops before it, and finish reads the rest
      // of the file back.
      if (this.aheadBytes + run.length <= AHEAD_MAX_BYTES) {
        this.ahead.set(offset, run);
        this.aheadBytes += run.length;
      }
      return;
    }
    invariant(offset === this.hashedUpTo, 'assembly: a run overlaps the hashed prefix');
    this.hasher.update(run);
    this.hashedUpTo += run.length;
    for (let next = this.ahead.get(this.hashedUpTo); next; next = this.ahead.get(this.hashedUpTo)) {
      this.ahead.delete(this.hashedUpTo);
      this.aheadBytes -= next.length;
      this.hasher.update(next);
      this.hashedUpTo += next.length;
    }
  }

  /**
   * Decode the blocks still short of source symbols, fsync, verify against the id and store.
   * False when some block cannot be decoded yet (not enough symbols); the assembly stays usable.
   */
  async finish(): Promise<boolean> {
    const { layout } = this;
    for (const b of layout.blocks) {
      let have = 0;
      for (let i = 0; i < b.source_count; i++) have += this.received[b.source_start + i];
      if (have === b.source_count) continue;
      const block = await this.decode(b, have);
      if (!block) return false;
      await this.file.writeAt(b.offset, block.subarray(0, b.length));
      for (let i = 0; i < b.source_count; i++) this.received[b.source_start + i] = 1;
    }
    await this.file.sync();
    await this.close();
    this.ahead.clear();
    this.aheadBytes = 0;
    await this.objects.adoptVerified('artifact', this.object_id, this.tmp, {
      hasher: this.hasher,
      up_to: this.hashedUpTo,
    });
    return true;
  }

  private async decode(b: SymbolLayout['blocks'][number], have: number): Promise<Uint8Array | null> {
    const { layout } = this;
    let repairs = 0;
    for (let i = 0; i < b.repair_count; i++) if (this.repair.has(b.repair_start + i)) repairs++;
    if (have + repairs < b.source_count) return null;
    // The block's source symbols received so far, from the file (written, not yet synced: a read
    // of the same file sees them). The last symbol may be short of symbol_size at the object's
    // end: it is zero-padded, as the encoder padded it.
    const region = await this.storage.readRange(this.tmp, b.offset, b.length);
    const per = new Map<number, Uint8Array>();
    for (let i = 0; i < b.source_count; i++) {
      if (this.received[b.source_start + i] !== 1) continue;
      const sym = region.subarray(i * layout.symbol_size, (i + 1) * layout.symbol_size);
      if (sym.length === layout.symbol_size) per.set(i, sym);
      else {
        const padded = new Uint8Array(layout.symbol_size);
        padded.set(sym);
        per.set(i, padded);
      }
    }
    for (let i = 0; i < b.repair_count; i++) {
      const s = this.repair.get(b.repair_start + i);
      if (s) per.set(b.source_count + i, s);
    }
    return decodeBlockOn(this.compute, b.length, layout.symbol_size, b.source_count, per);
  }

  /** Give up: close and remove the temporary file. */
  async abandon(): Promise<void> {
    await this.close();
    try {
      await this.storage.remove(this.tmp);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }
}
