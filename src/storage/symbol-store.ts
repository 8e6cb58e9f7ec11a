/**
 * Symbol store (§3 "ECS objects with erasure coding metadata", §7.1, §8.1). Next to each object
 * the node keeps its repair symbols and a crc32 per symbol, so that:
 *  - any peer can serve any symbol of an object it holds (source symbols are read from the
 *    object itself: the code is systematic);
 *  - a corrupt object is rebuilt from the node's own intact symbols when enough survive;
 *  - repair never needs the full original.
 * File `symbols/<kind>/<id[0..2]>/<id>` (docs/formats.md §symbols):
 *   magic "FSSYM001" | u32 version=1 | u32 symbol_size | u64 length | u32 source_symbols
 *   | u32 repair_symbols | u32 max_block_symbols | u32 min_repair_per_block | f64 overhead_ratio
 *   | 16 B zero (header is 64 B) | 32 B object id | source_symbols × u32 crc32 | repair_symbols × u32 crc32
 *   | u32 crc32 of all preceding bytes | repair symbol bytes (repair_symbols × symbol_size)
 * Length: ~490 lines because one class owns the symbol file end to end — encoding it (from
 * bytes, or from the stored object block by block), reading headers and symbols, local repair.
 */
import { crc32 } from 'node:zlib';
import { encodeBlockRepair } from '../codec/raptorq.ts';
import type { RepairParams } from '../codec/repair-descriptor.ts';
import { layoutFor, reconstructObject, type SymbolLayout } from '../codec/symbols.ts';
import { ByteReader, ByteWriter, bytesEqual, fromHex, toHex, utf8 } from '../core/bytes.ts';
import { symbolPath as layoutSymbolPath } from '../core/data-dir-layout.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import { servedFrames } from '../core/frame-pool.ts';
import { type ObjectId, type ObjectKind, objectIdHasher } from '../core/ids.ts';
import {
  type Compute,
  inlineCompute,
  isNotFound,
  parentDir,
  type Storage,
  writeFileAtomic,
} from '../runtime/index.ts';
import { ObjectAssembly } from './object-assembly.ts';
import { corruptObject, missingObject, type ObjectStore, objectPath } from './object-store.ts';

const MAGIC = utf8.encode('FSSYM001');
const VERSION = 1;
/** Larger symbols are refused as implausible when a symbol file is read. */
const MAX_SYMBOL_SIZE = 16 << 20;

export function symbolPath(kind: ObjectKind, id: ObjectId): string {
  return layoutSymbolPath(kind, id);
}

interface SymbolFile {
  params: RepairParams;
  layout: SymbolLayout;
  source_crcs: Uint32Array;
  repair_crcs: Uint32Array;
  data_offset: number;
}

export type LocalRepairOutcome = 'ok' | 'repaired' | 'unrepairable' | 'missing';

/** Symbol-file headers kept parsed for serving (see servingHeader). */
const SERVING_HEADERS_MAX = 256;

export class SymbolStore {
  private readonly storage: Storage;
  private readonly objects: ObjectStore;
  readonly params: RepairParams;
  private readonly compute: Compute;
  /** Encodings in flight, so a serve request and a background pass never encode one object twice. */
  private readonly encoding = new Map<string, Promise<void>>();

  /** Temporary-file tag of this handle (a compute worker's differs from the main thread's). */
  private readonly tmpTag: string;

  constructor(
    storage: Storage,
    objects: ObjectStore,
    params: RepairParams,
    compute: Compute = inlineCompute,
    tmpTag = '',
  ) {
    this.storage = storage;
    this.objects = objects;
    this.params = params;
    this.compute = compute;
    this.tmpTag = tmpTag;
  }

  async has(kind: ObjectKind, id: ObjectId): Promise<boolean> {
    return this.storage.exists(symbolPath(kind, id));
  }

  /**
   * Compute and store the repair symbols of an object (idempotent). RaptorQ encoding is the costly
   * part (~150 MB/s): with compute threads a worker reads the stored object and writes the file.
   */
  async ensure(kind: ObjectKind, id: ObjectId, bytes?: Uint8Array): Promise<void> {
    if (await this.has(kind, id)) return;
    const key = `${kind}/${id}`;
    let p = this.encoding.get(key);
    if (!p) {
      const inline = () =>
        bytes ? this.write(kind, id, bytes.length, inMemory(bytes)) : this.writeStored(kind, id);
      p = this.compute
        .run<void>('encode_symbols', { data_dir: this.storage.root, kind, id, params: this.params }, inline)
        .finally(() => this.encoding.delete(key));
      this.encoding.set(key, p);
    }
    return p;
  }

