/**
 * A compute worker thread (piscina, src/engine/compute-pool.ts): runs named tasks against the
 * node's data directory through its own handles. Errors travel back as plain data, so the caller
 * re-throws them with their code; a task never touches state the main thread owns in memory.
 */
import { threadId } from 'node:worker_threads';
import type { RepairParams } from '../codec/repair-descriptor.ts';
import { FsmeshError } from '../core/errors.ts';
import type { ObjectId, ObjectKind } from '../core/ids.ts';
import { nodeFsStorage, type Storage } from '../runtime/index.ts';
import { GenerationReader } from '../search/generation-reader.ts';
import { embedderFromSpec } from '../search/vector/embedder-spec.ts';
import { ObjectStore } from '../storage/object-store.ts';
import { SymbolStore } from '../storage/symbol-store.ts';
import { type BuildTaskInput, buildCandidateArtifacts, checkParent } from './build-task.ts';
import { buildStoredGraph } from './hnsw-graphs.ts';

export interface ComputeRequest {
  task: string;
  input: unknown;
}

export type ComputeReply =
  | { ok: true; value: unknown }
  | { ok: false; error: { code: string; message: string; details: Record<string, unknown> } };

/** One handle per data directory this thread has served, plus the last parent generation it opened. */
const dirs = new Map<
  string,
  { storage: Storage; objects: ObjectStore; tag: string; parent?: GenerationReader }
>();

function dirHandles(dataDir: string) {
  let h = dirs.get(dataDir);
  if (!h) {
    const storage = nodeFsStorage(dataDir);
    h = { storage, objects: ObjectStore.attach(storage, `w${threadId}.`), tag: `-w${threadId}` };
    dirs.set(dataDir, h);
  }
  return h;
}

async function buildGenerationTask(input: BuildTaskInput) {
  const h = dirHandles(input.data_dir);
  let parent: GenerationReader | null = null;
  if (input.parent) {
    const p = input.parent;
    // The next build's parent is usually this thread's last one: reuse it instead of re-reading.
    parent =
      h.parent?.artifact_manifest_id === p.artifact_manifest_id
        ? h.parent
        : await GenerationReader.open(h.objects, p.artifact_manifest_id, p.manifest);
    await parent.loadVectors();
    h.parent = parent;
  }
  checkParent(parent, input);
  return buildCandidateArtifacts(input, {
    storage: h.storage,
    objects: h.objects,
    symbols: new SymbolStore(h.storage, h.objects, input.settings.repair, undefined, h.tag),
    parent,
    embedder: embedderFromSpec(input.embedder),
    quality_embedder: input.quality_embedder ? embedderFromSpec(input.quality_embedder) : undefined,
  });
}

async function buildHnswTask(input: { data_dir: string; shard_id: ObjectId; repair: RepairParams }) {
  const h = dirHandles(input.data_dir);
  return buildStoredGraph(input.shard_id, {
    storage: h.storage,
    objects: h.objects,
    symbols: new SymbolStore(h.storage, h.objects, input.repair, undefined, h.tag),
  });
}

async function encodeSymbolsTask(input: {
  data_dir: string;
  kind: ObjectKind;
  id: ObjectId;
  params: RepairParams;
}) {
  const h = dirHandles(input.data_dir);
  await new SymbolStore(h.storage, h.objects, input.params, undefined, h.tag).ensure(input.kind, input.id);
  return null;
}

const TASKS: Record<string, (input: never) => Promise<unknown>> = {
  build_generation: buildGenerationTask,
  build_hnsw: buildHnswTask,
  encode_symbols: encodeSymbolsTask,
};

export default async function runComputeTask(req: ComputeRequest): Promise<ComputeReply> {
  try {
    const fn = TASKS[req.task];
    if (!fn) throw new FsmeshError('invalid_input', `unknown compute task ${JSON.stringify(req.task)}`);
    return { ok: true, value: await fn(req.input as never) };
  } catch (err) {
    const e = err instanceof FsmeshError ? err : null;
    return {
      ok: false,
      error: {
        code: e?.code ?? 'internal',
        message: err instanceof Error ? err.message : String(err),
        details: e?.details ?? {},
      },
    };
  }
}
