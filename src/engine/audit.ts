/**
 * Deep audit (`fsmesh audit`, docs/replication.md): replay a data directory's capsule log in a
 * scratch directory, rebuild every retained generation at its recorded boundaries (its identity
 * and number), and compare each manifest id — and so every object it names — with what is stored;
 * every stored object is re-hashed too. Builds are deterministic, so any difference is a divergence:
 * a drifting build, a damaged object, or a history that is not the log's. The source is only read
 * (its log is copied into the scratch directory first).
 *
 * The replay starts from genesis when the oldest retained generation is the first one, else from a
 * checkpoint: the oldest retained generation (or, with `from`, the newest one before that commit),
 * taken as stored. It stops at the first divergence: later generations are built on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { FsmeshError } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import { decodeManifest, type GenerationManifest } from '../core/manifest.ts';
import {
  isNotFound,
  nodeFsStorage,
  type Runtime,
  readOnlyStorage,
  seededRandom,
  systemClock,
} from '../runtime/index.ts';
import { CapsuleLog } from '../storage/capsule-log.ts';
import { checkDataDirFormat } from '../storage/data-dir.ts';
import { decodePointer } from '../storage/generations.ts';
import { ObjectStore } from '../storage/object-store.ts';
import type { EngineConfig } from './engine-config.ts';
import { LocalEngine } from './local-engine.ts';

export interface AuditDivergence {
  generation_id: string;
  /** The first commit of the generation's window: where its history and the replay part. */
  first_commit_seq: number;
  commit_seq_high: number;
  stored_manifest_id: ObjectId | null;
  replayed_manifest_id: ObjectId | null;
  /** Stored artifacts the replay did not produce (or that are damaged on disk). */
  differing_objects: ObjectId[];
  reason: string;
}

export interface AuditReport {
  generations_checked: number;
  objects_checked: number;
  divergences: AuditDivergence[];
  replayed_commits: number;
  /** The generation the replay started from (null: genesis). */
  checkpoint: string | null;
}

export interface AuditOptions {
  /** Start the replay at this commit (from the newest retained generation before it). */
  from?: number;
  /** The engine configuration to rebuild with (the shard and embedders of the stored manifests). */
  config: (first: GenerationManifest) => EngineConfig;
  onProgress?: (done: number, total: number) => void;
  /**
   * Audit these generations instead of the directory's own — a peer's, oldest first, as a chain
   * (`fsmesh audit --peer`): the replay uses the local log; their artifacts are not local, so only
   * manifest ids are compared. It starts at genesis, or at the peer's oldest generation when this
   * directory holds the same one (same manifest id) to start from.
   */
  peerChain?: Stored[];
}

export interface Stored {
  id: ObjectId;
  manifest: GenerationManifest;
}

/** The retained generations, oldest first, as a chain (each built on the one before). */
async function retainedChain(objects: ObjectStore, pointerBytes: Uint8Array): Promise<Stored[]> {
  const refs = [...decodePointer(pointerBytes).retained].sort((a, b) => a.generation_seq - b.generation_seq);
  const out: Stored[] = [];
  for (const r of refs) {
    const manifest = decodeManifest(await objects.get('manifest', r.artifact_manifest_id));
    // A gap (a generation no longer retained between two that are): the chain restarts after it.
    if (out.length && manifest.parent_generation_id !== out[out.length - 1].manifest.generation_id)
      out.length = 0;
    out.push({ id: r.artifact_manifest_id, manifest });
  }
  return out;
}

function startIndex(chain: Stored[], from: number | undefined): number {
  if (from === undefined) return chain[0].manifest.parent_generation_id === null ? -1 : 0;
  if (
    chain[0].manifest.parent_generation_id === null &&
    from <= chain[0].manifest.commit_range.from_commit_seq
  )
    return -1;
  let cp = -2;
  for (let i = 0; i < chain.length; i++) if (chain[i].manifest.commit_seq_high < from) cp = i;
  if (cp === -2)
    throw new FsmeshError(
      'not_found',
      `no retained generation ends before commit ${from}: the oldest retained is ${chain[0].manifest.generation_id} (commits up to ${chain[0].manifest.commit_seq_high})`,
    );
  return cp;
}

async function copyCommits(src: CapsuleLog, dst: CapsuleLog, upTo: number): Promise<number> {
  const from = dst.commitSeqHigh + 1;
  for (let seq = from; seq <= upTo; seq++) {
    const r = await src.read(seq);
    await dst.appendReplicated(r.marker, r.capsule_bytes);
  }
  return Math.max(0, upTo - from + 1);
}

/** Take a stored generation as the checkpoint: its manifest and artifacts, activated as they are. */
async function adoptCheckpoint(engine: LocalEngine, objects: ObjectStore, g: Stored): Promise<number> {
  let n = 0;
  for (const a of [...g.manifest.lexical_artifacts, ...g.manifest.vector_artifacts]) {
    const bytes = await objects.get('artifact', a.object_id);
    await engine.objects.putVerified('artifact', a.object_id, bytes);
    await engine.symbols.ensure('artifact', a.object_id, bytes);
    n++;
  }
  const id = await engine.generations.putManifest(g.manifest);
  if (id !== g.id) throw new FsmeshError('internal', `checkpoint manifest ${g.id} re-encodes to ${id}`);
  await engine.gate.activate({ manifest_id: id, source: 'capsule_replay' });
  return n;
}

