/**
 * The compute seam (src/runtime/compute.ts): a build on a worker thread writes exactly what the
 * same build inline writes — the same manifest ids generation after generation, through deletes,
 * a merge and an HNSW graph — and a worker's error comes back with its code. RaptorQ decoding (a
 * bootstrap's blocks short of source symbols, a local repair) runs there too, with the same bytes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_REPAIR } from '../../src/codec/repair-descriptor.ts';
import { encodeRepairSymbols, layoutFor, reconstructObject, sourceSymbol } from '../../src/codec/symbols.ts';
import { objectIdOf } from '../../src/core/ids.ts';
import { workerCompute } from '../../src/engine/compute-pool.ts';
import { defaultEngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { type Compute, nodeFsStorage, seededRandom } from '../../src/runtime/index.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { SymbolStore } from '../../src/storage/symbol-store.ts';
import { runtimeAt, tmpDir } from '../helpers/tmp.ts';

const upserts = (n: number, from: number) =>
  Array.from({ length: n }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `d${from + i}`,
    title: `title ${(from + i) % 7}`,
    text: `worker build document ${from + i} about ${['rivers', 'mountains', 'cities'][(from + i) % 3]}`,
  }));

async function buildHistory(e: LocalEngine): Promise<string[]> {
  const ids: string[] = [];
  const step = async () => {
    const r = await e.buildAndActivate();
    ids.push(r!.ref.artifact_manifest_id);
  };
  await e.ingest(upserts(60, 0));
  await step();
  await e.ingest(upserts(40, 30)); // rewrites d30..d59
  await e.ingest([{ op: 'delete', doc_id: 'd5' }]);
  await step();
  for (let g = 0; g < 3; g++) {
    await e.ingest(upserts(10, 100 + g * 10));
    await step(); // the fourth segment makes the merge policy fold the smallest ones
  }
  return ids;
}

test('a build on a worker thread stores the same generations, byte for byte, as inline', async () => {
  // Windows over 25 upserts are cut into segments, each with its own graph: built in parallel.
  const cfg = { max_segments: 4, hnsw_min_rows: 20, segment_max_docs: 25 };
  const inlineDir = tmpDir();
  const workerDir = tmpDir();
  const lost: string[] = [];
  const pool = workerCompute({ threads: 2, onThreadLost: (t) => lost.push(t) });
  const tasks: string[] = [];
  const compute = {
    ...pool,
    run: <O>(t: string, i: unknown, inl: () => Promise<O>) => {
      tasks.push(t);
      return pool.run(t, i, inl);
    },
  };
  try {
    const a = await LocalEngine.open(runtimeAt(inlineDir), defaultEngineConfig(cfg));
    const b = await LocalEngine.open({ ...runtimeAt(workerDir), compute }, defaultEngineConfig(cfg));
    const inlineIds = await buildHistory(a);
    const workerIds = await buildHistory(b);
    assert.deepEqual(workerIds, inlineIds);
    // Every build went to the thread, and none fell back inline.
    assert.equal(tasks.filter((t) => t === 'assemble_generation').length, 5);
    // The first window (60 upserts) is three parts of at most 25: three build_part tasks.
    assert.ok(tasks.filter((t) => t === 'build_part').length >= 7, tasks.join());
    assert.ok(tasks.filter((t) => t === 'build_hnsw').length >= 3, tasks.join());
    assert.deepEqual(lost, []);
    const first = await b.generations.loadManifest(workerIds[0]);
    assert.equal(first.lexical_artifacts.filter((l) => l.role === 'segment').length, 3);
    assert.equal(first.vector_artifacts.filter((v) => v.role === 'hnsw').length, 3);
    const m = await b.generations.loadManifest(workerIds.at(-1)!);
    assert.ok(
      m.vector_artifacts.some((v) => v.role === 'hnsw'),
      'the worker built an HNSW graph',
    );
    // Everything the worker wrote is there, hashes to its id, and has its repair symbols.
    const report = await b.verify();
    assert.deepEqual([report.corrupt, report.missing], [[], []]);
    for (const art of [...m.lexical_artifacts, ...m.vector_artifacts])
      assert.ok(await b.symbols.has('artifact', art.object_id), `symbols of ${art.object_id}`);
    // The worker's temporary files never stay behind.
    assert.deepEqual(fs.readdirSync(path.join(workerDir, 'objects', 'tmp')), []);
    const hits = await b.search({ q: 'rivers', k: 5, mode: 'lexical' });
    assert.ok(hits.hits.length > 0);
    await a.close();
    await b.close();
  } finally {
    await pool.close();
  }
});

test('a worker task error comes back with its code; an input that cannot travel runs inline', async () => {
  const compute = workerCompute({ threads: 1 });
  try {
    await assert.rejects(
      compute.run('no_such_task', {}, async () => 'inline'),
      (err: Error & { code?: string }) =>
        err.code === 'invalid_input' && /unknown compute task/.test(err.message),
    );
    // A function cannot be cloned to a thread: the task runs here instead of failing.
    const lost: string[] = [];
    const c2 = workerCompute({ threads: 1, onThreadLost: (t) => lost.push(t) });
    assert.equal(await c2.run('encode_symbols', { f: () => 1 }, async () => 'inline'), 'inline');
    assert.deepEqual(lost, ['encode_symbols']);
    await c2.close();
  } finally {
    await compute.close();
  }
});

test('RaptorQ decoding runs on a worker thread: reconstruction and assembly give the inline bytes', async () => {
  const pool = workerCompute({ threads: 1 });
  const tasks: string[] = [];
  const inlined: string[] = [];
  // The pool, recording which tasks reached it and which fell back to the caller's thread.
  const compute: Compute = {
    threads: pool.threads,
    run: (task, input, inline) => {
      tasks.push(task);
      return pool.run(task, input, () => {
        inlined.push(task);
        return inline();
      });
    },
    close: () => pool.close(),
  };
  try {
    const params = { ...DEFAULT_REPAIR, symbol_size: 512, max_block_symbols: 64 };
    const bytes = seededRandom(21).bytes(100_000);
    const id = objectIdOf('artifact', bytes);
    const layout = layoutFor(bytes.length, params);
    const repair = new Map<number, Uint8Array>();
    for (const s of encodeRepairSymbols(bytes, layout)) repair.set(s.id, s.data);
    // Every block loses its first two sources and gets two repair symbols instead; the symbols
    // are views into one shared buffer, as symbols cut from a peer's frame are.
    const shared = new Uint8Array(layout.source_symbols * 512 + layout.repair_symbols * 512);
    const symbols = new Map<number, Uint8Array>();
    let at = 0;
    const put = (sid: number, data: Uint8Array) => {
      shared.set(data, at);
      symbols.set(sid, shared.subarray(at, at + data.length));
      at += data.length;
    };
    for (const b of layout.blocks) {
      for (let i = 2; i < b.source_count; i++)
        put(b.source_start + i, sourceSymbol(bytes, layout, b.source_start + i));
      put(b.repair_start, repair.get(b.repair_start)!);
      put(b.repair_start + 1, repair.get(b.repair_start + 1)!);
    }
    const onThread = await reconstructObject('artifact', id, layout, symbols, compute);
    const inline = await reconstructObject('artifact', id, layout, symbols);
    assert.ok(onThread && inline);
    assert.equal(onThread.blocks_decoded, layout.blocks.length);
    assert.ok(Buffer.from(onThread.bytes).equals(Buffer.from(bytes)));
    assert.ok(Buffer.from(inline.bytes).equals(Buffer.from(bytes)));
    assert.deepEqual(
      tasks,
      layout.blocks.map(() => 'decode_block'),
    );

    // A fetch's assembly decodes its short blocks through the store's compute.
    tasks.length = 0;
    const storage = nodeFsStorage(tmpDir());
    const objects = await ObjectStore.open(storage);
    const store = new SymbolStore(storage, objects, params, compute);
    const a = await store.assemble(id, layout);
    await a.putRuns(
      [...symbols].sort((x, y) => x[0] - y[0]).map(([first, data]) => ({ first, data: data.slice() })),
    );
    assert.equal(await store.completeAssembly(a), true);
    assert.ok(Buffer.from(await objects.get('artifact', id)).equals(Buffer.from(bytes)));
    assert.deepEqual(
      tasks,
      layout.blocks.map(() => 'decode_block'),
    );
    assert.deepEqual(inlined, [], 'every decode ran on the thread');
  } finally {
    await compute.close();
  }
});
