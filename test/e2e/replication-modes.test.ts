/**
 * Option A next to Option B (docs/replication.md), real processes: a writer, an `artifacts` replica
 * and a `commits` replica converge on the same manifest through ingest, deletes and segment merges,
 * and `fsmesh audit` passes on all three data directories. With a planted non-deterministic build
 * on the writer (failpoint `build.perturb`), the commits replica refuses the generation (a critical
 * divergence, nothing activated) and the audit of the writer's directory fails, naming the first
 * commit of that generation.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { startReplica } from '../helpers/cluster.ts';
import { http, type NodeProc, startNodeProc, waitFor } from '../helpers/proc.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

async function writerWith(dir: string, env: Record<string, string> = {}): Promise<NodeProc> {
  return startNodeProc(
    [
      '--data',
      dir,
      '--http',
      '127.0.0.1:0',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--role',
      'writer',
      '--members',
      '3',
      '--batch-max-commits',
      '1',
      '--build-interval-ms',
      '20',
    ],
    30_000,
    env,
  );
}

const status = async (p: NodeProc) => (await http('GET', `${p.url}/v1/status`)).json;

/** Eight batches, one commit each (so one generation each): upserts, then deletes of earlier docs. */
async function workload(w: NodeProc): Promise<number> {
  let seq = 0;
  for (let b = 0; b < 8; b++) {
    const docs =
      b < 6
        ? Array.from({ length: 5 }, (_, i) => ({
            id: `b${b}d${i}`,
            text: `batch ${b} document ${i} about rivers ${i % 3}`,
          }))
        : [{ id: `b${b - 6}d0`, delete: true }];
    const r = await http('POST', `${w.url}/v1/docs`, docs);
    assert.equal(r.status, 200, r.text);
    seq = r.json.commit_seq;
    await waitFor(async () => (await status(w)).active_commit_seq_high >= seq, 20_000, `writer built ${seq}`);
  }
  return seq;
}

async function stopAll(...procs: NodeProc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.kill('SIGTERM')));
}

test('a commits replica and an artifacts replica converge on the writer manifest; audit passes on all three', async () => {
  const root = tmpDir();
  const dirs = ['w', 'a', 'c'].map((n) => path.join(root, n));
  const w = await writerWith(dirs[0]);
  const seed = (w.ready.multiaddrs as string[])[0];
  const art = await startReplica(dirs[1], 0, 0, [seed]);
  const com = await startReplica(dirs[2], 0, 0, [seed], ['--replication', 'commits']);
  try {
    const last = await workload(w);
    const ws = await status(w);
    assert.ok(ws.generation_seq >= 8, `one generation per batch, merges included: ${ws.generation_seq}`);
    for (const r of [art, com])
      await waitFor(
        async () => (await status(r)).artifact_manifest_id === ws.artifact_manifest_id,
        30_000,
        `${r.url} on the writer's manifest`,
      );
    const cs = await status(com);
    assert.equal(cs.replication, 'commits');
    assert.equal(cs.replication_checkpoints, 0, 'every generation rebuilt, none fetched as artifacts');
    assert.equal((await status(art)).replication, 'artifacts');
    assert.equal(cs.active_commit_seq_high, last);
    const metrics = (await http('GET', `${com.url}/metrics`)).text;
    assert.match(metrics, /fsmesh_replication_mode\{mode="commits",[^}]*\} 1/);
    const view = (await http('GET', `${w.url}/v1/cluster`)).json;
    assert.deepEqual(view.members.map((m: { replication: string }) => m.replication).sort(), [
      'artifacts',
      'artifacts',
      'commits',
    ]);
    // The commits replica's log, replayed at the writer's boundaries, gives the writer's manifests.
    await com.kill('SIGTERM');
    const peerAudit = cli(['audit', '--data', dirs[2], '--peer', seed, '--json']);
    assert.equal(peerAudit.code, 0, `${peerAudit.stdout}${peerAudit.stderr}`);
    assert.equal(peerAudit.json.peer.peer_id, w.ready.peer_id);
    assert.ok(peerAudit.json.generations_checked >= 8, peerAudit.stdout);
  } finally {
    await stopAll(w, art, com);
  }
  const reports = dirs.map((d) => cli(['audit', '--data', d, '--json']));
  for (const [i, r] of reports.entries()) {
    assert.equal(r.code, 0, `${dirs[i]}: ${r.stdout}${r.stderr}`);
    assert.deepEqual(r.json.divergences, []);
  }
  // The writer and the commits replica hold every generation: replayed from genesis. The artifacts
  // replica skipped some while catching up, so its replay starts from a retained checkpoint.
  for (const r of [reports[0], reports[2]]) {
    assert.equal(r.json.checkpoint, null, r.stdout);
    assert.ok(r.json.generations_checked >= 8, r.stdout);
  }
});