  private backlog: Promise<void> = Promise.resolve();
  /** Background encodings that failed for another reason than their object being gone. */
  background_failures_total = 0;
  /** Objects queued for background encoding and not yet done (status: repair_symbols_pending). */
  background_pending = 0;

  /**
   * Encode later, one object at a time, off the caller's path: a replica serves and activates
   * without its own repair symbols (source symbols are the object itself), and has them soon after.
   */
  ensureLater(kind: ObjectKind, ids: ObjectId[]): void {
    for (const id of ids) {
      this.background_pending++;
      this.backlog = this.backlog
        .then(() => this.ensure(kind, id))
        .catch((err) => {
          // Collected in the meantime: nothing to protect any more.
          if (!(err instanceof FsmeshError && err.code === 'not_found') && !isNotFound(err))
            this.background_failures_total++;
        })
        .finally(() => this.background_pending--);
    }
  }

  /** Resolves when the background encodings queued so far are done (close, tests). */
  settled(): Promise<void> {
    return this.backlog;
  }

  /**
   * Encode a stored object read block by block (1 MiB), never whole, re-hashed as it is read:
   * symbols are never derived from damaged bytes.
   */
  private async writeStored(kind: ObjectKind, id: ObjectId): Promise<void> {
    const size = await this.objects.size(kind, id).catch((err) => {
      if (isNotFound(err)) throw missingObject(kind, id);
      throw err;
    });
    const h = objectIdHasher(kind);
    const path = objectPath(kind, id);
    let hashed = 0;
    await this.write(
      kind,
      id,
      size,
      async (offset, length) => {
        const b = await this.storage.readRange(path, offset, length);
        // Blocks are read in order, each once: the hash covers every byte exactly once.
        invariant(offset === hashed, 'blocks are read in order');
        if (b.length !== length)
          throw new FsmeshError('corrupt_data', `${kind} object ${id} is shorter than ${size} bytes`, {
            object_id: id,
            kind,
          });
        h.update(b);
        hashed += b.length;
        return b;
      },
      () => {
        const actual = h.digest();
        if (actual !== id) throw corruptObject(kind, id, actual);
      },
    );
  }

  /** The symbol file of an object of `length` bytes, its blocks read through `read`. */
  private async write(
    kind: ObjectKind,
    id: ObjectId,
    length: number,
    read: (offset: number, length: number) => Promise<Uint8Array> | Uint8Array,
    beforeStore: () => void = () => {},
  ): Promise<void> {
    this.headers.delete(`${kind}/${id}`);
    const p = this.params;
    const layout = layoutFor(length, p);
    const w = new ByteWriter(64 + (layout.source_symbols + layout.repair_symbols) * 4);
    w.bytes(MAGIC);
    w.u32(VERSION);
    w.u32(p.symbol_size);
    w.u64(length);
    w.u32(layout.source_symbols);
    w.u32(layout.repair_symbols);
    w.u32(p.max_block_symbols);
    w.u32(p.min_repair_per_block);
    const f = new DataView(new ArrayBuffer(8));
    f.setFloat64(0, p.overhead_ratio, true);
    w.bytes(new Uint8Array(f.buffer));
    w.bytes(new Uint8Array(16));
    w.bytes(fromHex(id));
    const repair: Uint8Array[] = [];
    for (const b of layout.blocks) {
      const block = b.length > 0 ? await read(b.offset, b.length) : new Uint8Array(0);
      // Source symbol checksums of the block (the last symbol zero-padded), then its repair symbols.
      for (let i = 0; i < b.source_count; i++) w.u32(crc32(paddedSymbol(block, i, p.symbol_size)));
      for (const r of encodeBlockRepair(block, p.symbol_size, b.source_count, b.repair_count)) repair.push(r);
    }
    beforeStore();
    for (const r of repair) w.u32(crc32(r));
    w.u32(crc32(w.finish()));
    for (const r of repair) w.bytes(r);
    const path = symbolPath(kind, id);
    await this.storage.mkdirp(parentDir(path));
    await writeFileAtomic(this.storage, path, w.finish(), this.tmpTag);
  }

