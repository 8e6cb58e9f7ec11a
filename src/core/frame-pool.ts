/**
 * Reused buffers for large frames (a symbol run of up to 1 MiB). A node serving a bootstrap
 * allocated ~90 MB of fresh frames per fetch, and V8 answered the growing external memory with a
 * mark-compact every few hundred ms of the transfer (docs/benchmarks.md). A frame goes back to its
 * pool only from the one place that owns it to its end, so a frame anyone else keeps (a caller's
 * symbol views, a message the simulator delivers twice) is simply never returned and is collected
 * as before. A pool never takes back another pool's frames. (The fetching side reassembles frames
 * from socket chunks into fresh buffers: pooling those too measured no faster, 12 A/B runs.)
 *
 * A taken frame is NOT zeroed: its taker overwrites every byte.
 */
import { invariant } from './errors.ts';

/** Frames below this size are cheap to allocate and are not pooled. */
export const POOLED_FRAME_MIN_BYTES = 256 * 1024;

export class FramePool {
  private readonly free = new Map<number, Uint8Array[]>();
  /** Backing buffers handed out by take and not given back yet. */
  private readonly lent = new WeakSet<ArrayBufferLike>();
  private freeBytes = 0;
  private reusedTotal = 0;
  /** Bytes of free frames kept, all sizes together. */
  private readonly maxFreeBytes: number;

  constructor(maxFreeBytes = 16 << 20) {
    this.maxFreeBytes = maxFreeBytes;
  }

  /** A buffer of exactly `n` bytes, reused when one of that size was given back; contents undefined. */
  take(n: number): Uint8Array {
    invariant(Number.isInteger(n) && n >= 0, 'frame pool: a byte count');
    if (n < POOLED_FRAME_MIN_BYTES) return new Uint8Array(n);
    const list = this.free.get(n);
    let b = list?.pop();
    if (b) {
      this.freeBytes -= n;
      this.reusedTotal++;
      if (list!.length === 0) this.free.delete(n);
    } else b = new Uint8Array(new ArrayBuffer(n));
    this.lent.add(b.buffer);
    return b;
  }

  /**
   * Give a frame back once nothing refers to it any more. Anything that is not a whole frame this
   * pool lent (a view, a frame from elsewhere, one already given back) is ignored.
   */
  give(b: Uint8Array): void {
    if (b.byteOffset !== 0 || b.length !== b.buffer.byteLength || !this.lent.has(b.buffer)) return;
    this.lent.delete(b.buffer);
    if (this.freeBytes + b.length > this.maxFreeBytes) return;
    let list = this.free.get(b.length);
    if (!list) {
      list = [];
      this.free.set(b.length, list);
    }
    list.push(b);
    this.freeBytes += b.length;
  }

  /** Bytes held free now, and how many frames were handed out again instead of allocated. */
  stats(): { free_bytes: number; reused_total: number } {
    return { free_bytes: this.freeBytes, reused_total: this.reusedTotal };
  }
}

/** Symbol runs read to answer peers; given back by the bulk lane once its socket wrote them. */
export const servedFrames = new FramePool();
