/**
 * A writer paused past a promotion (a long GC, SIGSTOP) wakes up as a zombie that still believes
 * it writes. Cut off from the candidate, it never heard the prepare ticket; only its lease
 * (docs/protocols.md, failover) stops it: it refuses writes until members confirm it, learns the
 * new epoch and follows. The planted bug `UNSAFE.skip_writer_lease` shows what the simulator's
 * pause finds without it: with local durability the zombie acknowledges a write that the new
 * history then cuts — an acknowledged write lost.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { UNSAFE } from '../../src/core/buggify.ts';
import { toHex } from '../../src/core/bytes.ts';
import { signHandover, signPrepareTicket } from '../../src/p2p/handover.ts';
import { handoverOf, type PromotionPlan } from '../../src/p2p/services/failover.ts';
import { simCluster } from '../helpers/sim-cluster.ts';

async function zombieWrite(
  wallClockStepMs = 0,
): Promise<{ write: string; removed: number; role: unknown; epoch: unknown }> {
  const admin = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(5));
  const sim = simCluster(41, { durability: 'local', members: 3, admin_pub: toHex(admin.publicKey.raw) });
  const w = await sim.node('writer', 'writer');
  const r1 = await sim.node('r1', 'replica', w.peer);
  const r2 = await sim.node('r2', 'replica', w.peer);
  const run = <T>(p: Promise<T>, ms: number) => sim.drive(p, ms);
  await sim.runFor(3000);
  await run(w.node.ingestOps([{ op: 'upsert', doc_id: 'a', text: 'first' }]), 3000);
  // The candidate cannot reach the writer (it never hears the ticket); then the writer freezes.
  sim.net.partition(w.peer, r1.peer);
  w.pause();
  const ticket = await signPrepareTicket(admin, {
    format: 1,
    kind: 'prepare',
    cluster: 'c',
    shard: r1.node.status().shard,
    epoch: 1,
    candidate: r1.peer,
  });
  const plan = (await run(r1.node.preparePromotion(ticket), 12_000)) as PromotionPlan;
  await run(r1.node.promote(await signHandover(admin, handoverOf(plan))), 500);
  let removed = 0;
  w.node.events.on((e) => {
    if (e.event === 'log_suffix_truncated') removed += Number(e.removed_commits);
  });
  // It wakes (perhaps with its wall clock stepped back, as after a VM resume or an NTP step), and
  // a client that still thinks it writes sends it a write at once.
  w.stepWallClock(wallClockStepMs);
  w.resume();
  const write = w.node.ingestOps([{ op: 'upsert', doc_id: 'z', text: 'to the zombie' }]).then(
    () => 'acknowledged',
    (e: Error) => e.message,
  );
  await sim.runFor(6000);
  const cs = (w.node.services.get('cluster') as { status(): Record<string, unknown> }).status();
  for (const n of [w, r1, r2]) await n.node.stop();
  return { write: await write, removed, role: cs.role, epoch: cs.epoch };
}

test('a writer paused past a promotion refuses writes when it wakes, and follows (planted: no lease)', async () => {
  const safe = await zombieWrite();
  assert.match(safe.write, /confirming its epoch/, 'the zombie refuses the write');
  assert.equal(safe.removed, 0, 'nothing it acknowledged is cut');
  assert.equal(safe.role, 'replica');
  assert.equal(safe.epoch, 1);
  UNSAFE.skip_writer_lease = true;
  try {
    const bad = await zombieWrite();
    assert.equal(bad.write, 'acknowledged', 'without the lease the zombie acknowledges the write');
    assert.ok(bad.removed >= 1, 'and the new history cuts it: an acknowledged write lost');
  } finally {
    UNSAFE.skip_writer_lease = false;
  }
});

test('clock skew: a writer whose wall clock steps back while paused still refuses writes (planted: lease on the wall clock)', async () => {
  const safe = await zombieWrite(-60_000);
  assert.match(safe.write, /confirming its epoch/, 'monotonic lease: the step changes nothing');
  assert.equal(safe.removed, 0);
  UNSAFE.lease_on_wall_clock = true;
  try {
    const bad = await zombieWrite(-60_000);
    assert.equal(bad.write, 'acknowledged', 'a wall-clock lease looks fresh again after the step back');
    assert.ok(bad.removed >= 1, 'and the new history cuts the write: an acknowledged write lost');
  } finally {
    UNSAFE.lease_on_wall_clock = false;
  }
});
