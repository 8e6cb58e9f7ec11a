/**
 * `fsmesh verify`: re-hash every stored object; every object a retained generation names must
 * exist; every record of the capsule log and every symbol file must check. `verifyDataDir` runs
 * over a read-only view of the data directory: it reports a torn tail, it does not cut it.
 */
import type { RepairParams } from '../codec/repair-descriptor.ts';
import { DATA_DIR, logSegmentPath } from '../core/data-dir-layout.ts';
import { FsmeshError } from '../core/errors.ts';
import { type ObjectId, objectIdOf } from '../core/ids.ts';
import { decodeManifest, type GenerationManifest } from '../core/manifest.ts';
import { GENESIS_MARKER_ID } from '../core/marker.ts';
import { isNotFound, readOnlyStorage, type Storage } from '../runtime/index.ts';
import { checkDataDirFormat } from '../storage/data-dir.ts';
import { decodePointer, type GenerationRef } from '../storage/generations.ts';
import { scanSegment } from '../storage/log-format.ts';
import { ObjectStore } from '../storage/object-store.ts';
import { SymbolStore } from '../storage/symbol-store.ts';

export interface VerifyReport {
  objects_checked: number;
  corrupt: { kind: string; object_id: ObjectId }[];
  missing: { kind: string; object_id: ObjectId }[];
  commit_seq_high: number;
}

/** What verification needs of the generation store: the retained list and their manifests. */
export interface RetainedGenerations {
  readonly retained: GenerationRef[];
  loadManifest(id: ObjectId): Promise<GenerationManifest>;
}

export async function verifyObjects(
  objects: ObjectStore,
  generations: RetainedGenerations,
  commit_seq_high: number,
): Promise<VerifyReport> {
  const corrupt: { kind: string; object_id: ObjectId }[] = [];
  const missing: { kind: string; object_id: ObjectId }[] = [];
  let checked = 0;
  for (const kind of ['manifest', 'artifact'] as const) {
    for (const id of await objects.list(kind)) {
      checked++;
      if ((await objects.check(kind, id)) === 'corrupt') corrupt.push({ kind, object_id: id });
    }
  }
  for (const r of generations.retained) {
    if ((await objects.check('manifest', r.artifact_manifest_id)) !== 'ok') {
      if (!corrupt.some((c) => c.object_id === r.artifact_manifest_id))
        missing.push({ kind: 'manifest', object_id: r.artifact_manifest_id });
      continue;
    }
    const m = await generations.loadManifest(r.artifact_manifest_id);
    for (const a of [...m.lexical_artifacts, ...m.vector_artifacts]) {
      if (!(await objects.has('artifact', a.object_id)) && !missing.some((x) => x.object_id === a.object_id))
        missing.push({ kind: 'artifact', object_id: a.object_id });
    }
  }
  return { objects_checked: checked, corrupt, missing, commit_seq_high };
}

export interface DataDirReport extends VerifyReport {
  ok: boolean;
  log_ok: boolean;
  log_problems: { file: string; offset?: number; problem: string }[];
  symbols_checked: number;
  symbol_problems: { object_id: ObjectId; problem: string }[];
}

/** Everything `verify` checks, without changing a byte (a read-only view of the storage). */
export async function verifyDataDir(storage: Storage, repair: RepairParams): Promise<DataDirReport> {
  const ro = readOnlyStorage(storage);
  await checkDataDirFormat(ro);
  const log = await verifyLog(ro);
  const objects = ObjectStore.openReadOnly(ro);
  let retained: GenerationRef[] = [];
  try {
    retained = decodePointer(await ro.readFile(DATA_DIR.pointer_file)).retained;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const generations: RetainedGenerations = {
    retained,
    loadManifest: async (id) => decodeManifest(await objects.get('manifest', id)),
  };
  const r = await verifyObjects(objects, generations, log.commit_seq_high);
  const symbols = new SymbolStore(ro, objects, repair);
  const symbol_problems: DataDirReport['symbol_problems'] = [];
  let symbols_checked = 0;
  for (const id of await objects.list('artifact')) {
    if (!(await symbols.has('artifact', id))) continue;
    symbols_checked++;
    const problem = await symbols.verifyFile('artifact', id);
    if (problem) symbol_problems.push({ object_id: id, problem });
  }
  const log_ok = log.problems.length === 0;
  return {
    ...r,
    ok: log_ok && r.corrupt.length === 0 && r.missing.length === 0 && symbol_problems.length === 0,
    log_ok,
    log_problems: log.problems,
    symbols_checked,
    symbol_problems,
  };
}

/** Every segment scanned and every sealed segment hashed; a torn tail is a finding here. */
async function verifyLog(
  ro: Storage,
): Promise<{ commit_seq_high: number; problems: DataDirReport['log_problems'] }> {
  const names = (await ro.list(DATA_DIR.log_dir)).filter((n) => n.endsWith('.log'));
  const problems: DataDirReport['log_problems'] = [];
  let expectSeq = 1;
  let prev = GENESIS_MARKER_ID;
  for (let i = 0; i < names.length; i++) {
    const file = logSegmentPath(names[i]);
    try {
      const scan = scanSegment(await ro.readFile(file), file, i === names.length - 1, expectSeq, prev);
      for (const rec of scan.records) prev = rec.marker_id;
      expectSeq += scan.records.length;
      if (scan.torn)
        problems.push({
          file,
          offset: scan.torn.offset,
          problem: `torn tail (${scan.torn.size_bytes} bytes: ${scan.torn.reason}); \`fsmesh verify --fix\` or starting the node cuts it`,
        });
    } catch (err) {
      if (!(err instanceof FsmeshError)) throw err;
      problems.push({ file, offset: err.details.offset as number | undefined, problem: err.message });
      break; // later segments cannot be checked against a broken chain
    }
  }
  for (const f of (await ro.list(DATA_DIR.log_dir)).filter((n) => n.endsWith('.log.id'))) {
    const id = new TextDecoder().decode(await ro.readFile(logSegmentPath(f))).trim();
    const bytes = await ro.readFile(logSegmentPath(f.slice(0, -3))).catch(() => null);
    if (!bytes || objectIdOf('log_segment', bytes) !== id)
      problems.push({
        file: logSegmentPath(f.slice(0, -3)),
        problem: `sealed segment does not hash to ${id}`,
      });
  }
  return { commit_seq_high: expectSeq - 1, problems };
}
