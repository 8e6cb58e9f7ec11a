/**
 * Stream framing for fsmesh protocols (docs/protocols.md): every message is a u32 little-endian
 * length followed by that many bytes. Frames are capped (MAX_FRAME_BYTES) so a peer cannot make
 * us buffer unbounded data.
 */
import { WIRE_LIMITS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';

export const MAX_FRAME_BYTES = WIRE_LIMITS.max_frame_bytes;

export function frame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_BYTES)
    throw new FsmeshError('invalid_input', `frame of ${payload.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, true);
  out.set(payload, 4);
  return out;
}

/** Frames are written in batches of about this many bytes (see coalesceFrames). */
export const SEND_BATCH_BYTES = 60 * 1024;

/**
 * The framed bytes of `payloads` (each u32 length + payload, exactly as `frame` makes them), cut
 * into buffers of at most `batchBytes`. A frame larger than that is not copied: its length prefix
 * and the payload itself go out as two buffers (a symbol run of 1 MiB). The bytes on the wire are
 * the same as writing frame by frame; only the write sizes change.
 */
export function* coalesceFrames(payloads: Uint8Array[], batchBytes: number): Generator<Uint8Array> {
  let i = 0;
  while (i < payloads.length) {
    if (4 + payloads[i].length > batchBytes) {
      const p = payloads[i++];
      if (p.length > MAX_FRAME_BYTES)
        throw new FsmeshError('invalid_input', `frame of ${p.length} bytes exceeds ${MAX_FRAME_BYTES}`);
      const head = new Uint8Array(4);
      new DataView(head.buffer).setUint32(0, p.length, true);
      yield head;
      yield p;
      continue;
    }
    let size = 0;
    let j = i;
    while (j < payloads.length && (j === i || size + 4 + payloads[j].length <= batchBytes)) {
      if (payloads[j].length > MAX_FRAME_BYTES)
        throw new FsmeshError(
          'invalid_input',
          `frame of ${payloads[j].length} bytes exceeds ${MAX_FRAME_BYTES}`,
        );
      size += 4 + payloads[j].length;
      j++;
    }
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    let o = 0;
    for (let k = i; k < j; k++) {
      view.setUint32(o, payloads[k].length, true);
      out.set(payloads[k], o + 4);
      o += 4 + payloads[k].length;
    }
    yield out;
    i = j;
  }
}

/** Incremental decoder: push chunks, take complete frames (no quadratic re-copying). */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private length = 0;
  private need = -1; // payload length of the frame being read, -1 = header not read yet
  /** Frames past this many bytes are refused before any of them is buffered. */
  private readonly maxFrameBytes: number;

  constructor(maxFrameBytes = MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  private take(n: number): Uint8Array {
    // A frame inside one received chunk is a view of it, not a copy (most symbols are).
    const c0 = this.chunks[0];
    if (c0 !== undefined && c0.length >= n) {
      const view = c0.subarray(0, n);
      if (n === c0.length) this.chunks.shift();
      else this.chunks[0] = c0.subarray(n);
      this.length -= n;
      return view;
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.length -= n;
    return out;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.length < 4) break;
        const h = this.take(4);
        this.need = new DataView(h.buffer, h.byteOffset, 4).getUint32(0, true);
        if (this.need > this.maxFrameBytes)
          throw new FsmeshError(
            'invalid_input',
            `peer sent a frame of ${this.need} bytes (limit ${this.maxFrameBytes})`,
          );
      }
      if (this.length < this.need) break;
      out.push(this.take(this.need));
      this.need = -1;
    }
    return out;
  }

  get pending(): number {
    return this.length + (this.need >= 0 ? 4 : 0);
  }
}

/** Error responses travel as a single frame: 0xFF 'E' + UTF-8 JSON {code, message}. */
const ERR_MAGIC = [0xff, 0x45];
export function errorFrame(err: unknown): Uint8Array {
  const e = err as { code?: string; message?: string };
  const body = new TextEncoder().encode(
    JSON.stringify({ code: e.code ?? 'internal', message: e.message ?? String(err) }),
  );
  const out = new Uint8Array(2 + body.length);
  out.set(ERR_MAGIC);
  out.set(body, 2);
  return out;
}
export function throwIfError(f: Uint8Array): void {
  if (f.length >= 2 && f[0] === ERR_MAGIC[0] && f[1] === ERR_MAGIC[1]) {
    let parsed: { code?: string; message?: string } = {};
    try {
      parsed = JSON.parse(new TextDecoder().decode(f.subarray(2)));
    } catch {
      parsed = { code: 'internal', message: 'unparseable error frame' };
    }
    throw new FsmeshError((parsed.code as never) ?? 'internal', `peer error: ${parsed.message}`);
  }
}
