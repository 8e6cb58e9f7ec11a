import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { createNode } from '../../src/node/index.ts';
import { waitFor } from '../helpers/proc.ts';
import { tmpDir } from '../helpers/tmp.ts';

const docs = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({
    id: `d${from + i}`,
    text: `node runtime document ${from + i} about ${i % 2 ? 'lakes' : 'hills'}`,
  }));

test('config is validated with clear errors', async () => {
  await assert.rejects(createNode({} as never), /data_dir: required/);
  await assert.rejects(
    createNode({ data_dir: tmpDir(), role: 'boss' as never, mailbox_bound: 0, bogus: 1 } as never),
    (e: Error) => {
      assert.match(e.message, /role: must be "writer" or "replica"/);
      assert.match(e.message, /mailbox_bound: must be an integer >= 1/);
      assert.match(e.message, /bogus: unknown option/);
      return true;
    },
  );
});

test('ingest → build → search through the actors; events and status', async () => {
  const node = await createNode({
    data_dir: tmpDir(),
    node_name: 'n1',
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
  });
  const seen: string[] = [];
  node.events.on((e) => seen.push(e.event));
  const ack = await node.ingest(docs(20));
  assert.equal(ack.commit_seq, 1);
  const out = await node.buildNow();
  assert.equal(out.built, true);
  const r = await node.search({ q: 'lakes', mode: 'lexical', min_commit_seq: ack.commit_seq });
  assert.equal(r.hits.length, 10);
  const st = node.status();
  assert.equal(st.role, 'writer');
  assert.equal(st.health, 'healthy');
  assert.equal(st.generation_id, 'gen-1');
  assert.equal(st.lag_commits, 0);
  assert.deepEqual(seen, [
    'generation_build_started',
    'generation_build_completed',
    'generation_activation_succeeded',
  ]);
  await assert.rejects(node.ingest([{ id: '', text: 'x' }]), /docs\[0\]\.id/);
  await node.stop();
});

test('the builder batches by time: commits become searchable without buildNow', async () => {
  const node = await createNode({
    data_dir: tmpDir(),
    build: { batch_max_commits: 1000, build_interval_ms: 20 },
  });
  const ack = await node.ingest(docs(5));
  const r = await node.search({
    q: 'hills',
    mode: 'lexical',
    min_commit_seq: ack.commit_seq,
    timeout_ms: 5000,
  });
  assert.ok(r.commit_seq_high >= ack.commit_seq);
  await node.stop();
});

test('supervision: a crashed actor restarts, no acknowledged commit is lost, queries keep answering', async () => {
  const dir = tmpDir();
  const node = await createNode({
    data_dir: dir,
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
  });
  await node.ingest(docs(10));
  await node.buildNow();
  const acks = [];
  for (let i = 0; i < 5; i++) {
    node.injectFault('ingest');
    node.injectFault('builder');
    const during = await node.search({ q: 'hills', mode: 'lexical' });
    assert.equal(during.generation_id, 'gen-1');
    // The request that hits the restarting actor may fail with a clear, retryable error.
    for (;;) {
      try {
        acks.push(await node.ingest(docs(2, 100 + 2 * i)));
        break;
      } catch (err) {
        assert.match((err as Error).message, /crashed|not running|retry/);
      }
    }
  }
  const crashes = node.status().crashes;
  assert.ok(crashes.filter((c) => c.actor === 'ingest' && c.action === 'restart').length >= 5);
  const out = await node.buildNow();
  assert.equal(out.built, true);
  await node.stop();
  const again = await createNode({ data_dir: dir });
  assert.equal(again.engine.log.commitSeqHigh, acks[acks.length - 1].commit_seq);
  const r = await again.search({ q: 'document 109', mode: 'lexical', k: 50 });
  assert.ok(r.hits.some((h) => h.doc_id === 'd109'));
  await again.stop();
});

test('a failed activation leaves the previous generation serving; repeated failures degrade the node', async () => {
  const node = await createNode({
    data_dir: tmpDir(),
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
    health_policy: { max_activation_failures: 2 },
  });
  const seen: string[] = [];
  node.events.on((e) => seen.push(e.event));
  await node.ingest(docs(4));
  await node.buildNow();
  await node.ingest(docs(4, 50));
  await node.failNextActivation('test');
  const f = await node.buildNow();
  assert.equal(f.built, false);
  assert.equal(f.state, 'failed');
  assert.equal(node.status().generation_id, 'gen-1');
  assert.equal((await node.search({ q: 'document 50', mode: 'lexical' })).generation_id, 'gen-1');
  await node.failNextActivation('again');
  await node.buildNow();
  assert.equal(node.status().health, 'degraded');
  assert.ok(seen.includes('generation_activation_failed'));
  assert.ok(seen.includes('read_degraded_mode_entered'));
  // Degraded: activations are suspended, ingest continues, reads serve the last healthy generation.
  const ack = await node.ingest(docs(1, 90));
  assert.ok(ack.commit_seq > 0);
  assert.equal((await node.buildNow()).state, 'suspended');
  assert.equal((await node.search({ q: 'hills', mode: 'lexical' })).generation_id, 'gen-1');
  await node.stop();
});

