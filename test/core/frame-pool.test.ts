/**
 * The frame pools (src/core/frame-pool.ts): a frame given back is handed out again for the same
 * size, dirty; only whole frames the pool lent come back (views, foreign buffers, a second give and
 * another pool's frames are ignored); small frames are not pooled; the free bytes stay bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FramePool, POOLED_FRAME_MIN_BYTES } from '../../src/core/frame-pool.ts';

const SIZE = POOLED_FRAME_MIN_BYTES + 123;

// Frames are compared by identity: a failing assert.equal would print a diff of two large arrays.
test('a frame given back is reused for its size, as it was left; anything else is ignored', () => {
  const pool = new FramePool();
  const a = pool.take(SIZE);
  assert.equal(a.length, SIZE);
  a.fill(0xab);
  pool.give(a);
  pool.give(a); // a second give is ignored: the frame is not lent any more
  const b = pool.take(SIZE);
  assert.ok(b === a, 'the same frame');
  assert.equal(b[SIZE - 1], 0xab, 'not zeroed: its taker overwrites it');
  assert.equal(pool.stats().reused_total, 1);
  assert.ok(pool.take(SIZE) !== a, 'given back once, handed out once');

  // A view of a lent frame, a buffer the pool never lent, a small frame: never pooled.
  pool.give(b.subarray(1));
  pool.give(new Uint8Array(SIZE));
  const small = pool.take(1024);
  pool.give(small);
  assert.equal(pool.stats().free_bytes, 0);
  assert.ok(pool.take(1024) !== small);
});

test("the free bytes are bounded; a pool does not take another pool's frames", () => {
  const pool = new FramePool(16 << 20);
  const frames = Array.from({ length: 200 }, () => pool.take(1 << 20));
  for (const f of frames) pool.give(f);
  assert.equal(pool.stats().free_bytes, 16 << 20);
  const other = new FramePool();
  other.give(pool.take(1 << 20));
  assert.equal(other.stats().free_bytes, 0);
});
