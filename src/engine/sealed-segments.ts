/**
 * Sealed capsule-log segments are durable objects with repair symbols (§3): protected when sealed,
 * healed before the log verifies its chain at open.
 */
import { objectIdOf } from '../core/ids.ts';
import { type Runtime, writeFileAtomic } from '../runtime/index.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { SymbolStore } from '../storage/symbol-store.ts';
import type { EngineEvent } from './engine-events.ts';

/** Store a sealed segment as a `log_segment` object with repair symbols; record its id beside it. */
export async function protectSealedSegment(
  runtime: Runtime,
  objects: ObjectStore,
  symbols: SymbolStore,
  name: string,
): Promise<void> {
  const bytes = await runtime.storage.readFile(`log/${name}`);
  const id = await objects.put('log_segment', bytes);
  await objects.syncDirs();
  await symbols.ensure('log_segment', id, bytes);
  await writeFileAtomic(runtime.storage, `log/${name}.id`, new TextEncoder().encode(`${id}\n`));
}

/** Before the log opens: every sealed segment must hash to its recorded id; rebuild it if not. */
export async function repairSealedSegments(
  runtime: Runtime,
  objects: ObjectStore,
  symbols: SymbolStore,
  emit: (e: EngineEvent) => void,
): Promise<void> {
  const st = runtime.storage;
  for (const f of await st.list('log')) {
    if (!f.endsWith('.log.id')) continue;
    const name = f.slice(0, -3);
    const id = new TextDecoder().decode(await st.readFile(`log/${f}`)).trim();
    const bytes = await st.readFile(`log/${name}`).catch(() => null);
    if (bytes && objectIdOf('log_segment', bytes) === id) continue;
    const r = await symbols.checkAndRepairLocally('log_segment', id);
    if (r.outcome !== 'ok' && r.outcome !== 'repaired') {
      emit({ type: 'log_segment_unrepairable', segment: name, object_id: id, outcome: r.outcome });
      continue; // the log's own checks will report it precisely
    }
    await writeFileAtomic(st, `log/${name}`, await objects.get('log_segment', id));
    emit({ type: 'log_segment_repaired', segment: name, object_id: id });
  }
}