  private async readHeader(kind: ObjectKind, id: ObjectId): Promise<SymbolFile> {
    const path = symbolPath(kind, id);
    let head: Uint8Array;
    try {
      head = await this.storage.readRange(path, 0, 64);
    } catch (err) {
      if (isNotFound(err))
        throw new FsmeshError('not_found', `no symbols stored for ${kind} ${id}`, { object_id: id });
      throw err;
    }
    const r = new ByteReader(head, `symbols of ${id}`);
    if (!bytesEqual(r.bytes(8), MAGIC))
      throw new FsmeshError('corrupt_data', `symbols of ${id}: bad magic`, { object_id: id });
    const v = r.u32();
    if (v !== VERSION)
      throw new FsmeshError('unsupported_version', `symbols of ${id}: unsupported version ${v}`);
    const symbol_size = r.u32();
    const length = r.u64();
    const src = r.u32();
    const rep = r.u32();
    const max_block_symbols = r.u32();
    const min_repair_per_block = r.u32();
    const overhead_ratio = r.f64();
    // Every count is bounded by the file before anything is sized by it (a damaged header must
    // give an error, not a huge allocation or a crash).
    const fileSize = await this.storage.size(path);
    const sane =
      symbol_size >= 1 &&
      symbol_size <= MAX_SYMBOL_SIZE &&
      max_block_symbols >= 1 &&
      min_repair_per_block <= 1 << 16 &&
      Number.isFinite(overhead_ratio) &&
      overhead_ratio >= 0 &&
      overhead_ratio <= 4 &&
      Number.isSafeInteger(length) &&
      Math.max(1, Math.ceil(length / symbol_size)) === src &&
      96 + (src + rep) * 4 + 4 <= fileSize;
    if (!sane)
      throw new FsmeshError('corrupt_data', `symbols of ${id}: implausible header`, { object_id: id });
    const tablesEnd = 64 + 32 + (src + rep) * 4;
    const all = await this.storage.readRange(path, 0, tablesEnd + 4);
    const stored = new DataView(all.buffer, all.byteOffset).getUint32(tablesEnd, true);
    if (all.length !== tablesEnd + 4 || crc32(all.subarray(0, tablesEnd)) !== stored) {
      throw new FsmeshError('corrupt_data', `symbols of ${id}: header checksum mismatch`, { object_id: id });
    }
    if (toHex(all.subarray(64, 96)) !== id)
      throw new FsmeshError('corrupt_data', `symbols of ${id}: names another object`, { object_id: id });
    const params: RepairParams = { symbol_size, overhead_ratio, max_block_symbols, min_repair_per_block };
    const layout = layoutFor(length, params);
    if (layout.source_symbols !== src || layout.repair_symbols !== rep)
      throw new FsmeshError('corrupt_data', `symbols of ${id}: layout mismatch`, { object_id: id });
    const tables = new Uint32Array(all.slice(96, tablesEnd).buffer);
    return {
      params,
      layout,
      source_crcs: tables.subarray(0, src),
      repair_crcs: tables.subarray(src),
      data_offset: tablesEnd + 4,
    };
  }

  /**
   * Read-only check of a symbol file (`fsmesh verify`): header, checksums, size, and every stored
   * repair symbol against its crc. Null when sound, else what is wrong.
   */
  async verifyFile(kind: ObjectKind, id: ObjectId): Promise<string | null> {
    let h: SymbolFile;
    try {
      h = await this.readHeader(kind, id);
    } catch (err) {
      if (err instanceof FsmeshError) return err.message;
      throw err;
    }
    const { layout } = h;
    const path = symbolPath(kind, id);
    const expected = h.data_offset + layout.repair_symbols * layout.symbol_size;
    const size = await this.storage.size(path);
    if (size !== expected) return `symbols of ${id}: file is ${size} bytes, expected ${expected}`;
    const data = await this.storage.readRange(
      path,
      h.data_offset,
      layout.repair_symbols * layout.symbol_size,
    );
    for (let i = 0; i < layout.repair_symbols; i++) {
      const sym = data.subarray(i * layout.symbol_size, (i + 1) * layout.symbol_size);
      if (crc32(sym) !== h.repair_crcs[i]) return `symbols of ${id}: repair symbol ${i} fails its checksum`;
    }
    return null;
  }

  async layout(kind: ObjectKind, id: ObjectId): Promise<SymbolLayout> {
    return (await this.servingHeader(kind, id)).layout;
  }

  /**
   * Parsed headers of the symbol files being served, most recent last. A serving peer answers many
   * requests for one object in a row, and the header's crc tables are ~1/1000 of the object: read
   * and checked once, not twice per request. Safe to keep: a symbol file's content is a pure
   * function of its object and parameters, this store drops the entry when it rewrites the file,
   * and every symbol served is still checked against its own crc.
   */
  private readonly headers = new Map<string, SymbolFile>();

