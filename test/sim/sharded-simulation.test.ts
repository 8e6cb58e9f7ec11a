/**
 * The multi-shard simulation (sim/sharded-simulation.ts): clean on a range of seeds with crashes,
 * partitions and drops; deterministic; and able to fail — each planted bug (scores from a shard's
 * own statistics, phase 2 reading another generation than phase 1 named) is found within a few
 * seeds that pass with the bug removed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runShardedSimulation } from '../../sim/index.ts';
import { UNSAFE } from '../../src/core/buggify.ts';

const run = (seed: number, steps = 200) =>
  runShardedSimulation({ seed, nodes: 3, shards: 3, steps, faults: ['crash', 'partition', 'drop'] });

test('multi-shard simulation: 10 seeds with faults hold every invariant', async () => {
  for (let seed = 1; seed <= 10; seed++) {
    const r = await run(seed, 300);
    assert.deepEqual(r.violations, [], `seed ${seed}: ${JSON.stringify(r.trace_excerpt?.slice(-5))}`);
    assert.ok(r.stats.acked > 0 && r.stats.queries > 0, `seed ${seed} did work: ${JSON.stringify(r.stats)}`);
  }
});

test('multi-shard simulation, narrowed: 5 nodes, two carry one shard each and follow the others (4 seeds)', async () => {
  for (let seed = 1; seed <= 4; seed++) {
    const r = await runShardedSimulation({
      seed,
      nodes: 5,
      shards: 3,
      steps: 300,
      faults: ['crash', 'partition', 'drop'],
      narrow: true,
    });
    assert.deepEqual(r.violations, [], `seed ${seed}: ${JSON.stringify(r.trace_excerpt?.slice(-5))}`);
    assert.ok(r.stats.reference_checks > 0, `seed ${seed} checked answers: ${JSON.stringify(r.stats)}`);
  }
});

test('multi-shard simulation: same seed, same trace hash', async () => {
  const [a, b] = [await run(5), await run(5)];
  assert.equal(a.trace_hash, b.trace_hash);
  assert.notEqual(a.trace_hash, (await run(6)).trace_hash);
});

for (const flag of ['shard_local_stats', 'shard_lists_latest'] as const) {
  test(`planted bug ${flag}: found within 4 seeds, which pass without it`, async () => {
    const found: number[] = [];
    UNSAFE[flag] = true;
    try {
      for (let seed = 1; seed <= 4 && found.length === 0; seed++)
        if ((await run(seed)).violations.some((v) => v.invariant === 'answer_is_its_snapshot'))
          found.push(seed);
    } finally {
      UNSAFE[flag] = false;
    }
    assert.ok(found.length > 0, `${flag}: no violation found`);
    for (const seed of found) assert.deepEqual((await run(seed)).violations, []);
  });
}
