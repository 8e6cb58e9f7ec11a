/**
 * The answer-frame pool (src/core/frame-pool.ts): a returned frame is handed out again for the same
 * size, dirty; only whole frames the pool lent come back (views, foreign buffers and second returns
 * are ignored); small frames are not pooled; the free bytes stay bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { framePoolStats, POOLED_FRAME_MIN_BYTES, returnFrame, takeFrame } from '../../src/core/frame-pool.ts';

const SIZE = POOLED_FRAME_MIN_BYTES + 123;

test('a returned frame is reused for its size, as it was left; anything else is ignored', () => {
  const a = takeFrame(SIZE);
  assert.equal(a.length, SIZE);
  a.fill(0xab);
  const reused = framePoolStats().reused_total;
  returnFrame(a);
  returnFrame(a); // a second return is ignored: the frame is not lent any more
  const b = takeFrame(SIZE);
  assert.ok(b === a, 'the same frame');
  assert.equal(b[SIZE - 1], 0xab, 'not zeroed: its taker overwrites it');
  assert.equal(framePoolStats().reused_total, reused + 1);
  assert.ok(takeFrame(SIZE) !== a, 'returned once, handed out once');

  // A view of a lent frame, a buffer the pool never lent, a small frame: never pooled.
  const before = framePoolStats().free_bytes;
  returnFrame(b.subarray(1));
  returnFrame(new Uint8Array(SIZE));
  const small = takeFrame(1024);
  returnFrame(small);
  assert.equal(framePoolStats().free_bytes, before);
  assert.ok(takeFrame(1024) !== small);
});

test('the pool keeps a bounded number of free bytes', () => {
  const frames = Array.from({ length: 200 }, () => takeFrame(1 << 20));
  for (const f of frames) returnFrame(f);
  const { free_bytes } = framePoolStats();
  assert.ok(free_bytes > 0 && free_bytes <= 16 << 20, `${free_bytes} bytes free`);
  // Take back what is free (at most 16 frames of this size).
  for (let i = 0; i < 16; i++) takeFrame(1 << 20);
  assert.equal(framePoolStats().free_bytes, 0);
});
