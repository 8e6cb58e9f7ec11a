/**
 * `--serve-rate-limit`: a node's uploads leave at the capped rate (answers queue on one modelled
 * link), and a request that would wait too long is refused at once as busy. (What more peers add
 * under a cap is measured by bench/bootstrap.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../sim/clock.ts';
import { ServeRateLimit } from '../../src/p2p/serve-rate.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

async function runUntilIdle(clock: VirtualClock, promises: Promise<unknown>[]) {
  let done = false;
  const all = Promise.allSettled(promises).then((r) => {
    done = true;
    return r;
  });
  while (!done) {
    await new Promise((r) => setImmediate(r));
    clock.step();
  }
  return all;
}

test('answers leave at the capped rate, in order; a link booked beyond 4 s refuses (busy)', async () => {
  const clock = new VirtualClock();
  const t0 = clock.monotonicMs();
  const cap = new ServeRateLimit(clock, 1_000_000); // 1 MB/s
  const sentAt: number[] = [];
  const sends = [0, 1, 2].map((i) =>
    cap.take(500_000).then(() => {
      sentAt[i] = clock.monotonicMs() - t0;
    }),
  );
  await runUntilIdle(clock, sends);
  assert.deepEqual(sentAt, [500, 1000, 1500]);
  // 4.5 MB more books the link 4.5 s ahead: the next one is refused without waiting.
  const t1 = clock.monotonicMs();
  const more = [cap.take(2_000_000), cap.take(2_500_000), cap.take(1_000_000)];
  const r = await runUntilIdle(clock, more);
  assert.equal(r[0].status, 'fulfilled');
  assert.equal(r[1].status, 'fulfilled');
  assert.equal(r[2].status, 'rejected');
  assert.match(String((r[2] as PromiseRejectedResult).reason), /upload capped at 1\.00 MB\/s/);
  assert.equal(clock.monotonicMs() - t1, 4500);
});

test('--serve-rate-limit takes megabytes per second; anything else is a usage error naming it', () => {
  const neg = cli(['node', 'start', '--data', tmpDir(), '--http', '127.0.0.1:0', '--serve-rate-limit', '-1']);
  assert.equal(neg.code, 2);
  assert.match(neg.stderr, /'--serve-rate-limit' argument is ambiguous/);
  for (const bad of ['0', 'fast', '1e3', '']) {
    const r = cli(['node', 'start', '--data', tmpDir(), '--http', '127.0.0.1:0', '--serve-rate-limit', bad]);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /--serve-rate-limit: expected megabytes per second/);
  }
  const r = cli(['node', 'start', '--data', tmpDir(), '--http', '127.0.0.1:0', '--compute-threads', 'x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--compute-threads: expected an integer/);
});
