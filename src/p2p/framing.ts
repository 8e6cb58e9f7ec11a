/**
 * Stream framing for fsmesh protocols (docs/protocols.md): every message is a u32 little-endian
 * length followed by that many bytes. Frames are capped (MAX_FRAME_BYTES) so a peer cannot make
 * us buffer unbounded data.
 */
import { FsmeshError } from '../core/errors.ts';

export const MAX_FRAME_BYTES = 8 << 20;

export function frame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_BYTES)
    throw new FsmeshError('invalid_input', `frame of ${payload.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, true);
  out.set(payload, 4);
  return out;
}

/** Incremental decoder: push chunks, take complete frames. */
export class FrameDecoder {
  private buf = new Uint8Array(0);
  push(chunk: Uint8Array): Uint8Array[] {
    const merged = new Uint8Array(this.buf.length + chunk.length);
    merged.set(this.buf);
    merged.set(chunk, this.buf.length);
    this.buf = merged;
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.buf.length < 4) break;
      const len = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(0, true);
      if (len > MAX_FRAME_BYTES)
        throw new FsmeshError(
          'invalid_input',
          `peer sent a frame of ${len} bytes (limit ${MAX_FRAME_BYTES})`,
        );
      if (this.buf.length < 4 + len) break;
      out.push(this.buf.slice(4, 4 + len));
      this.buf = this.buf.slice(4 + len);
    }
    return out;
  }
  get pending(): number {
    return this.buf.length;
  }
}
