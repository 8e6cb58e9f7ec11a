/**
 * Stream framing: coalesced writes carry exactly the bytes of frame-by-frame writes, and the
 * decoder gives back every payload whatever the chunking (frames inside a chunk come back as
 * views, frames across chunks as copies), rejecting an oversized length before buffering it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coalesceFrames, FrameDecoder, frame, MAX_FRAME_BYTES } from '../../src/p2p/framing.ts';
import { seededRandom } from '../../src/runtime/index.ts';

const concat = (xs: Uint8Array[]) => Buffer.concat(xs);

test('coalesced frames are the same bytes; decoding survives any chunking', () => {
  const rng = seededRandom(5);
  const payloads = Array.from({ length: 300 }, (_, i) =>
    new Uint8Array(i % 17 === 0 ? 70_000 : rng.int(5000)).map((_, k) => (k * 31 + i) & 0xff),
  );
  const oneByOne = concat(payloads.map(frame));
  for (const batch of [16, 4096, 60 * 1024]) {
    const parts = [...coalesceFrames(payloads, batch)];
    assert.deepEqual(concat(parts), oneByOne, `batch ${batch}`);
    // Each write stays within the batch unless a single frame is larger than it.
    for (const p of parts) assert.ok(p.length <= Math.max(batch, 4 + 70_000));
  }
  // A frame over the batch size goes out as its length prefix and the payload itself, uncopied.
  const big = new Uint8Array(100_000).fill(9);
  const parts = [...coalesceFrames([payloads[1], big, payloads[2]], 60 * 1024)];
  assert.ok(parts.includes(big), 'the large payload is passed through, not copied');
  assert.deepEqual(concat(parts), concat([payloads[1], big, payloads[2]].map(frame)));
  // Decode with random chunk boundaries.
  const dec = new FrameDecoder();
  const out: Uint8Array[] = [];
  for (let o = 0; o < oneByOne.length; ) {
    const n = 1 + rng.int(9000);
    out.push(...dec.push(oneByOne.subarray(o, o + n)));
    o += n;
  }
  assert.equal(dec.pending, 0);
  assert.equal(out.length, payloads.length);
  out.forEach((p, i) => assert.deepEqual(Buffer.from(p), Buffer.from(payloads[i]), `frame ${i}`));
  // An empty payload and a length over the limit.
  assert.deepEqual(new FrameDecoder().push(frame(new Uint8Array(0))), [new Uint8Array(0)]);
  const bad = new Uint8Array(4);
  new DataView(bad.buffer).setUint32(0, MAX_FRAME_BYTES + 1, true);
  assert.throws(() => new FrameDecoder().push(bad), /limit/);
  assert.throws(() => [...coalesceFrames([new Uint8Array(MAX_FRAME_BYTES + 1)], 1024)], /exceeds/);
});
