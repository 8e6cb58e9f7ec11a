/**
 * Deleted-document bitmap of a generation: which rows of which segments are dead (replaced by a
 * newer version or deleted). Layout (docs/formats.md §deletes):
 *   magic "FSDEL001" | u32 segment_count
 *   per segment (manifest order): 32 B segment object id | u32 doc_count | ceil(doc_count/8) B bitmap (LSB first)
 *   u32 crc32 of every preceding byte
 */
import { crc32 } from 'node:zlib';
import { ByteReader, ByteWriter, bytesEqual, fromHex, toHex, utf8 } from '../../core/bytes.ts';
import { FsmeshError } from '../../core/errors.ts';

const MAGIC = utf8.encode('FSDEL001');

/** Is `docnum` marked in one segment's bitmap (null: the segment has no deletions)? */
export function isDeletedIn(bits: Uint8Array | null, docnum: number): boolean {
  return bits !== null && (bits[docnum >> 3] & (1 << (docnum & 7))) !== 0;
}

export class DeleteBitmap {
  /** segment object id -> bitmap */
  readonly bySegment = new Map<string, { doc_count: number; bits: Uint8Array }>();

  ensure(segmentId: string, docCount: number): Uint8Array {
    let e = this.bySegment.get(segmentId);
    if (!e) {
      e = { doc_count: docCount, bits: new Uint8Array(Math.ceil(docCount / 8)) };
      this.bySegment.set(segmentId, e);
    }
    return e.bits;
  }

  isDeleted(segmentId: string, docnum: number): boolean {
    return isDeletedIn(this.bySegment.get(segmentId)?.bits ?? null, docnum);
  }

  mark(segmentId: string, docCount: number, docnum: number): void {
    const bits = this.ensure(segmentId, docCount);
    bits[docnum >> 3] |= 1 << (docnum & 7);
  }

  deletedCount(segmentId: string): number {
    const e = this.bySegment.get(segmentId);
    if (!e) return 0;
    let n = 0;
    for (const b of e.bits) {
      let x = b;
      while (x) {
        n += x & 1;
        x >>= 1;
      }
    }
    return n;
  }

  /** Encode for the given segment order; segments without deletions get an all-zero bitmap. */
  encode(segments: { object_id: string; doc_count: number }[]): Uint8Array {
    const w = new ByteWriter(64);
    w.bytes(MAGIC);
    w.u32(segments.length);
    for (const s of segments) {
      w.bytes(fromHex(s.object_id));
      w.u32(s.doc_count);
      const e = this.bySegment.get(s.object_id);
      w.bytes(e ? e.bits : new Uint8Array(Math.ceil(s.doc_count / 8)));
    }
    const body = w.finish();
    const out = new ByteWriter(body.length + 4);
    out.bytes(body);
    out.u32(crc32(body));
    return out.finish();
  }

  static decode(objectId: string, bytes: Uint8Array): DeleteBitmap {
    const what = `deletes artifact ${objectId}`;
    if (bytes.length < 16)
      throw new FsmeshError('corrupt_data', `${what}: too short`, { object_id: objectId });
    const body = bytes.subarray(0, bytes.length - 4);
    if (crc32(body) !== new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 4, true)) {
      throw new FsmeshError('corrupt_data', `${what}: checksum mismatch`, { object_id: objectId });
    }
    const r = new ByteReader(body, what);
    if (!bytesEqual(r.bytes(8), MAGIC))
      throw new FsmeshError('corrupt_data', `${what}: bad magic`, { object_id: objectId });
    const n = r.u32();
    const d = new DeleteBitmap();
    for (let i = 0; i < n; i++) {
      const id = toHex(r.bytes(32));
      const docCount = r.u32();
      d.bySegment.set(id, { doc_count: docCount, bits: r.bytes(Math.ceil(docCount / 8)).slice() });
    }
    return d;
  }
}
