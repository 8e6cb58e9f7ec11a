/**
 * Typed events end to end: the engine reports what happened as typed events and the node maps
 * each one to exactly one node event — a torn tail cut at open is `log_torn_tail_cut` (not a
 * repair), an artifact that cannot be repaired at read time is `artifact_repair_started` then
 * `artifact_repair_failed` (not `_started` alone).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { EngineEvent } from '../../src/engine/engine-events.ts';
import { NODE_EVENT_OF } from '../../src/node/engine-event-bridge.ts';
import { createNode } from '../../src/node/index.ts';
import { tmpDir } from '../helpers/tmp.ts';

const docs = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `d${i}`, text: `event document ${i}` }));

test('every engine event type has exactly one node event name', () => {
  const types: EngineEvent['type'][] = Object.keys(NODE_EVENT_OF) as EngineEvent['type'][];
  assert.equal(new Set(types.map((t) => NODE_EVENT_OF[t])).size, types.length);
});

test('a torn tail cut at open is reported as log_torn_tail_cut, nothing else', async () => {
  const dir = tmpDir();
  const a = await createNode({
    data_dir: dir,
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
  });
  await a.ingest(docs(3));
  await a.stop();
  const logDir = path.join(dir, 'log');
  const seg = fs
    .readdirSync(logDir)
    .filter((f) => f.endsWith('.log'))
    .sort()
    .at(-1)!;
  fs.appendFileSync(path.join(logDir, seg), Buffer.from([0x40, 0, 0, 0, 1, 2, 3]));
  const b = await createNode({ data_dir: dir });
  const names = b.events.recent.map((e) => e.event);
  assert.deepEqual(
    names.filter((n) => !n.startsWith('generation_')),
    ['log_torn_tail_cut'],
  );
  const e = b.events.recent.find((x) => x.event === 'log_torn_tail_cut')!;
  assert.equal(e.severity, 'warn');
  assert.match(String(e.file), /\.log$/);
  assert.equal(b.engine.log.commitSeqHigh, 1, 'the acknowledged commit survived');
  await b.stop();
});

test('an artifact unrepairable at read time is artifact_repair_started then artifact_repair_failed', async () => {
  const dir = tmpDir();
  const a = await createNode({
    data_dir: dir,
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
  });
  await a.ingest(docs(20));
  assert.equal((await a.buildNow()).built, true);
  const m = await a.engine.generations.loadManifest(a.status().artifact_manifest_id!);
  const seg = m.lexical_artifacts.find((x) => x.role === 'segment')!.object_id;
  await a.stop();
  // Damage the segment and remove its repair symbols: no local repair, no peers.
  const file = path.join(dir, 'objects/artifact', seg.slice(0, 2), seg);
  const bytes = fs.readFileSync(file);
  bytes[9] ^= 0xff;
  fs.writeFileSync(file, bytes);
  fs.rmSync(path.join(dir, 'symbols/artifact', seg.slice(0, 2), seg));
  const b = await createNode({ data_dir: dir });
  await assert.rejects(b.search({ q: 'event', mode: 'lexical' }), /symbols from peers are needed/);
  const names = b.events.recent.map((e) => e.event);
  const started = names.indexOf('artifact_repair_started');
  assert.ok(started >= 0, names.join());
  assert.ok(names.indexOf('artifact_repair_failed') > started, names.join());
  assert.ok(!names.includes('artifact_repair_completed'));
  assert.equal(b.events.recent.find((e) => e.event === 'artifact_repair_failed')!.object_id, seg);
  await b.stop();
});
