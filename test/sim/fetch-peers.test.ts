/**
 * `fetch_peers` (`--fetch-peers K`) caps how many holders serve a generation's symbols; it must not
 * pick peers that do not hold it. Over the simulated network: of a replica's two peers, the one
 * whose id sorts first (what a plain "first K peers" choice takes) refuses every symbol request.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FsmeshError } from '../../src/core/errors.ts';
import { PROTO } from '../../src/p2p/protocols.ts';
import { simCluster } from '../helpers/sim-cluster.ts';

test('fetch_peers 1 fetches from a peer that holds the generation, not from the first peer id', async () => {
  const sim = simCluster(11, { fetch_peers: 1 });
  const w = await sim.node('writer', 'writer');
  const r1 = await sim.node('r1', 'replica', w.peer);
  const r2 = await sim.node('r2', 'replica', w.peer);
  await w.node.ingestOps([{ op: 'upsert', doc_id: 'a', text: 'first generation text' }]);
  await sim.runFor(5000);
  const gen1 = w.node.status().artifact_manifest_id;
  assert.equal(r1.node.status().artifact_manifest_id, gen1, 'r1 synced gen-1');
  assert.equal(r2.node.status().artifact_manifest_id, gen1, 'r2 synced gen-1');
  // r2's peers: the writer and r1 (peer exchange). The one with the smaller id withholds.
  const peers = r2.transport.peers();
  assert.ok(peers.includes(w.peer) && peers.includes(r1.peer), `r2 connected to both: ${peers}`);
  const withholder = [w, r1].sort((a, b) => (a.peer < b.peer ? -1 : 1))[0];
  let refused = 0;
  withholder.transport.handle(PROTO.symbols, async () => {
    refused++;
    throw new FsmeshError('not_found', 'symbols withheld by the test');
  });
  const events: Record<string, unknown>[] = [];
  r2.node.events.on((e) => events.push(e));
  await w.node.ingestOps([{ op: 'upsert', doc_id: 'b', text: 'second generation text' }]);
  await sim.runFor(10_000);
  const gen2 = w.node.status().artifact_manifest_id;
  assert.notEqual(gen2, gen1);
  assert.equal(r2.node.status().artifact_manifest_id, gen2, 'r2 activated gen-2');
  const activated = events.filter((e) => e.event === 'generation_activation_succeeded');
  assert.deepEqual(
    activated.map((e) => e.source),
    ['peer_sync'],
    'fetched as artifacts from the holder, not replayed from capsules',
  );
  assert.ok(refused > 0, 'the withholding peer was asked (who holds it) and refused');
  for (const n of [r2, r1, w]) await n.node.stop();
});
