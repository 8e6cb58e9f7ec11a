import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Clock } from '../../src/runtime/index.ts';
import { RepairQueue } from '../../src/storage/repair-queue.ts';

function manualClock(): Clock & { advance(ms: number): void } {
  let now = 1_000_000;
  return {
    nowMs: () => now,
    monotonicMs: () => now,
    setTimeout: () => ({ cancel() {} }),
    sleep: () => Promise.resolve(),
    advance(ms: number) {
      now += ms;
    },
  };
}

test('concurrency limit holds; work beyond the queue bound is deferred, not dropped', async () => {
  const clock = manualClock();
  let running = 0;
  let maxRunning = 0;
  const gates: (() => void)[] = [];
  const q = new RepairQueue(
    clock,
    async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((r) => gates.push(r));
      running--;
      return 'repaired';
    },
    { concurrency: 2, queue_bound: 3 },
  );
  const results = Array.from({ length: 10 }, (_, i) => q.request(`obj-${i}`));
  await new Promise((r) => setImmediate(r));
  const s = q.stats();
  assert.equal(s.running, 2);
  assert.equal(s.queued, 3);
  assert.equal(s.deferred, 5);
  while (gates.length || q.stats().running) {
    gates.splice(0).forEach((g) => g());
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await Promise.all(results), Array(10).fill('repaired'));
  assert.equal(maxRunning, 2);
  assert.equal(q.stats().completed, 10);
});

test('the circuit breaker opens after repeated failures and closes after the back-off', async () => {
  const clock = manualClock();
  let calls = 0;
  let fail = true;
  const q = new RepairQueue(
    clock,
    async () => {
      calls++;
      return fail ? 'failed' : 'repaired';
    },
    { breaker_threshold: 3, breaker_base_ms: 1000 },
  );
  for (let i = 0; i < 3; i++) assert.equal(await q.request('bad'), 'failed');
  assert.equal(await q.request('bad'), 'breaker_open');
  assert.equal(calls, 3);
  assert.equal(q.stats().failures_total, 3);
  assert.equal(q.stats().rejected_by_breaker, 1);
  assert.equal(await q.request('other'), 'failed', 'other objects are not affected');
  clock.advance(1001);
  fail = false;
  assert.equal(await q.request('bad'), 'repaired');
  assert.equal(q.isBreakerOpen('bad'), false);
});
