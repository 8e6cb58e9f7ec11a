import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimulation, runSwarm } from '../../sim/index.ts';
import { UNSAFE } from '../../src/core/buggify.ts';

test('determinism: the same seed gives the same trace hash; another seed a different one', async () => {
  const cfg = {
    seed: 11,
    nodes: 3,
    steps: 120,
    faults: ['crash', 'wipe', 'corrupt', 'partition', 'rogue_writer', 'drop'] as const,
  };
  const a = await runSimulation({ ...cfg, faults: [...cfg.faults] });
  const b = await runSimulation({ ...cfg, faults: [...cfg.faults] });
  const c = await runSimulation({ ...cfg, faults: [...cfg.faults], seed: 12 });
  assert.equal(a.trace_hash, b.trace_hash);
  assert.deepEqual(a.stats, b.stats);
  assert.notEqual(a.trace_hash, c.trace_hash);
  assert.deepEqual(a.violations, []);
  assert.ok(a.stats.acked > 10 && a.stats.queries > 10 && a.stats.activations > 3, JSON.stringify(a.stats));
});

test('swarm on worker threads: the same seeds give the same trace hashes as inline', async () => {
  const inline = new Map<number, string>();
  const pooled = new Map<number, string>();
  await runSwarm(40, 6, 40, (r) => inline.set(r.seed, r.trace_hash), { workers: 1 });
  await runSwarm(40, 6, 40, (r) => pooled.set(r.seed, r.trace_hash), { workers: 2 });
  assert.equal(inline.size, 6);
  assert.deepEqual([...pooled].sort(), [...inline].sort());
});

test('swarm: 1,000 seeds with varied configurations hold every invariant (spread over the cores)', async () => {
  const failing = await runSwarm(1, 1000);
  assert.deepEqual(
    failing.map((f) => [f.replay, f.violations.map((v) => `${v.kind}:${v.invariant}: ${v.detail}`)]),
    [],
  );
});

for (const check of ['skip_record_signature_check', 'skip_marker_chain_check'] as const) {
  test(`planted bug: with ${check} the simulator finds a violation within 8 seeds; the same seeds pass with the check on`, async () => {
    const seeds = Array.from({ length: 8 }, (_, i) => i + 1);
    const run = (seed: number) =>
      runSimulation({ seed, nodes: 3, steps: 120, faults: ['rogue_writer', 'crash', 'partition'] });
    const found: number[] = [];
    UNSAFE[check] = true;
    try {
      for (const s of seeds) {
        const r = await run(s);
        if (r.violations.some((v) => v.kind === 'safety')) {
          found.push(s);
          break;
        }
      }
    } finally {
      UNSAFE[check] = false;
    }
    assert.ok(found.length > 0, `no violation found with ${check} off`);
    for (const s of found)
      assert.deepEqual((await run(s)).violations, [], `seed ${s} must pass with the check on`);
  });
}

test('planted bug: with skip_redial (connections never heal) the simulator finds a liveness violation within 8 seeds; the same seeds pass with redial', async () => {
  const run = (seed: number) => runSimulation({ seed, nodes: 3, steps: 120, faults: ['crash', 'partition'] });
  const found: number[] = [];
  UNSAFE.skip_redial = true;
  try {
    for (let s = 1; s <= 8 && found.length === 0; s++) {
      const r = await run(s);
      if (r.violations.some((v) => v.kind === 'liveness')) found.push(s);
    }
  } finally {
    UNSAFE.skip_redial = false;
  }
  assert.ok(found.length > 0, 'no liveness violation found with redial off');
  for (const s of found)
    assert.deepEqual((await run(s)).violations, [], `seed ${s} must pass with redial on`);
});

test('planted bug: with trust_claimed_promise a hostile member fences the writer for good (found within 8 seeds); the same seeds pass with the check on', async () => {
  // The hostile member (an opt-in fault) claims a promise in its head answers, without a ticket.
  const run = (seed: number) =>
    runSimulation({ seed, nodes: 3, steps: 120, faults: ['hostile_member'], durability: 'quorum' });
  const found: number[] = [];
  UNSAFE.trust_claimed_promise = true;
  try {
    for (let s = 1; s <= 8 && found.length === 0; s++) {
      const r = await run(s);
      if (r.violations.some((v) => v.invariant === 'writes_resume_after_faults_heal')) found.push(s);
    }
  } finally {
    UNSAFE.trust_claimed_promise = false;
  }
  assert.ok(found.length > 0, 'no liveness violation with claimed promises trusted');
  for (const s of found)
    assert.deepEqual((await run(s)).violations, [], `seed ${s} must pass when promises need the ticket`);
});

test('planted bug: with count_any_ack a hostile member spoofs quorum acks (found within 8 seeds); the same seeds pass with acks only from members', async () => {
  // The hostile member acknowledges every replicated commit without storing it; the invariant
  // quorum_ack_held_by_majority checks the members' disks when the writer acknowledges.
  const run = (seed: number) =>
    runSimulation({ seed, nodes: 3, steps: 120, faults: ['hostile_member'], durability: 'quorum' });
  const found: number[] = [];
  UNSAFE.count_any_ack = true;
  try {
    for (let s = 1; s <= 8 && found.length === 0; s++) {
      const r = await run(s);
      if (r.violations.some((v) => v.invariant === 'quorum_ack_held_by_majority')) found.push(s);
    }
  } finally {
    UNSAFE.count_any_ack = false;
  }
  assert.ok(found.length > 0, 'no spoofed quorum found with acks counted from any peer');
  for (const s of found)
    assert.deepEqual((await run(s)).violations, [], `seed ${s} must pass when only members' acks count`);
});