  private async servingHeader(kind: ObjectKind, id: ObjectId): Promise<SymbolFile> {
    const key = `${kind}/${id}`;
    const hit = this.headers.get(key);
    if (hit) {
      this.headers.delete(key);
      this.headers.set(key, hit);
      return hit;
    }
    const h = await this.readHeader(kind, id);
    this.headers.set(key, h);
    if (this.headers.size > SERVING_HEADERS_MAX) this.headers.delete(this.headers.keys().next().value!);
    return h;
  }

  /**
   * Serve symbols (to a peer or to local repair). Each symbol is checked against its crc;
   * corrupt or unavailable ones are left out rather than served.
   */
  async getSymbols(kind: ObjectKind, id: ObjectId, symbolIds: number[]): Promise<Map<number, Uint8Array>> {
    const h = await this.servingHeader(kind, id);
    const { layout } = h;
    const total = layout.source_symbols + layout.repair_symbols;
    const seen = new Set<number>();
    for (const s of symbolIds) {
      if (!Number.isInteger(s) || s < 0 || s >= total)
        throw new FsmeshError('invalid_input', `symbol id ${s} out of range 0..${total - 1} for ${id}`);
      if (seen.has(s)) throw new FsmeshError('invalid_input', `symbol id ${s} requested twice for ${id}`);
      seen.add(s);
    }
    // Read as run frames, one per stretch of consecutive ids (the same read and crc check as a
    // run-frame answer: a damaged or unavailable symbol is left out), then handed out per symbol.
    const sorted = [...symbolIds].sort((a, b) => a - b);
    const size = layout.symbol_size;
    const got = new Map<number, Uint8Array>();
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      while (j < sorted.length && sorted[j] === sorted[j - 1] + 1) j++;
      for (const f of await this.getSymbolRuns(kind, id, [[sorted[i], sorted[j - 1] + 1]])) {
        const first = new DataView(f.buffer, f.byteOffset, 4).getUint32(0, true);
        for (let k = 0; 4 + k * size < f.length; k++)
          got.set(first + k, f.subarray(4 + k * size, 4 + (k + 1) * size));
      }
      i = j;
    }
    // In the order asked.
    const out = new Map<number, Uint8Array>();
    for (const x of symbolIds) {
      const sym = got.get(x);
      if (sym) out.set(x, sym);
    }
    return out;
  }

  /**
   * Serve ranges of symbols as run frames (docs/protocols.md): each frame is a u32 LE first symbol
   * id followed by consecutive symbols, read from the file straight into the frame (no per-symbol
   * copies). Every symbol is checked against its crc; a damaged or unavailable one is left out,
   * splitting its run. Ranges are validated by the caller (symbolIdsOf).
   */
  async getSymbolRuns(kind: ObjectKind, id: ObjectId, ranges: [number, number][]): Promise<Uint8Array[]> {
    const h = await this.servingHeader(kind, id);
    const { layout } = h;
    const S = layout.source_symbols;
    const total = S + layout.repair_symbols;
    const out: Uint8Array[] = [];
    for (const [from, to] of ranges) {
      if (from < 0 || to > total || from > to)
        throw new FsmeshError('invalid_input', `symbol range [${from}, ${to}) outside 0..${total} for ${id}`);
      // Source and repair symbols live in different files: a range across both is read as two.
      if (from < Math.min(to, S)) await this.readRunFrames(kind, id, h, from, Math.min(to, S), out);
      if (Math.max(from, S) < to) await this.readRunFrames(kind, id, h, Math.max(from, S), to, out);
    }
    return out;
  }

  private async readRunFrames(
    kind: ObjectKind,
    id: ObjectId,
    h: SymbolFile,
    from: number,
    to: number,
    out: Uint8Array[],
  ): Promise<void> {
    const { layout } = h;
    const size = layout.symbol_size;
    const isSrc = from < layout.source_symbols;
    const base = isSrc ? 0 : layout.source_symbols;
    const crcs = isSrc ? h.source_crcs : h.repair_crcs;
    // [u32 first id][symbols...]: the last source symbol stays zero-padded past the object's end.
    // A pooled frame (core/frame-pool.ts): every byte is written below, the padding included.
    const frame = servedFrames.take(4 + (to - from) * size);
    const start = isSrc ? from * size : h.data_offset + (from - base) * size;
    const end = isSrc ? layout.length : h.data_offset + layout.repair_symbols * size;
    try {
      const got = await this.storage.readRange(
        isSrc ? objectPath(kind, id) : symbolPath(kind, id),
        start,
        Math.min(end - start, (to - from) * size),
        frame.subarray(4),
      );
      // `into` is a hint a Storage may ignore (a wrapper, a simulated disk): then copy.
      if (got.buffer !== frame.buffer || got.byteOffset !== frame.byteOffset + 4) frame.set(got, 4);
      // Past what was read: the padding, or a file shorter than it was (its crcs then fail).
      frame.fill(0, 4 + got.length);
    } catch (err) {
      servedFrames.give(frame);
      if (!isSrc) this.headers.delete(`${kind}/${id}`);
      if (isNotFound(err)) return;
      throw err;
    }
    // Runs of symbols that pass their crc; one failing splits the frame (each part copied once).
    const n = to - from;
    const good = new Uint8Array(n);
    for (let k = 0; k < n; k++)
      good[k] = crc32(frame.subarray(4 + k * size, 4 + (k + 1) * size)) === crcs[from - base + k] ? 1 : 0;
    let i = 0;
    while (i < n) {
      if (!good[i]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && good[j]) j++;
      const whole = i === 0 && j === n;
      const f = whole ? frame : new Uint8Array(4 + (j - i) * size);
      if (!whole) f.set(frame.subarray(4 + i * size, 4 + j * size), 4);
      new DataView(f.buffer, f.byteOffset, 4).setUint32(0, from + i, true);
      out.push(f);
      i = j;
    }
    // Split, or nothing passed: the parts are copies, and nothing else refers to the frame.
    if (good.includes(0)) servedFrames.give(frame);
  }

  /** Assemble a fetched object on disk as its symbols arrive (see ObjectAssembly). */
  assemble(id: ObjectId, layout: SymbolLayout): Promise<ObjectAssembly> {
    return ObjectAssembly.open(this.storage, this.objects, id, layout, this.compute);
  }

  /** Finish an assembly and make its directory entry durable; null when symbols are still short. */
  async completeAssembly(a: ObjectAssembly): Promise<boolean> {
    const done = await a.finish();
    if (done) await this.objects.syncDirs();
    return done;
  }

  /** Decode from symbols, verify against the id, and store the object (replacing a corrupt copy). */
  async reconstruct(
    kind: ObjectKind,
    id: ObjectId,
    layout: SymbolLayout,
    symbols: Map<number, Uint8Array>,
  ): Promise<Uint8Array | null> {
    const r = await reconstructObject(kind, id, layout, symbols, this.compute);
    if (!r) return null;
    await this.objects.putVerified(kind, id, r.bytes);
    await this.objects.syncDirs();
    return r.bytes;
  }

  /**
   * §8.1: check one object; if corrupt or missing, rebuild it from this node's own intact
   * symbols when enough survive. 'unrepairable' means peers must supply symbols.
   */
  async checkAndRepairLocally(
    kind: ObjectKind,
    id: ObjectId,
  ): Promise<{ outcome: LocalRepairOutcome; repaired_bytes: number }> {
    const state = await this.objects.check(kind, id);
    if (state === 'ok') {
      // Keep the symbol file healthy too: regenerate it from the intact object if damaged or absent.
      try {
        await this.readHeader(kind, id);
      } catch (err) {
        if (!(err instanceof FsmeshError)) throw err;
        await this.writeStored(kind, id);
      }
      return { outcome: 'ok', repaired_bytes: 0 };
    }
    let layout: SymbolLayout;
    try {
      layout = await this.layout(kind, id);
    } catch (err) {
      if (err instanceof FsmeshError) return { outcome: 'unrepairable', repaired_bytes: 0 };
      throw err;
    }
    const all = Array.from({ length: layout.source_symbols + layout.repair_symbols }, (_, i) => i);
    const symbols = await this.getSymbols(kind, id, all);
    try {
      const bytes = await this.reconstruct(kind, id, layout, symbols);
      if (bytes) return { outcome: 'repaired', repaired_bytes: bytes.length };
    } catch (err) {
      if (!(err instanceof FsmeshError && err.code === 'corrupt_data')) throw err;
    }
    return { outcome: state === 'missing' ? 'missing' : 'unrepairable', repaired_bytes: 0 };
  }

  async remove(kind: ObjectKind, id: ObjectId): Promise<void> {
    await this.storage.remove(symbolPath(kind, id));
  }
}

const inMemory = (bytes: Uint8Array) => (offset: number, length: number) =>
  bytes.subarray(offset, offset + length);

/** Symbol `i` of a block (zero-padded past the block's end). */
function paddedSymbol(block: Uint8Array, i: number, symbolSize: number): Uint8Array {
  const start = i * symbolSize;
  if (start + symbolSize <= block.length) return block.subarray(start, start + symbolSize);
  const out = new Uint8Array(symbolSize);
  if (start < block.length) out.set(block.subarray(start));
  return out;
}