test('degraded on unrepairable corruption; healthy again after a successful repair', async () => {
  const dir = tmpDir();
  const node = await createNode({
    data_dir: dir,
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
    health_policy: { max_corruptions: 1 },
  });
  const seen: string[] = [];
  node.events.on((e) => seen.push(e.event));
  await node.ingest(docs(30));
  await node.buildNow();
  const good = await node.search({ q: 'lakes', mode: 'lexical' });
  const manifest = await node.engine.generations.loadManifest(node.status().artifact_manifest_id!);
  const victim = manifest.lexical_artifacts.find((a) => a.role === 'segment')!.object_id;
  const objFile = path.join(dir, 'objects/artifact', victim.slice(0, 2), victim);
  const symFile = path.join(dir, 'symbols/artifact', victim.slice(0, 2), victim);
  const original = fs.readFileSync(objFile);
  const symbols = fs.readFileSync(symFile);
  fs.writeFileSync(objFile, Buffer.alloc(original.length, 7));
  fs.rmSync(symFile);
  const r = await node.requestRepair(victim);
  assert.equal(r, 'failed');
  assert.equal(node.status().health, 'degraded');
  assert.ok(seen.includes('artifact_repair_failed') && seen.includes('read_degraded_mode_entered'));
  // The open reader keeps serving the last healthy generation from memory.
  assert.deepEqual((await node.search({ q: 'lakes', mode: 'lexical' })).hits, good.hits);
  // Symbols come back (as peers would supply them): the repair succeeds and the node is healthy.
  fs.writeFileSync(symFile, symbols);
  const r2 = await node.requestRepair(victim);
  assert.equal(r2, 'repaired');
  assert.equal(node.status().health, 'healthy');
  assert.ok(seen.includes('artifact_repair_completed') && seen.includes('read_degraded_mode_exited'));
  assert.deepEqual(fs.readFileSync(objFile), original);
  await node.stop();
});

test('bounded mailboxes answer busy instead of growing', async () => {
  const node = await createNode({
    data_dir: tmpDir(),
    mailbox_bound: 2,
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
  });
  await node.ingest(docs(1));
  await node.buildNow();
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => node.search({ q: 'x' })));
  const busy = results.filter(
    (r) => r.status === 'rejected' && /busy/.test(String((r as PromiseRejectedResult).reason)),
  );
  assert.equal(busy.length, 4);
  assert.equal(node.status().mailboxes.query.rejected, 4);
  // Strict reads waiting for a commit wait outside the mailbox: they time out, none is refused
  // as busy, and the mailbox stays free for other reads meanwhile.
  const parked = Array.from({ length: 6 }, () =>
    node.search({ q: 'x', min_commit_seq: 999, timeout_ms: 200 }),
  );
  assert.equal((await node.search({ q: 'x' })).generation_id, 'gen-1');
  const strict = await Promise.allSettled(parked);
  assert.ok(strict.every((r) => r.status === 'rejected' && /timed out/.test(String(r.reason))));
  assert.equal(node.status().mailboxes.query.rejected, 4);
  await assert.rejects(
    node.search({ q: 'x', min_commit_seq: 1, timeout_ms: 2 ** 32 }),
    /timeout_ms: must be an integer from 0 to 60000/,
  );
  await node.stop();
});

test('a node degraded by failed activations probes itself and leaves degraded mode once activation works', async () => {
  const node = await createNode({
    data_dir: tmpDir(),
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
    health_policy: { max_activation_failures: 1, degraded_probe_interval_ms: 50 },
  });
  const seen: string[] = [];
  node.events.on((e) => seen.push(e.event));
  await node.ingest(docs(3));
  await node.failNextActivation('planted once');
  assert.equal((await node.buildNow()).built, false);
  assert.equal(node.status().health, 'degraded');
  assert.equal((await node.buildNow()).state, 'suspended');
  // The probe (scrub + one activation attempt) passes: healthy again, the commits are live.
  await waitFor(async () => node.status().health === 'healthy', 10_000, 'the probe to heal the node');
  assert.equal(node.status().active_commit_seq_high, node.status().commit_seq_high);
  assert.ok(seen.includes('read_degraded_mode_exited'));
  await node.stop();
});
