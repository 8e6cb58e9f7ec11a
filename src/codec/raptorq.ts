/**
 * RaptorQ (RFC 6330) block codec: the `raptorq` package (wasm build of the Rust crate, see
 * DESIGN.md §5 and docs/benchmarks.md for why it is kept). One call encodes one source block;
 * the encoder is deterministic, so every node derives the same repair symbols for the same
 * bytes ("seeded by object id", §7.1) and receivers can mix symbols from many peers.
 * Packets on the wasm boundary are 4-byte RFC 6330 payload ids (u8 SBN, u24 ESI big-endian) + symbol.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { Decoder, Encoder, initSync } from 'raptorq/raptorq.js';
import { invariant } from '../core/errors.ts';
import type { Compute } from '../runtime/compute.ts';

let ready = false;
function init(): void {
  if (ready) return;
  // Loading the codec's own wasm asset, not node data: this read is part of module loading.
  const require = createRequire(import.meta.url);
  initSync(fs.readFileSync(require.resolve('raptorq/raptorq_bg.wasm')));
  ready = true;
}

const firstRepairEsiCache = new Map<number, number>();

/**
 * The ESI of a block's first repair symbol. The crate numbers repair symbols from K' (the
 * RFC 6330 padded source count, K' >= K), not from K. K' depends only on K, so probe it once per
 * K with 64-byte symbols (cheap) and cache it.
 */
export function firstRepairEsi(sourceCount: number): number {
  const cached = firstRepairEsiCache.get(sourceCount);
  if (cached !== undefined) return cached;
  init();
  const enc = Encoder.with_defaults(new Uint8Array(sourceCount * 64), 64);
  try {
    const packets = enc.encode(1);
    const last = packets[packets.length - 1];
    const esi = (last[1] << 16) | (last[2] << 8) | last[3];
    if (packets.length !== sourceCount + 1 || esi < sourceCount)
      throw new Error(`raptorq: unexpected probe result for K=${sourceCount}`);
    firstRepairEsiCache.set(sourceCount, esi);
    return esi;
  } finally {
    enc.free();
  }
}

/** Encode one block: returns its `repairCount` repair symbols, in ESI order (K' .. K' + repairCount - 1). */
export function encodeBlockRepair(
  block: Uint8Array,
  symbolSize: number,
  sourceCount: number,
  repairCount: number,
): Uint8Array[] {
  init();
  if (block.length === 0) return Array.from({ length: repairCount }, () => new Uint8Array(symbolSize));
  const enc = Encoder.with_defaults(block, symbolSize);
  try {
    const packets = enc.encode(repairCount);
    const out: Uint8Array[] = [];
    for (const p of packets) {
      const esi = (p[1] << 16) | (p[2] << 8) | p[3];
      if (esi >= sourceCount) out.push(p.slice(4));
    }
    if (out.length !== repairCount || out.some((s) => s.length !== symbolSize)) {
      throw new Error(
        `raptorq: expected ${repairCount} repair symbols of ${symbolSize} bytes, got ${out.length}`,
      );
    }
    return out;
  } finally {
    enc.free();
  }
}

/**
 * Decode one block from any symbols, keyed by block-local index: 0..K-1 source, K + i for the
 * i-th repair symbol. Returns the block bytes, or null when the symbols are not yet enough.
 */
export function decodeBlock(
  blockLength: number,
  symbolSize: number,
  sourceCount: number,
  symbols: Map<number, Uint8Array>,
): Uint8Array | null {
  init();
  if (blockLength === 0) return symbols.size > 0 ? new Uint8Array(0) : null;
  const dec = Decoder.with_defaults(BigInt(blockLength), symbolSize);
  try {
    const packet = new Uint8Array(4 + symbolSize);
    const repairBase = firstRepairEsi(sourceCount);
    // Sorted by index: the same inputs always take the same path through the decoder.
    for (const idx of [...symbols.keys()].sort((a, b) => a - b)) {
      const s = symbols.get(idx)!;
      const esi = idx < sourceCount ? idx : repairBase + (idx - sourceCount);
      packet[0] = 0;
      packet[1] = (esi >>> 16) & 0xff;
      packet[2] = (esi >>> 8) & 0xff;
      packet[3] = esi & 0xff;
      packet.set(s, 4);
      const out = dec.decode(packet);
      if (out) return out;
    }
    return null;
  } finally {
    dec.free();
  }
}

/**
 * One block's decode as plain data for the compute seam (task `decode_block`): the symbols packed
 * in one buffer, in `indices` order. Packed, because a cloned view would carry its whole backing
 * buffer to the thread (a symbol cut from a 1 MiB frame, say).
 */
export interface BlockDecodeInput {
  block_length: number;
  symbol_size: number;
  source_count: number;
  indices: number[];
  data: Uint8Array;
}

export function decodeBlockInput(i: BlockDecodeInput): Uint8Array | null {
  invariant(i.data.length === i.indices.length * i.symbol_size, 'decode_block: symbols and indices disagree');
  const per = new Map<number, Uint8Array>();
  i.indices.forEach((idx, k) => per.set(idx, i.data.subarray(k * i.symbol_size, (k + 1) * i.symbol_size)));
  return decodeBlock(i.block_length, i.symbol_size, i.source_count, per);
}

/**
 * decodeBlock on a compute thread when the node has them (RaptorQ decode is wasm at ~100 MB/s: a
 * 4 MiB block is tens of ms the event loop would not answer queries), inline otherwise (the
 * simulator, the library default).
 */
export function decodeBlockOn(
  compute: Compute,
  blockLength: number,
  symbolSize: number,
  sourceCount: number,
  symbols: Map<number, Uint8Array>,
): Promise<Uint8Array | null> {
  const indices = [...symbols.keys()];
  const data = new Uint8Array(indices.length * symbolSize);
  indices.forEach((idx, k) => {
    const s = symbols.get(idx)!;
    invariant(s.length === symbolSize, 'decode_block: every symbol is symbol_size bytes');
    data.set(s, k * symbolSize);
  });
  const input: BlockDecodeInput = {
    block_length: blockLength,
    symbol_size: symbolSize,
    source_count: sourceCount,
    indices,
    data,
  };
  return compute.run('decode_block', input, async () => decodeBlockInput(input));
}
