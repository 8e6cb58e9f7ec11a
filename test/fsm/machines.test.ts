import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../sim/clock.ts';
import { startGenerationLifecycle } from '../../src/fsm/generation-lifecycle.ts';
import { startNodeHealth } from '../../src/fsm/node-health.ts';
import { backoffDelayMs, startRetryBackoff } from '../../src/fsm/retry-backoff.ts';
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

test('node health: a replica catching up whose activations keep failing counts them and degrades', () => {
  const h = startNodeHealth(systemClock, { max_activation_failures: 2 }, 'bootstrapping');
  h.send({ type: 'BOOTSTRAPPED' });
  assert.equal(h.state(), 'catching_up');
  h.send({ type: 'ACTIVATION_FAILED', reason: 'x' });
  assert.equal(h.context().activation_failures, 1);
  h.send({ type: 'ACTIVATION_SUCCEEDED' });
  assert.equal(h.context().activation_failures, 0, 'a success resets the count');
  h.send({ type: 'ACTIVATION_FAILED', reason: 'x' });
  h.send({ type: 'ACTIVATION_FAILED', reason: 'y' });
  assert.equal(h.state(), 'degraded');
  assert.match(h.context().reason ?? '', /activation failed: y/);
});

test('retry/back-off machine: delays grow per policy on the injected clock, reset on success, give up after max attempts', () => {
  const clock = new VirtualClock();
  const t0 = clock.nowMs();
  const fired: number[] = [];
  const r = startRetryBackoff(
    clock,
    { base_ms: 100, max_ms: 350, growth: 'exponential', max_attempts: 4 },
    () => fired.push(clock.nowMs() - t0),
  );
  assert.equal(r.state(), 'idle');
  r.send({ type: 'FAILED' });
  assert.equal(r.state(), 'backing_off');
  while (clock.step()) {}
  r.send({ type: 'FAILED' });
  while (clock.step()) {}
  r.send({ type: 'FAILED' });
  while (clock.step()) {}
  // 100, then +200, then +350 (capped): the retries fired at 100, 300, 650.
  assert.deepEqual(fired, [100, 300, 650]);
  r.send({ type: 'FAILED' });
  assert.equal(r.state(), 'gave_up', 'the 4th consecutive failure gives up');
  r.send({ type: 'RESET' });
  assert.equal(r.failures(), 0);
  r.send({ type: 'FAILED' });
  r.send({ type: 'SUCCEEDED' });
  assert.equal(r.state(), 'idle');
  assert.equal(clock.pending, 0, 'success cancels the pending retry');
  assert.equal(backoffDelayMs({ base_ms: 200, max_ms: 1000, growth: 'linear', max_attempts: 5 }, 3), 600);
});

test('node health: a degraded node probes on its interval (injected clock) and a passing probe heals it', () => {
  const clock = new VirtualClock();
  let probes = 0;
  const h = startNodeHealth(
    clock,
    { max_activation_failures: 1, degraded_probe_interval_ms: 1000 },
    'healthy',
    () => probes++,
  );
  h.send({ type: 'ACTIVATION_FAILED', reason: 'x' });
  assert.equal(h.state(), 'degraded');
  clock.step();
  clock.step();
  assert.equal(probes, 2, 'a probe per interval while degraded');
  h.send({ type: 'PROBE_SUCCEEDED' });
  assert.equal(h.state(), 'healthy');
  assert.equal(clock.pending, 0, 'no probing timer outside degraded');
  // Without a probe callback (or with interval 0) the machine waits for an operator's repair.
  const manual = startNodeHealth(clock, { max_activation_failures: 1 });
  manual.send({ type: 'ACTIVATION_FAILED', reason: 'x' });
  assert.equal(manual.state(), 'degraded');
  assert.equal(clock.pending, 0);
});

test('node health: degraded by failed activations heals on the next success; degraded by corruption does not', () => {
  const clock = new VirtualClock();
  const a = startNodeHealth(clock, { max_activation_failures: 2, max_corruptions: 1 });
  a.send({ type: 'ACTIVATION_FAILED', reason: 'x' });
  a.send({ type: 'ACTIVATION_FAILED', reason: 'y' });
  assert.equal(a.state(), 'degraded');
  a.send({ type: 'ACTIVATION_SUCCEEDED' });
  assert.equal(a.state(), 'healthy');
  const c = startNodeHealth(clock, { max_activation_failures: 2, max_corruptions: 1 });
  c.send({ type: 'CORRUPTION_DETECTED', object_id: 'o' });
  assert.equal(c.state(), 'degraded');
  c.send({ type: 'ACTIVATION_SUCCEEDED' });
  assert.equal(c.state(), 'degraded', 'an unrepaired object still needs a repair');
  c.send({ type: 'REPAIR_SUCCEEDED' });
  assert.equal(c.state(), 'healthy');
  const s = startNodeHealth(clock, {});
  s.send({ type: 'ACTOR_STOPPED', actor: 'ingest' });
  assert.equal(s.state(), 'degraded');
  s.send({ type: 'PROBE_SUCCEEDED' });
  s.send({ type: 'ACTIVATION_SUCCEEDED' });
  assert.equal(s.state(), 'degraded', 'a stopped actor needs a restart');
});
