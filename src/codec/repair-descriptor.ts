/**
 * Repair symbol descriptor math (§5.2 item 5, §7.1): how an object of `length` bytes is cut
 * into source blocks and symbols, and how many repair symbols the overhead target asks for.
 * Shared by the builder (manifest) and the codec (src/codec), so both always agree.
 */
import { REPAIR_DEFAULTS } from '../core/defaults.ts';
import type { ObjectId } from '../core/ids.ts';
import type { RepairDescriptor } from '../core/manifest.ts';

export interface RepairParams {
  symbol_size: number;
  overhead_ratio: number;
  /** Max source symbols per block (the codec's block size). */
  max_block_symbols: number;
  min_repair_per_block: number;
}

export const DEFAULT_REPAIR: RepairParams = { ...REPAIR_DEFAULTS };

export function blockLayout(length: number, p: RepairParams): { source_symbols: number; blocks: number[] } {
  const k = Math.max(1, Math.ceil(length / p.symbol_size));
  const nBlocks = Math.ceil(k / p.max_block_symbols);
  // Even split: block sizes differ by at most one symbol.
  const blocks: number[] = [];
  for (let i = 0; i < nBlocks; i++) blocks.push(Math.floor(k / nBlocks) + (i < k % nBlocks ? 1 : 0));
  return { source_symbols: k, blocks };
}

export function repairCountForBlock(blockSymbols: number, p: RepairParams): number {
  return Math.max(p.min_repair_per_block, Math.ceil(blockSymbols * p.overhead_ratio));
}

export function describeRepair(objectId: ObjectId, length: number, p: RepairParams): RepairDescriptor {
  const { source_symbols, blocks } = blockLayout(length, p);
  const repair = blocks.reduce((n, b) => n + repairCountForBlock(b, p), 0);
  return {
    object_id: objectId,
    length,
    symbol_size: p.symbol_size,
    source_blocks: blocks.length,
    source_symbols,
    repair_symbols: repair,
    overhead: repair / source_symbols,
  };
}