export async function auditDataDir(
  dataDir: string,
  scratchDir: string,
  o: AuditOptions,
): Promise<AuditReport> {
  const ro = readOnlyStorage(nodeFsStorage(path.resolve(dataDir)));
  await checkDataDirFormat(ro);
  const objects = ObjectStore.openReadOnly(ro);
  let pointerBytes: Uint8Array;
  try {
    pointerBytes = await ro.readFile(DATA_DIR.pointer_file);
  } catch (err) {
    if (isNotFound(err)) throw new FsmeshError('not_found', `${dataDir}: no generation to audit yet`);
    throw err;
  }
  const local = await retainedChain(objects, pointerBytes);
  const chain = o.peerChain ?? local;
  if (chain.length === 0) throw new FsmeshError('not_found', 'no generation to audit');
  const start = o.peerChain ? peerStart(o.peerChain, local) : startIndex(chain, o.from);
  // The source log is copied, then opened: opening may cut a torn tail, which must not touch it.
  fs.mkdirSync(path.join(scratchDir, 'source'), { recursive: true });
  fs.cpSync(path.join(dataDir, DATA_DIR.log_dir), path.join(scratchDir, 'source', DATA_DIR.log_dir), {
    recursive: true,
  });
  const rt = (dir: string): Runtime => ({
    clock: systemClock,
    random: seededRandom(1),
    storage: nodeFsStorage(dir),
  });
  const src = await CapsuleLog.open({
    storage: rt(path.join(scratchDir, 'source')).storage,
    clock: systemClock,
  });
  const engine = await LocalEngine.open(rt(path.join(scratchDir, 'replay')), o.config(chain[0].manifest));
  const report: AuditReport = {
    generations_checked: 0,
    objects_checked: 0,
    divergences: [],
    replayed_commits: 0,
    checkpoint: start >= 0 ? chain[start].manifest.generation_id : null,
  };
  try {
    if (start >= 0) {
      await copyCommits(src, engine.log, chain[start].manifest.commit_seq_high);
      report.objects_checked += await adoptCheckpoint(engine, objects, chain[start]);
    }
    const todo = chain.slice(start + 1);
    for (const [i, g] of todo.entries()) {
      o.onProgress?.(i, todo.length);
      const m = g.manifest;
      if (src.commitSeqHigh < m.commit_seq_high) {
        report.divergences.push(divergence(g, null, [], `the log ends at commit ${src.commitSeqHigh}`));
        break;
      }
      report.replayed_commits += await copyCommits(src, engine.log, m.commit_seq_high);
      const d = await checkGeneration(engine, o.peerChain ? null : objects, g, report);
      if (d) {
        report.divergences.push(d);
        break;
      }
    }
    o.onProgress?.(todo.length, todo.length);
  } finally {
    await engine.close();
    await src.close();
  }
  return report;
}

function divergence(
  g: Stored,
  replayed: ObjectId | null,
  objectsDiffer: ObjectId[],
  reason: string,
): AuditDivergence {
  return {
    generation_id: g.manifest.generation_id,
    first_commit_seq: g.manifest.commit_range.from_commit_seq,
    commit_seq_high: g.manifest.commit_seq_high,
    stored_manifest_id: g.id,
    replayed_manifest_id: replayed,
    differing_objects: objectsDiffer,
    reason,
  };
}

/** Where a peer's chain starts: genesis, or its oldest generation when held here too. */
function peerStart(peer: Stored[], local: Stored[]): number {
  if (peer[0].manifest.parent_generation_id === null) return -1;
  if (local.some((l) => l.id === peer[0].id)) return 0;
  throw new FsmeshError(
    'not_found',
    `the peer's oldest retained generation ${peer[0].manifest.generation_id} is not held here: nothing to replay its chain from`,
  );
}

/** Rebuild one generation and compare; null when it is identical (then it is activated). */
async function checkGeneration(
  engine: LocalEngine,
  /** The stored objects to re-hash (null: a peer's generation, whose objects are not here). */
  objects: ObjectStore | null,
  g: Stored,
  report: AuditReport,
): Promise<AuditDivergence | null> {
  const m = g.manifest;
  const stored = [...m.lexical_artifacts, ...m.vector_artifacts].map((a) => a.object_id);
  const damaged: ObjectId[] = [];
  for (const id of objects ? stored : []) {
    report.objects_checked++;
    if ((await objects!.check('artifact', id)) !== 'ok') damaged.push(id);
  }
  const cand = await engine.buildCandidate(m.commit_seq_high, {
    created_by: m.created_by,
    generation_seq: m.generation_seq,
  });
  if (!cand) return divergence(g, null, [], 'the replay built nothing for this window');
  try {
    report.generations_checked++;
    if (cand.manifest_id !== g.id) {
      const produced = new Set(
        [...cand.manifest.lexical_artifacts, ...cand.manifest.vector_artifacts].map((a) => a.object_id),
      );
      return divergence(
        g,
        cand.manifest_id,
        stored.filter((id) => !produced.has(id)),
        objects
          ? 'the rebuilt generation differs from the stored one'
          : "the peer's generation differs from the local replay",
      );
    }
    if (damaged.length)
      return divergence(g, cand.manifest_id, damaged, 'stored objects do not hash to their ids');
    await engine.gate.activate({ manifest_id: cand.manifest_id, source: 'capsule_replay' });
    return null;
  } finally {
    cand.release();
  }
}
