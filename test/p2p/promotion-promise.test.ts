/**
 * The promise phase of a promotion (docs/protocols.md, failover), over the simulated network: only
 * an admin-signed prepare ticket is promised; a member that promised reports it and refuses a
 * competing candidate of the same epoch; a writer that is being replaced while alive fences itself
 * (it can no longer acknowledge writes); the promotion completes and the old writer follows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { toHex } from '../../src/core/bytes.ts';
import { type PrepareTicket, signHandover, signPrepareTicket } from '../../src/p2p/handover.ts';
import { jsonFrame, PROTO, parseJsonFrame } from '../../src/p2p/protocols.ts';
import { handoverOf, type PromotionPlan } from '../../src/p2p/services/failover.ts';
import { simCluster } from '../helpers/sim-cluster.ts';

test('promotion promises: admin tickets only, one candidate per epoch, a live old writer fences and follows', async () => {
  const admin = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7));
  const intruder = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(9));
  const sim = simCluster(31, { durability: 'quorum', members: 3, admin_pub: toHex(admin.publicKey.raw) });
  const w = await sim.node('writer', 'writer');
  const r1 = await sim.node('r1', 'replica', w.peer);
  const r2 = await sim.node('r2', 'replica', w.peer);
  const cs = (n: { node: { services: { get(k: string): unknown } } }) =>
    (n.node.services.get('cluster') as { status(): Record<string, unknown> }).status();
  const run = <T>(p: Promise<T>, ms = 3000) => sim.drive(p, ms);
  await sim.runFor(3000); // connections, and the writer's fence lifts once a majority answered
  const first = await run(w.node.ingestOps([{ op: 'upsert', doc_id: 'a', text: 'before the promotion' }]));
  const ticket = (candidate: string, key = admin, epoch = 1): Promise<unknown> =>
    signPrepareTicket(key, {
      format: 1,
      kind: 'prepare',
      cluster: 'c',
      shard: r1.node.status().shard,
      epoch,
      candidate,
    } satisfies PrepareTicket);

  // Hostile head requests: a malformed or foreign ticket is refused in the answer and promises
  // nothing; an oversized request is refused before it is parsed.
  const head = async (body: Uint8Array) =>
    parseJsonFrame<Record<string, unknown>>(
      (await run(r2.transport.request(r1.peer, PROTO.head, body, { timeout_ms: 1000 })))[0],
      'head',
    );
  const junk = await head(jsonFrame({ prepare: { ticket: { epoch: 'x' }, signature: 'zz' } }));
  assert.match(String(junk.promise_refused), /prepare ticket: format must be 1/);
  const foreign = await head(jsonFrame({ prepare: await ticket(r2.peer, intruder) }));
  assert.match(String(foreign.promise_refused), /not signed by the admin key/);
  assert.equal(foreign.promised_epoch, undefined, 'nothing promised');
  await assert.rejects(
    run(
      r2.transport.request(r1.peer, PROTO.head, jsonFrame({ prepare: 'x'.repeat(5000) }), {
        timeout_ms: 1000,
      }),
    ),
    /larger than 4096 bytes/,
  );
  await assert.rejects(
    run(r1.node.preparePromotion(await ticket(r1.peer, intruder))),
    /not signed by the admin key/,
  );
  // Prepare outlasts the old writer's lease (3 s) before it answers.
  const plan = (await run(r1.node.preparePromotion(await ticket(r1.peer)), 8000)) as PromotionPlan;
  assert.equal(plan.epoch, 1);
  assert.ok(plan.commit_seq_high >= first.commit_seq, 'the plan holds the acknowledged commit');
  assert.ok(plan.members_consulted >= 1);
  const s2 = cs(r2);
  assert.equal(s2.promised_epoch, 1, 'the member reports its promise');
  assert.equal(s2.promised_to, r1.peer);
  assert.equal(cs(w).fenced, true, 'the live old writer fenced itself');
  await assert.rejects(
    run(w.node.ingestOps([{ op: 'upsert', doc_id: 'x', text: 'too late' }])),
    /busy|confirming|quorum/,
  );
  // A competing candidate for the same epoch is refused by the members that promised.
  await assert.rejects(run(r2.node.preparePromotion(await ticket(r2.peer))), /already promised epoch 1/);
  // The promotion completes; the old writer follows and writes resume on the new one.
  await run(r1.node.promote(await signHandover(admin, handoverOf(plan))));
  await sim.runFor(3000);
  const ws = cs(w);
  assert.equal(ws.role, 'replica');
  assert.equal(ws.epoch, 1);
  const after = await run(r1.node.ingestOps([{ op: 'upsert', doc_id: 'b', text: 'after the promotion' }]));
  assert.ok(after.commit_seq > first.commit_seq);
  for (const n of [w, r1, r2]) await n.node.stop();
});
