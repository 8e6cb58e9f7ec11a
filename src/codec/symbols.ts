/**
 * Object-level symbol coding (§7.1). An object of `length` bytes is cut into source blocks of at
 * most `max_block_symbols` symbols (layout in src/codec/repair-descriptor.ts, shared with the
 * manifest); each block is RaptorQ-encoded with max(min_repair_per_block, ⌈K·overhead⌉) repair
 * symbols. Symbol ids are global: source symbols 0..S-1 in object order, then repair symbols
 * S..S+R-1 block by block. The last source symbol is zero-padded to the symbol size.
 */
import { FsmeshError, invariant } from '../core/errors.ts';
import { type ObjectId, type ObjectKind, objectIdOf } from '../core/ids.ts';
import type { RepairDescriptor } from '../core/manifest.ts';
import { type Compute, inlineCompute } from '../runtime/compute.ts';
import { decodeBlockOn, encodeBlockRepair } from './raptorq.ts';
import { blockLayout, describeRepair, type RepairParams, repairCountForBlock } from './repair-descriptor.ts';

export interface SymbolLayout {
  length: number;
  symbol_size: number;
  /** Per block: first source symbol id, source count, first repair symbol id, repair count, byte offset, byte length. */
  blocks: {
    source_start: number;
    source_count: number;
    repair_start: number;
    repair_count: number;
    offset: number;
    length: number;
  }[];
  source_symbols: number;
  repair_symbols: number;
}

export function layoutFor(length: number, p: RepairParams): SymbolLayout {
  const { source_symbols, blocks } = blockLayout(length, p);
  let src = 0;
  let rep = source_symbols;
  const out: SymbolLayout['blocks'] = [];
  for (const k of blocks) {
    const offset = src * p.symbol_size;
    const r = repairCountForBlock(k, p);
    out.push({
      source_start: src,
      source_count: k,
      repair_start: rep,
      repair_count: r,
      offset,
      length: Math.max(0, Math.min(length - offset, k * p.symbol_size)),
    });
    src += k;
    rep += r;
  }
  // Postconditions: the blocks cover every source symbol, in order, and at least the policy's
  // minimum of repair symbols per block (§7.1).
  invariant(src === source_symbols, 'blocks cover every source symbol');
  invariant(rep - source_symbols >= out.length * p.min_repair_per_block, 'minimum repair symbols per block');
  return {
    length,
    symbol_size: p.symbol_size,
    blocks: out,
    source_symbols,
    repair_symbols: rep - source_symbols,
  };
}

/** Check that a manifest descriptor is exactly what these parameters produce for its length. */
export function checkDescriptor(d: RepairDescriptor, p: RepairParams): void {
  const expect = describeRepair(d.object_id, d.length, { ...p, symbol_size: d.symbol_size });
  for (const k of ['source_blocks', 'source_symbols', 'repair_symbols'] as const) {
    if (expect[k] !== d[k])
      throw new FsmeshError(
        'invalid_input',
        `repair descriptor for ${d.object_id}: ${k} is ${d[k]}, expected ${expect[k]}`,
      );
  }
}

/** The bytes of source symbol `id` (zero-padded). */
export function sourceSymbol(bytes: Uint8Array, layout: SymbolLayout, id: number): Uint8Array {
  const s = layout.symbol_size;
  const out = new Uint8Array(s);
  const start = id * s;
  if (start < bytes.length) out.set(bytes.subarray(start, Math.min(bytes.length, start + s)));
  return out;
}

/** Every repair symbol of an object, in id order (streams block by block: memory is one block). */
export function* encodeRepairSymbols(
  bytes: Uint8Array,
  layout: SymbolLayout,
): Generator<{ id: number; data: Uint8Array }> {
  for (const b of layout.blocks) {
    const block = bytes.subarray(b.offset, b.offset + b.length);
    const rep = encodeBlockRepair(block, layout.symbol_size, b.source_count, b.repair_count);
    for (let i = 0; i < rep.length; i++) yield { id: b.repair_start + i, data: rep[i] };
  }
}

export interface ReconstructResult {
  bytes: Uint8Array;
  blocks_decoded: number;
}

/**
 * Reconstruct an object from any mix of source and repair symbols. Validates every symbol
 * (size, id range); returns null when some block lacks enough symbols; throws corrupt_data when
 * the decoded bytes do not hash to `objectId` (a bad symbol set, reported, never returned).
 * Blocks short of source symbols are decoded on `compute` (a thread when the node has them).
 */
export async function reconstructObject(
  kind: ObjectKind,
  objectId: ObjectId,
  layout: SymbolLayout,
  symbols: Map<number, Uint8Array>,
  compute: Compute = inlineCompute,
): Promise<ReconstructResult | null> {
  const total = layout.source_symbols + layout.repair_symbols;
  for (const [id, s] of symbols) {
    if (!Number.isInteger(id) || id < 0 || id >= total)
      throw new FsmeshError(
        'invalid_input',
        `symbol id ${id} out of range 0..${total - 1} for object ${objectId}`,
      );
    if (s.length !== layout.symbol_size)
      throw new FsmeshError(
        'invalid_input',
        `symbol ${id} of object ${objectId} has ${s.length} bytes, expected ${layout.symbol_size}`,
      );
  }
  const out = new Uint8Array(layout.length);
  let decoded = 0;
  for (const b of layout.blocks) {
    const per = new Map<number, Uint8Array>();
    let haveAllSource = true;
    for (let i = 0; i < b.source_count; i++) {
      const s = symbols.get(b.source_start + i);
      if (s) per.set(i, s);
      else haveAllSource = false;
    }
    if (haveAllSource) {
      // Systematic code: the source symbols are the block.
      for (let i = 0; i < b.source_count; i++) {
        const off = b.offset + i * layout.symbol_size;
        out.set(per.get(i)!.subarray(0, Math.min(layout.symbol_size, layout.length - off)), off);
      }
      continue;
    }
    for (let i = 0; i < b.repair_count; i++) {
      const s = symbols.get(b.repair_start + i);
      if (s) per.set(b.source_count + i, s);
    }
    if (per.size < b.source_count) return null;
    const block = await decodeBlockOn(compute, b.length, layout.symbol_size, b.source_count, per);
    if (!block) return null;
    out.set(block.subarray(0, b.length), b.offset);
    decoded++;
  }
  const actual = objectIdOf(kind, out);
  if (actual !== objectId) {
    throw new FsmeshError(
      'corrupt_data',
      `symbols for object ${objectId} decoded to bytes hashing to ${actual}: a symbol was corrupt`,
      { object_id: objectId },
    );
  }
  return { bytes: out, blocks_decoded: decoded };
}
