/**
 * One activation gate: every path that can make a generation live — a node's build, the CLI's
 * ingest (engine.buildAndActivate), a manual activation, a rollback, a replica's peer sync and its
 * capsule replay — goes through `engine.gate`. A planted failing warm-up blocks each of them, the
 * pointer never moves, and each failure is reported with its source.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { composeNode } from '../../src/compose/compose-node.ts';
import type { EngineEvent } from '../../src/engine/engine-events.ts';
import { defaultEngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { simCluster } from '../helpers/sim-cluster.ts';
import { runtimeAt, tmpDir } from '../helpers/tmp.ts';

const docs = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({
    op: 'upsert' as const,
    doc_id: `d${from + i}`,
    text: `gate document ${from + i}`,
  }));

test('local paths: build, CLI ingest, manual activation and rollback all stop at a failing warm-up', async () => {
  const dir = tmpDir();
  const events: EngineEvent[] = [];
  const e = await LocalEngine.open(runtimeAt(dir), defaultEngineConfig(), { onEvent: (x) => events.push(x) });
  await e.ingest(docs(3));
  const g1 = await e.buildAndActivate();
  await e.ingest(docs(3, 10));
  const g2 = await e.buildAndActivate();
  assert.equal(e.generations.active?.generation_id, 'gen-2');
  e.gate.injectFault('warm', 'planted', Number.POSITIVE_INFINITY);
  // CLI ingest path.
  await e.ingest(docs(2, 20));
  await assert.rejects(e.buildAndActivate(), /injected activation failure at warm: planted/);
  // Manual activation of an older, valid generation.
  await assert.rejects(e.activateManifest(g1!.ref.artifact_manifest_id), /planted/);
  // Rollback.
  await assert.rejects(e.rollback(), /planted/);
  assert.equal(
    e.generations.active?.artifact_manifest_id,
    g2!.ref.artifact_manifest_id,
    'pointer never moved',
  );
  const failed = events.filter((x) => x.type === 'generation_activation_failed');
  assert.deepEqual(
    failed.map((x) => (x as { source: string }).source),
    ['cli_ingest', 'cli_ingest', 'rollback'],
  );
  e.gate.clearFault();
  const r = await e.rollback();
  assert.equal(r.to.generation_id, 'gen-1');
  const ok = events
    .filter((x) => x.type === 'generation_activated')
    .map((x) => (x as { source: string }).source);
  assert.deepEqual(ok, ['cli_ingest', 'cli_ingest', 'rollback']);
  await e.close();
  // The node's builder goes through the same gate.
  const { node } = await composeNode({
    node: { data_dir: tmpDir(), build: { batch_max_commits: 1000, build_interval_ms: 60_000 } },
  });
  const seen: Record<string, unknown>[] = [];
  node.events.on((x) => seen.push(x));
  await node.ingestOps(docs(2));
  node.engine.gate.injectFault('warm', 'planted', Number.POSITIVE_INFINITY);
  const out = await node.buildNow();
  assert.equal(out.built, false);
  assert.equal(node.status().generation_id, null);
  assert.ok(seen.some((x) => x.event === 'generation_activation_failed' && x.source === 'build'));
  node.engine.gate.clearFault();
  assert.equal((await node.buildNow()).built, true);
  await node.stop();
});

test('replica paths: peer sync and capsule replay stop at a failing warm-up, then succeed once it heals', async () => {
  const sim = simCluster(11, { cluster: 'gate' });
  const mk = (name: string, role: 'writer' | 'replica', trusted?: string) =>
    sim.node(name, role, trusted, { health_policy: { max_activation_failures: 1000 } });
  const runFor = sim.runFor;
  const w = await mk('writer', 'writer');
  const r = await mk('replica', 'replica', w.peer);
  await w.node.ingestOps(docs(2));
  await runFor(3000);
  assert.equal(r.node.status().artifact_manifest_id, w.node.status().artifact_manifest_id, 'gen-1 synced');
  const failures: string[] = [];
  r.node.events.on((e) => {
    if (e.event === 'generation_activation_failed') failures.push(String(e.source));
  });
  r.node.engine.gate.injectFault('warm', 'planted', Number.POSITIVE_INFINITY);
  await w.node.ingestOps(docs(2, 10));
  await runFor(10_000);
  assert.equal(w.node.status().generation_id, 'gen-2');
  assert.equal(r.node.status().generation_id, 'gen-1', 'the replica kept serving gen-1');
  assert.ok(failures.includes('peer_sync'), failures.join());
  assert.ok(failures.includes('capsule_replay'), failures.join());
  r.node.engine.gate.clearFault();
  await w.node.ingestOps(docs(1, 20));
  await runFor(10_000);
  assert.equal(r.node.status().artifact_manifest_id, w.node.status().artifact_manifest_id, 'healed');
  await r.node.stop();
  await w.node.stop();
});
