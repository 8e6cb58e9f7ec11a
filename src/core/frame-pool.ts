/**
 * Reused buffers for large answer frames (a symbol run of up to 1 MiB). A node serving a bootstrap
 * allocated ~90 MB of fresh frames per fetch, and V8 answered the growing external memory with a
 * mark-compact every ~150-300 ms of the transfer (docs/benchmarks.md). A frame taken here goes back
 * only from the one place that owns it to the end — the bulk lane, once its socket has written it —
 * so a frame anyone else keeps (a caller's symbol views, a libp2p stream) is simply never returned
 * and is collected as before.
 *
 * A taken frame is NOT zeroed: its taker overwrites every byte.
 */
import { invariant } from './errors.ts';

/** Frames below this size are cheap to allocate and are not pooled. */
export const POOLED_FRAME_MIN_BYTES = 256 * 1024;
/** Bytes of free frames kept, all sizes together (the common size is a full run: 4 + 256 × 4096). */
const FREE_MAX_BYTES = 16 << 20;

const free = new Map<number, Uint8Array[]>();
let freeBytes = 0;
let reusedTotal = 0;

/** Bytes held free now, and how many frames were handed out again instead of allocated. */
export function framePoolStats(): { free_bytes: number; reused_total: number } {
  return { free_bytes: freeBytes, reused_total: reusedTotal };
}
/** Backing buffers handed out by takeFrame and not returned yet. */
const lent = new WeakSet<ArrayBufferLike>();

/** A buffer of exactly `n` bytes, reused when one of that size was returned; contents undefined. */
export function takeFrame(n: number): Uint8Array {
  invariant(Number.isInteger(n) && n >= 0, 'frame pool: a byte count');
  if (n < POOLED_FRAME_MIN_BYTES) return new Uint8Array(n);
  const list = free.get(n);
  let b = list?.pop();
  if (b) {
    freeBytes -= n;
    reusedTotal++;
    if (list!.length === 0) free.delete(n);
  } else b = new Uint8Array(new ArrayBuffer(n));
  lent.add(b.buffer);
  return b;
}

/**
 * Give a frame back once nothing refers to it any more. Anything that is not a whole frame lent
 * by takeFrame (a view, a frame from elsewhere, one already returned) is ignored.
 */
export function returnFrame(b: Uint8Array): void {
  if (b.byteOffset !== 0 || b.length !== b.buffer.byteLength || !lent.has(b.buffer)) return;
  lent.delete(b.buffer);
  if (freeBytes + b.length > FREE_MAX_BYTES) return;
  let list = free.get(b.length);
  if (!list) {
    list = [];
    free.set(b.length, list);
  }
  list.push(b);
  freeBytes += b.length;
}
