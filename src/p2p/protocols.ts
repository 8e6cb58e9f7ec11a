/**
 * fsmesh wire protocols over libp2p streams (docs/protocols.md). Versioned protocol ids; every
 * message is a length-prefixed frame (src/p2p/framing.ts); requests are small canonical JSON.
 */
import { FsmeshError } from '../core/errors.ts';

export const PROTO = {
  head: '/fsmesh/head/1.0.0',
  manifest: '/fsmesh/manifest/1.0.0',
  symbols: '/fsmesh/symbols/1.0.0',
  capsules: '/fsmesh/capsules/1.0.0',
  replicate: '/fsmesh/replicate/1.0.0',
  search: '/fsmesh/search/1.0.0',
  /** Multi-shard collections only (served per shard, shard-transport.ts). */
  write: '/fsmesh/write/1.0.0',
  shard_query: '/fsmesh/shard-query/1.0.0',
} as const;

export const topics = (cluster: string, shard: string) => ({
  manifests: `/fsmesh/${cluster}/${shard}/manifests/1`,
  heads: `/fsmesh/${cluster}/${shard}/heads/1`,
  handover: `/fsmesh/${cluster}/${shard}/handover/1`,
});

export const MAX_SYMBOLS_PER_REQUEST = 1024;
export const MAX_CAPSULES_PER_REQUEST = 512;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function jsonFrame(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

export function parseJsonFrame<T>(b: Uint8Array, what: string): T {
  try {
    return JSON.parse(dec.decode(b)) as T;
  } catch {
    throw new FsmeshError('invalid_input', `${what}: malformed request (not UTF-8 JSON)`);
  }
}

/**
 * The symbol frames of one answer — each u32 symbol id (LE) + symbol bytes — laid out in one
 * buffer (views into it): ~250 allocations of 4 KiB per MiB served were most of the serving cost.
 */
export function symbolFrames(symbols: Map<number, Uint8Array>): Uint8Array[] {
  let total = 0;
  for (const d of symbols.values()) total += 4 + d.length;
  const slab = new Uint8Array(total);
  const view = new DataView(slab.buffer);
  const out: Uint8Array[] = [];
  let o = 0;
  for (const [id, d] of symbols) {
    view.setUint32(o, id, true);
    slab.set(d, o + 4);
    out.push(slab.subarray(o, o + 4 + d.length));
    o += 4 + d.length;
  }
  return out;
}

/**
 * A run frame: u32 LE first symbol id + one or more whole symbols of `symbolSize` bytes (a frame of
 * one symbol, as older servers send, is a run of one). `data` is a view into the frame.
 */
export function parseSymbolRun(
  f: Uint8Array,
  symbolSize: number,
): { first: number; count: number; data: Uint8Array } {
  if (f.length < 4 + symbolSize || (f.length - 4) % symbolSize !== 0)
    throw new FsmeshError(
      'corrupt_data',
      `symbol run frame of ${f.length} bytes is not a u32 id + whole ${symbolSize}-byte symbols`,
    );
  const first = new DataView(f.buffer, f.byteOffset, 4).getUint32(0, true);
  return { first, count: (f.length - 4) / symbolSize, data: f.subarray(4) };
}

export function parseSymbolFrame(f: Uint8Array): { id: number; data: Uint8Array } {
  if (f.length < 5) throw new FsmeshError('corrupt_data', 'symbol frame too short');
  return { id: new DataView(f.buffer, f.byteOffset).getUint32(0, true), data: f.subarray(4) };
}
