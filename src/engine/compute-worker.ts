/**
 * A compute worker thread (piscina, src/engine/compute-pool.ts): runs named tasks against the
 * node's data directory through its own handles. Errors travel back as plain data, so the caller
 * re-throws them with their code; a task never touches state the main thread owns in memory.
 */
import { threadId } from 'node:worker_threads';
import { type BlockDecodeInput, decodeBlockInput } from '../codec/raptorq.ts';
import type { RepairParams } from '../codec/repair-descriptor.ts';
import type { UpsertOp } from '../core/capsule.ts';
import { FsmeshError } from '../core/errors.ts';
import type { ObjectId, ObjectKind } from '../core/ids.ts';
import type { GenerationManifest, Quantization } from '../core/manifest.ts';
import { nodeFsStorage, type Storage } from '../runtime/index.ts';
import { GenerationReader } from '../search/generation-reader.ts';
import type { EmbedderSpec } from '../search/vector/embedder.ts';
import { embedderFromSpec } from '../search/vector/embedder-spec.ts';
import { ObjectStore } from '../storage/object-store.ts';
import { SymbolStore } from '../storage/symbol-store.ts';
import { type AssembleTaskArgs, assembleStored, buildStoredPart, checkParent } from './build-task.ts';
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

/** Task build_part: one part of a window (src/engine/build-task.ts). */
export interface PartTaskInput {
  data_dir: string;
  ops: UpsertOp[];
  quantization: Quantization;
  repair: RepairParams;
  embedder: EmbedderSpec;
  quality_embedder?: EmbedderSpec;
}

async function buildPartTask(input: PartTaskInput) {
  const h = dirHandles(input.data_dir);
  return buildStoredPart(
    input.ops,
    {
      embedder: embedderFromSpec(input.embedder),
      quality_embedder: input.quality_embedder ? embedderFromSpec(input.quality_embedder) : undefined,
      quantization: input.quantization,
    },
    { objects: h.objects, symbols: new SymbolStore(h.storage, h.objects, input.repair, undefined, h.tag) },
  );
}

/** Task assemble_generation: the parent is opened here (the engine pinned it: same id checked). */
export interface AssembleTaskInput extends AssembleTaskArgs {
  data_dir: string;
  parent: { artifact_manifest_id: ObjectId; manifest: GenerationManifest } | null;
}

async function assembleTask(input: AssembleTaskInput) {
  const h = dirHandles(input.data_dir);
  let parent: GenerationReader | null = null;
  if (input.parent) {
    const p = input.parent;
    // The next build's parent is usually this thread's last one: reuse it instead of re-reading.
    parent =
      h.parent?.artifact_manifest_id === p.artifact_manifest_id
        ? h.parent
        : // Its vectors are not read: the assembly carries shards by id and merges read theirs.
          await GenerationReader.open(h.objects, p.artifact_manifest_id, p.manifest, undefined, undefined, {
            vectors: 'lazy',
          });
    h.parent = parent;
  }
  checkParent(parent, input.parent);
  const { data_dir: _dir, parent: _parent, ...args } = input;
  return assembleStored(args, {
    objects: h.objects,
    symbols: new SymbolStore(h.storage, h.objects, input.settings.repair, undefined, h.tag),
    parent,
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
  build_part: buildPartTask,
  assemble_generation: assembleTask,
  build_hnsw: buildHnswTask,
  encode_symbols: encodeSymbolsTask,
  decode_block: async (input: BlockDecodeInput) => decodeBlockInput(input),
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
