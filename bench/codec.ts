/**
 * Repair-symbol codec throughput (issue 5): encode (20 % repair) and decode (20 % source loss)
 * MB/s for several object and symbol sizes, as ratios to BLAKE3 hashing and to a memory copy of
 * the same bytes, measured in the same run.
 *   node bench/codec.ts [--max-mib 256]
 */

import { DEFAULT_REPAIR } from '../src/codec/repair-descriptor.ts';
import { encodeRepairSymbols, layoutFor, reconstructObject, sourceSymbol } from '../src/codec/symbols.ts';
import { BLAKE3_BACKEND, blake3Bytes, objectIdOf } from '../src/core/ids.ts';
import { seededRandom } from '../src/runtime/index.ts';
import { arg, nowMs, report, round } from './util.ts';

const maxMiB = arg('max-mib', 256);
const rows = [];
for (const mib of [1, 16, 256].filter((m) => m <= maxMiB)) {
  const size = mib << 20;
  const bytes = new Uint8Array(size);
  const rng = seededRandom(mib);
  for (let i = 0; i < size; i += 1 << 16)
    bytes.set(rng.bytes(1 << 16).subarray(0, Math.min(1 << 16, size - i)), i);
  let t = nowMs();
  blake3Bytes(bytes);
  const hashMs = nowMs() - t;
  t = nowMs();
  const copy = bytes.slice();
  const copyMs = nowMs() - t;
  void copy;
  const id = objectIdOf('artifact', bytes);
  for (const symbol_size of mib >= 256 ? [4096, 16384] : [1024, 4096, 16384]) {
    const p = { ...DEFAULT_REPAIR, symbol_size };
    const layout = layoutFor(size, p);
    t = nowMs();
    const repair = new Map<number, Uint8Array>();
    for (const s of encodeRepairSymbols(bytes, layout)) repair.set(s.id, s.data);
    const encMs = nowMs() - t;
    // 20 % source loss spread over every block (every 5th source symbol), repaired from repair symbols.
    const symbols = new Map<number, Uint8Array>();
    for (const b of layout.blocks) {
      let lost = 0;
      for (let i = 0; i < b.source_count; i++) {
        if (i % 5 === 0) lost++;
        else symbols.set(b.source_start + i, sourceSymbol(bytes, layout, b.source_start + i));
      }
      for (let i = 0; i < Math.min(b.repair_count, lost + 2); i++)
        symbols.set(b.repair_start + i, repair.get(b.repair_start + i)!);
    }
    t = nowMs();
    const r = await reconstructObject('artifact', id, layout, symbols);
    const decMs = nowMs() - t;
    if (!r) throw new Error('decode failed');
    const mbps = (ms: number) => round(size / 1e6 / (ms / 1000), 1);
    rows.push({
      object_mib: mib,
      symbol_size,
      encode_mb_s: mbps(encMs),
      decode_20pct_loss_mb_s: mbps(decMs),
      blake3_mb_s: mbps(hashMs),
      memcpy_mb_s: mbps(copyMs),
      encode_time_over_hash_time: round(encMs / hashMs, 2),
      decode_speed_over_hash_speed: round(hashMs / decMs, 3),
      encode_time_over_copy_time: round(encMs / copyMs, 1),
    });
  }
}
report('codec', {
  codec: 'raptorq 1.7.24 (wasm), 20% repair, >=2 repair symbols per block, blocks of <=256 symbols',
  blake3_backend: BLAKE3_BACKEND,
  goal: 'encode_time_over_hash_time < 2; decode_speed_over_hash_speed >= 0.25',
  rows,
});
