/**
 * §7.3 fallback: when no peer can serve a generation's artifacts, a replica replays the commit
 * stream and must arrive at the very same signed manifest (deterministic builds). Runs over the
 * simulated network so the failure can be forced precisely.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FsmeshError } from '../../src/core/errors.ts';
import { PROTO } from '../../src/p2p/protocols.ts';
import { simCluster } from '../helpers/sim-cluster.ts';

test('a replica that cannot fetch the generation delta replays capsules to the identical signed manifest', async () => {
  const sim = simCluster(5);
  const mk = sim.node;
  const runFor = sim.runFor;
  const w = await mk('writer', 'writer');
  const r = await mk('replica', 'replica', w.peer);
  const events: Record<string, unknown>[] = [];
  r.node.events.on((e) => events.push(e));
  await w.node.ingestOps([{ op: 'upsert', doc_id: 'a', text: 'first generation text' }]);
  await runFor(3000);
  assert.equal(
    r.node.status().artifact_manifest_id,
    w.node.status().artifact_manifest_id,
    'replica synced gen-1 normally',
  );
  // From now on nobody serves symbols: the delta cannot be fetched.
  w.transport.handle(PROTO.symbols, async () => {
    throw new FsmeshError('not_found', 'symbols withheld by the test');
  });
  await w.node.ingestOps([
    { op: 'upsert', doc_id: 'b', text: 'second generation text' },
    { op: 'delete', doc_id: 'a' },
  ]);
  await runFor(10_000);
  const ws = w.node.status();
  assert.equal(ws.generation_id, 'gen-2');
  assert.equal(
    r.node.status().artifact_manifest_id,
    ws.artifact_manifest_id,
    'replayed to the same manifest id',
  );
  assert.ok(
    events.some((e) => e.event === 'generation_activation_succeeded' && e.source === 'capsule_replay'),
  );
  const hits = await r.node.search({ q: 'generation text', mode: 'lexical' });
  assert.deepEqual(
    hits.hits.map((h) => h.doc_id),
    ['b'],
  );
  await r.node.stop();
  await w.node.stop();
});