test('planted non-deterministic build: the commits replica refuses it, audit names the commit', async () => {
  const root = tmpDir();
  const dirs = ['w', 'a', 'c'].map((n) => path.join(root, n));
  // The writer's third build uses the other quantization: valid, signed, not reproducible.
  const w = await writerWith(dirs[0], { FSMESH_FAILPOINTS: 'build.perturb=1@2' });
  const seed = (w.ready.multiaddrs as string[])[0];
  const art = await startReplica(dirs[1], 0, 0, [seed]);
  const com = await startReplica(dirs[2], 0, 0, [seed], ['--replication', 'commits']);
  let gen2High = 0;
  try {
    await workload(w);
    const ws = await status(w);
    await waitFor(
      async () => (await status(art)).artifact_manifest_id === ws.artifact_manifest_id,
      30_000,
      'the artifacts replica follows the signed generations',
    );
    gen2High = (await http('GET', `${w.url}/v1/generations`)).json.generations.find(
      (g: { generation_id: string }) => g.generation_id === 'gen-2',
    ).commit_seq_high;
    // The commits replica stays on gen-2 and says why.
    await waitFor(
      async () => {
        const r = await fetch(`${com.url}/v1/events?recent=200`, { signal: AbortSignal.timeout(1000) }).catch(
          () => null,
        );
        if (!r?.body) return false;
        const reader = r.body.getReader();
        let text = '';
        const t0 = Date.now();
        while (Date.now() - t0 < 500 && !text.includes('manifest_divergence_detected')) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
        await reader.cancel();
        return (
          text.includes('event: manifest_divergence_detected') && text.includes('"generation_id":"gen-3"')
        );
      },
      30_000,
      'a divergence event for gen-3 on the commits replica',
    );
    const cs = await status(com);
    assert.equal(cs.generation_id, 'gen-2', 'nothing past the divergence is activated');
    // Auditing the writer from the commits replica's log names the same generation and commit.
    await com.kill('SIGTERM');
    const peerAudit = cli(['audit', '--data', dirs[2], '--peer', seed, '--json']);
    assert.equal(peerAudit.code, 1, peerAudit.stdout);
    assert.equal(peerAudit.json.divergences[0].generation_id, 'gen-3');
    assert.match(peerAudit.json.divergences[0].reason, /the peer's generation differs/);
  } finally {
    await stopAll(w, art, com);
  }
  const audit = cli(['audit', '--data', dirs[0]]);
  assert.equal(audit.code, 1, audit.stdout);
  const d = audit.json.divergences[0];
  assert.equal(d.generation_id, 'gen-3');
  assert.equal(d.first_commit_seq, gen2High + 1);
  assert.match(audit.stderr, new RegExp(`gen-3 differs from its replay from commit ${gen2High + 1}`));
  // The commits replica's own directory is clean: it never took the generation.
  assert.equal(cli(['audit', '--data', dirs[2]]).code, 0);
});
