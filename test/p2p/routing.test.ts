/**
 * Strict-read routing over the simulated network: a healthy replica that lacks the requested
 * commit (its activations are failing) forwards the strict read to a member that has it, instead
 * of timing out; the answer names the member and covers the commit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simCluster } from '../helpers/sim-cluster.ts';

test('a strict read the local node cannot satisfy is served by a member that has the commit', async () => {
  const sim = simCluster(21, { cluster: 'route' });
  const w = await sim.node('writer', 'writer');
  const r = await sim.node('replica', 'replica', w.peer, {
    health_policy: { max_activation_failures: 1000 },
  });
  await w.node.ingestOps([{ op: 'upsert', doc_id: 'a', text: 'first routing text' }]);
  await sim.runFor(3000);
  assert.equal(r.node.status().generation_id, 'gen-1');
  r.node.engine.gate.injectFault('warm', 'held back', Number.POSITIVE_INFINITY);
  const ack = await w.node.ingestOps([{ op: 'upsert', doc_id: 'b', text: 'second routing text' }]);
  await sim.runFor(3000);
  assert.equal(r.node.status().generation_id, 'gen-1', 'the replica is behind');
  const p = r.node.search({
    q: 'routing',
    mode: 'lexical',
    min_commit_seq: ack.commit_seq,
    timeout_ms: 2000,
  });
  let res: Awaited<typeof p> | null = null;
  p.then((x) => {
    res = x;
  });
  await sim.runFor(1000);
  assert.ok(res, 'answered before the strict-read timeout');
  const out = res as unknown as Awaited<typeof p>;
  assert.equal(out.served_by, w.peer);
  assert.ok(out.commit_seq_high >= ack.commit_seq);
  // route=local keeps it here: it waits and times out, naming the commit.
  const local = r.node.search({
    q: 'routing',
    min_commit_seq: ack.commit_seq,
    timeout_ms: 500,
    route: 'local',
  });
  const settled = local.then(
    () => 'answered',
    (e) => String(e.message),
  );
  await sim.runFor(1000);
  assert.match(await settled, /strict read timed out/);
  await r.node.stop();
  await w.node.stop();
});
