import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGenerationLifecycle } from '../../src/fsm/generation-lifecycle.ts';
import { startNodeHealth } from '../../src/fsm/node-health.ts';
import { systemClock } from '../../src/runtime/index.ts';

test('generation lifecycle: the happy path, and only warming may flip', () => {
  const lc = startGenerationLifecycle(systemClock, 'gen-1');
  const seen = [lc.state()];
  assert.equal(lc.canFlip(), false);
  for (const e of [
    { type: 'BUILD' },
    { type: 'BUILT', manifest_id: 'm' },
    { type: 'VERIFY' },
    { type: 'VERIFIED' },
  ] as const) {
    lc.send(e);
    seen.push(lc.state());
    if (lc.state() !== 'warming') assert.equal(lc.canFlip(), false, lc.state());
  }
  assert.equal(lc.canFlip(), true);
  lc.send({ type: 'ACTIVATE' });
  seen.push(lc.state());
  lc.send({ type: 'RETIRE' });
  seen.push(lc.state());
  assert.deepEqual(seen, ['pending', 'building', 'built', 'verifying', 'warming', 'active', 'retired']);
  assert.equal(lc.context().manifest_id, 'm');
});

test('generation lifecycle: failure and quarantine from every stage', () => {
  for (const stopAt of ['building', 'built', 'verifying', 'warming', 'active']) {
    const lc = startGenerationLifecycle(systemClock, 'gen-2');
    const path = [
      { type: 'BUILD' },
      { type: 'BUILT', manifest_id: 'm' },
      { type: 'VERIFY' },
      { type: 'VERIFIED' },
      { type: 'ACTIVATE' },
    ] as const;
    for (const e of path) {
      if (lc.state() === stopAt) break;
      lc.send(e);
    }
    assert.equal(lc.state(), stopAt);
    lc.send({ type: 'FAIL', reason: 'boom' });
    assert.equal(lc.state(), 'failed', stopAt);
    assert.equal(lc.context().failure_reason, 'boom');
    lc.send({ type: 'ACTIVATE' });
    assert.equal(lc.state(), 'failed', 'final: no way back to active');
  }
  const q = startGenerationLifecycle(systemClock, 'gen-3', 'm');
  q.send({ type: 'VERIFY' });
  q.send({ type: 'QUARANTINE', reason: 'divergent manifest' });
  assert.equal(q.state(), 'quarantined');
  assert.equal(q.canFlip(), false);
});

test('node health: degraded past thresholds, back to healthy on repair; bootstrapping path', () => {
  const h = startNodeHealth(systemClock, { max_activation_failures: 2, max_corruptions: 2 });
  assert.equal(h.state(), 'healthy');
  h.send({ type: 'ACTIVATION_FAILED', reason: 'x' });
  assert.equal(h.state(), 'healthy');
  h.send({ type: 'ACTIVATION_SUCCEEDED' });
  h.send({ type: 'ACTIVATION_FAILED', reason: 'x' });
  assert.equal(h.state(), 'healthy', 'a success resets the consecutive count');
  h.send({ type: 'ACTIVATION_FAILED', reason: 'y' });
  assert.equal(h.state(), 'degraded');
  assert.equal(h.canActivate(), false);
  h.send({ type: 'REPAIR_SUCCEEDED' });
  assert.equal(h.state(), 'healthy');
  h.send({ type: 'CORRUPTION_DETECTED', object_id: 'a' });
  h.send({ type: 'CORRUPTION_DETECTED', object_id: 'b' });
  assert.equal(h.state(), 'degraded');
  const b = startNodeHealth(systemClock, undefined, 'bootstrapping');
  assert.equal(b.state(), 'bootstrapping');
  b.send({ type: 'BOOTSTRAPPED' });
  assert.equal(b.state(), 'catching_up');
  b.send({ type: 'CAUGHT_UP' });
  assert.equal(b.state(), 'healthy');
});
