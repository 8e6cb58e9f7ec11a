/**
 * Scrubbing (§8.1): re-read every stored object at a bounded rate (bytes/s budget), verify it
 * against its id, and rebuild corrupt ones from the node's own intact symbols. What cannot be
 * rebuilt locally is reported as unrepairable (the repair actor then asks peers). Failures are
 * counted and returned, never hidden.
 */
import type { ObjectId, ObjectKind } from '../core/ids.ts';
import type { Clock } from '../runtime/index.ts';
import type { ObjectStore } from './object-store.ts';
import type { SymbolStore } from './symbol-store.ts';

export interface ScrubReport {
  objects_checked: number;
  bytes_checked: number;
  corrupt_found: number;
  repaired: number;
  repaired_bytes: number;
  unrepairable: ObjectId[];
}

export interface ScrubOptions {
  /** Read budget; 0 = unlimited. */
  bytes_per_s: number;
  kinds?: ObjectKind[];
  /** Only these ids (e.g. the artifacts of retained generations); default: every stored object. */
  ids?: Map<ObjectKind, ObjectId[]>;
  onProgress?: (r: ScrubReport) => void;
}

export async function scrub(
  objects: ObjectStore,
  symbols: SymbolStore,
  clock: Clock,
  opts: ScrubOptions,
): Promise<ScrubReport> {
  const report: ScrubReport = {
    objects_checked: 0,
    bytes_checked: 0,
    corrupt_found: 0,
    repaired: 0,
    repaired_bytes: 0,
    unrepairable: [],
  };
  for (const kind of opts.kinds ?? (['artifact'] as ObjectKind[])) {
    const ids = opts.ids?.get(kind) ?? (await objects.list(kind));
    for (const id of ids) {
      const size = (await objects.has(kind, id)) ? await objects.size(kind, id) : 0;
      const r = await symbols.checkAndRepairLocally(kind, id);
      report.objects_checked++;
      report.bytes_checked += size;
      if (r.outcome !== 'ok') report.corrupt_found++;
      if (r.outcome === 'repaired') {
        report.repaired++;
        report.repaired_bytes += r.repaired_bytes;
      } else if (r.outcome === 'unrepairable' || r.outcome === 'missing') report.unrepairable.push(id);
      opts.onProgress?.(report);
      if (opts.bytes_per_s > 0 && size > 0) await clock.sleep((size / opts.bytes_per_s) * 1000);
    }
  }
  return report;
}
