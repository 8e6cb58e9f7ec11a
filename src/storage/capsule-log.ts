/**
 * Capsule log: append-only, segmented, hash-chained (§3, §6 write path, §8.3).
 *
 * Segment file `log/<first_commit_seq, 20 digits>.log`:
 *   header (24 B): magic "FSMLOG\r\n" | u32 format_version=1 | u32 reserved=0 | u64 first_commit_seq
 *   records:       u32 body_len | u32 crc32(body) | body = marker (80 B) || capsule bytes
 * On open every record is checked (crc, marker decode, commit_id = BLAKE3(capsule),
 * contiguous commit_seq, prev_marker_id links). A damaged *last* record is a torn tail (a crash
 * mid-append, never acknowledged): it is cut with a warning. Damage followed by more bytes is
 * corruption: an error naming file and offset, never silently dropping acknowledged commits.
 * The bytes themselves are in log-format.ts.
 *
 * Length: ~490 lines because the append queue, group commit and replicated appends share one
 * ordering and one set of durable watermarks; splitting them would expose that state.
 */
import { crc32 } from 'node:zlib';
import { UNSAFE } from '../core/buggify.ts';
import { concatBytes } from '../core/bytes.ts';
import { type CommitCapsule, commitIdOf, decodeCapsule, encodeCapsule } from '../core/capsule.ts';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { WIRE_LIMITS } from '../core/defaults.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import {
  type CommitMarker,
  decodeMarker,
  GENESIS_MARKER_ID,
  MARKER_BYTES,
  markerIdOf,
} from '../core/marker.ts';
import type { AppendHandle, Clock, Storage } from '../runtime/index.ts';
import {
  encodeHeader,
  encodeRecord,
  LOG_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  scanSegment,
  segmentName,
} from './log-format.ts';

export const LOG_DIR = DATA_DIR.log_dir;
export {
  encodeRecord,
  LOG_FORMAT_VERSION,
  LOG_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  segmentName,
} from './log-format.ts';
export type DurabilityPolicy =
  | { mode: 'fsync' }
  | { mode: 'group'; group_commit_ms: number; max_batch_bytes?: number };

/** What opening the log repaired: a crash mid-append left a torn tail or a torn segment header. */
export type LogRecoveryEvent =
  | { type: 'log_torn_tail_cut'; file: string; offset: number; size_bytes: number; reason: string }
  | { type: 'log_torn_segment_removed'; file: string; size_bytes: number };

export interface LogOptions {
  storage: Storage;
  clock: Clock;
  durability?: DurabilityPolicy;
  segment_max_bytes?: number;
  /** Called for what recovery did at open (a torn tail cut, a torn segment removed). */
  onRecovery?: (e: LogRecoveryEvent) => void;
  /** Called with a segment's file name once it is sealed (full, fsync'd, never written again). */
  onSealed?: (segment: string) => void;
}

export interface AppendAck {
  commit_seq: number;
  commit_id: ObjectId;
  marker_id: ObjectId;
  /** True when an earlier commit with the same idempotency key was acknowledged instead. */
  deduplicated: boolean;
}

interface RecordLoc {
  segment: string;
  offset: number; // of the record header
  body_len: number;
  marker_id: ObjectId;
  commit_id: ObjectId;
}

interface Pending {
  marker: CommitMarker;
  marker_id: ObjectId;
  capsule_bytes: Uint8Array;
  idempotency_key?: string;
  resolve: (a: AppendAck) => void;
  reject: (e: unknown) => void;
}

export class CapsuleLog {
  private readonly storage: Storage;
  private readonly clock: Clock;
  private readonly durability: DurabilityPolicy;
  private readonly segmentMaxBytes: number;
  private readonly onRecovery: (e: LogRecoveryEvent) => void;
  private readonly onSealed?: (segment: string) => void;

  private readonly locs: RecordLoc[] = []; // index i holds commit_seq i + 1
  private readonly idempotency = new Map<string, { commit_seq: number; commit_id: ObjectId }>();
  private segments: { name: string; first_seq: number }[] = [];
  private handle: AppendHandle | null = null;
  /** Head including records queued but not yet durable. */
  private headSeq = 0;
  private headMarkerId: ObjectId = GENESIS_MARKER_ID;
  /** Durable head: what has been fsync'd (what acknowledgements cover). */
  private durableSeq = 0;
  private durableMarkerId: ObjectId = GENESIS_MARKER_ID;
  private queue: Pending[] = [];
  private flushing = false;
  private flushDone: Promise<void> = Promise.resolve();
  private readonly inflightByKey = new Map<string, Promise<AppendAck>>();
  private flushTimer: { cancel(): void } | null = null;
  private closed = false;
  private readonly listeners = new Set<(ack: AppendAck) => void>();

  private constructor(opts: LogOptions) {
    this.storage = opts.storage;
    this.clock = opts.clock;
    this.durability = opts.durability ?? { mode: 'fsync' };
    this.segmentMaxBytes = opts.segment_max_bytes ?? 64 << 20;
    this.onRecovery = opts.onRecovery ?? (() => {});
    this.onSealed = opts.onSealed;
  }

  static async open(opts: LogOptions): Promise<CapsuleLog> {
    const log = new CapsuleLog(opts);
    await log.recover();
    return log;
  }

  get commitSeqHigh(): number {
    return this.durableSeq;
  }
  get headMarker(): ObjectId {
    return this.durableMarkerId;
  }
  get segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /** Subscribe to durable appends (the builder and replication follow these). */
  onDurable(fn: (ack: AppendAck) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private async recover(): Promise<void> {
    await this.storage.mkdirp(LOG_DIR);
    const names = (await this.storage.list(LOG_DIR)).filter((n) => n.endsWith('.log'));
    let expectSeq = 1;
    let prev = GENESIS_MARKER_ID;
    for (let si = 0; si < names.length; si++) {
      const name = names[si];
      const path = `${LOG_DIR}/${name}`;
      const isLast = si === names.length - 1;
      const bytes = await this.storage.readFile(path);
      if (bytes.length < LOG_HEADER_BYTES && isLast) {
        // A crash while creating the segment: it holds no acknowledged record.
        this.onRecovery({ type: 'log_torn_segment_removed', file: path, size_bytes: bytes.length });
        await this.storage.remove(path);
        continue;
      }
      const scan = scanSegment(bytes, path, isLast, expectSeq, prev, 'integrity');
      this.segments.push({ name, first_seq: expectSeq });
      for (const r of scan.records) {
        this.locs.push({ segment: name, ...r });
        if (r.idempotency_key)
          this.idempotency.set(r.idempotency_key, { commit_seq: expectSeq, commit_id: r.commit_id });
        prev = r.marker_id;
        expectSeq++;
      }
      if (scan.torn) {
        this.onRecovery({ type: 'log_torn_tail_cut', file: path, ...scan.torn });
        await this.storage.truncate(path, scan.torn.offset);
      }
    }
    this.headSeq = this.durableSeq = expectSeq - 1;
    this.headMarkerId = this.durableMarkerId = prev;
    invariant(this.locs.length === this.headSeq, 'one record location per commit_seq');
    if (this.segments.length > 0) {
      const last = this.segments[this.segments.length - 1];
      this.handle = await this.storage.openAppend(`${LOG_DIR}/${last.name}`);
    }
  }

  /** Append a new capsule as the writer: assigns the next commit_seq; resolves once durable. */
  append(capsule: CommitCapsule): Promise<AppendAck> {
    if (this.closed) return Promise.reject(new FsmeshError('conflict', 'capsule log is closed'));
    const capsuleBytes = encodeCapsule(capsule);
    if (capsuleBytes.length > WIRE_LIMITS.max_capsule_bytes)
      return Promise.reject(
        new FsmeshError(
          'invalid_input',
          `commit of ${capsuleBytes.length} bytes exceeds ${WIRE_LIMITS.max_capsule_bytes}, the largest that can replicate; split the batch`,
        ),
      );
    const commitId = commitIdOf(capsuleBytes);
    const key = capsule.idempotency_key;
    if (key !== undefined) {
      const seen = this.idempotency.get(key);
      if (seen) {
        if (seen.commit_id !== commitId) {
          return Promise.reject(
            new FsmeshError(
              'conflict',
              `idempotency key ${JSON.stringify(key)} was already used for a different batch (commit_seq ${seen.commit_seq})`,
            ),
          );
        }
        const loc = this.locs[seen.commit_seq - 1];
        if (seen.commit_seq <= this.durableSeq) {
          return Promise.resolve({
            commit_seq: seen.commit_seq,
            commit_id: commitId,
            marker_id: loc.marker_id,
            deduplicated: true,
          });
        }
        // Still in flight: acknowledge (or fail) together with the original append.
        const inflight = this.inflightByKey.get(key);
        invariant(inflight, 'an undurable idempotency key must have an in-flight append');
        return inflight.then((a) => ({ ...a, deduplicated: true }));
      }
    }
    const marker: CommitMarker = {
      commit_seq: this.headSeq + 1,
      commit_id: commitId,
      prev_marker_id: this.headMarkerId,
    };
    return this.enqueue(marker, capsuleBytes, key);
  }

  /**
   * Append a record produced by the writer (replication, §6): accepted only if it extends our
   * chain exactly (commit_seq = head + 1 and prev_marker_id = our last marker).
   */
  appendReplicated(marker: CommitMarker, capsuleBytes: Uint8Array): Promise<AppendAck> {
    if (this.closed) return Promise.reject(new FsmeshError('conflict', 'capsule log is closed'));
    const capsule = decodeCapsule(capsuleBytes);
    if (commitIdOf(capsuleBytes) !== marker.commit_id) {
      return Promise.reject(
        new FsmeshError('invalid_input', 'replicated commit: commit_id does not match capsule bytes'),
      );
    }
    if (UNSAFE.skip_marker_chain_check && marker.commit_seq <= this.headSeq) {
      // Planted bug (simulator only): overwrite nothing, but pretend the record fits.
      return this.enqueue(
        { ...marker, commit_seq: this.headSeq + 1, prev_marker_id: this.headMarkerId },
        capsuleBytes,
        capsule.idempotency_key,
      );
    }
    if (marker.commit_seq <= this.headSeq) {
      const loc = this.locs[marker.commit_seq - 1];
      if (loc.marker_id === markerIdOf(marker)) {
        // A duplicate is acknowledged only once the first copy is durable: an ack is a promise
        // that the record survives a crash (found by the simulator's quorum-ack check).
        return this.whenDurable(marker.commit_seq, loc.marker_id).then(() => ({
          commit_seq: marker.commit_seq,
          commit_id: marker.commit_id,
          marker_id: loc.marker_id,
          deduplicated: true,
        }));
      }
      return Promise.reject(
        new FsmeshError(
          'conflict',
          `replicated commit ${marker.commit_seq}: diverges from the local history`,
        ),
      );
    }
    if (marker.commit_seq !== this.headSeq + 1) {
      return Promise.reject(
        new FsmeshError(
          'conflict',
          `replicated commit ${marker.commit_seq}: expected commit_seq ${this.headSeq + 1}`,
        ),
      );
    }
    if (marker.prev_marker_id !== this.headMarkerId && !UNSAFE.skip_marker_chain_check) {
      return Promise.reject(
        new FsmeshError(
          'conflict',
          `replicated commit ${marker.commit_seq}: prev_marker_id does not match the local last marker`,
        ),
      );
    }
    return this.enqueue(marker, capsuleBytes, capsule.idempotency_key);
  }

  /** Resolves once commit `seq` (with this marker) is durable; rejects if its append failed. */
  private async whenDurable(seq: number, markerId: ObjectId): Promise<void> {
    while (this.durableSeq < seq) {
      if (this.headSeq < seq || (this.queue.length === 0 && !this.flushing))
        throw new FsmeshError('conflict', `commit ${seq} failed to become durable`);
      await this.flush();
    }
    if (this.locs[seq - 1]?.marker_id !== markerId)
      throw new FsmeshError('conflict', `commit ${seq} was replaced while it became durable`);
  }

  private enqueue(
    marker: CommitMarker,
    capsuleBytes: Uint8Array,
    key: string | undefined,
  ): Promise<AppendAck> {
    const markerId = markerIdOf(marker);
    invariant(marker.commit_seq === this.headSeq + 1, 'commit_seq must be gap-free');
    invariant(marker.prev_marker_id === this.headMarkerId, 'the marker chain links to the head marker');
    invariant(this.durableSeq <= this.headSeq, 'nothing is durable beyond the head');
    this.headSeq = marker.commit_seq;
    this.headMarkerId = markerId;
    this.locs.push({
      segment: '',
      offset: -1,
      body_len: MARKER_BYTES + capsuleBytes.length,
      marker_id: markerId,
      commit_id: marker.commit_id,
    });
    if (key !== undefined)
      this.idempotency.set(key, { commit_seq: marker.commit_seq, commit_id: marker.commit_id });
    const p = new Promise<AppendAck>((resolve, reject) => {
      this.queue.push({
        marker,
        marker_id: markerId,
        capsule_bytes: capsuleBytes,
        idempotency_key: key,
        resolve,
        reject,
      });
      this.scheduleFlush();
    });
    if (key !== undefined) {
      this.inflightByKey.set(key, p);
      const drop = () => this.inflightByKey.delete(key);
      p.then(drop, drop);
    }
    return p;
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushTimer) return;
    if (this.durability.mode === 'group' && this.durability.group_commit_ms > 0) {
      this.flushTimer = this.clock.setTimeout(() => {
        this.flushTimer = null;
        void this.flush();
      }, this.durability.group_commit_ms);
    } else {
      queueMicrotask(() => void this.flush());
    }
  }

  private flush(): Promise<void> {
    if (this.flushing || this.queue.length === 0) return this.flushDone;
    this.flushing = true;
    this.flushDone = this.flushBatch();
    return this.flushDone;
  }

  private async flushBatch(): Promise<void> {
    const maxBatch = this.durability.mode === 'fsync' ? 1 : Number.MAX_SAFE_INTEGER;
    const batch = this.queue.splice(0, maxBatch);
    try {
      const records: Uint8Array[] = [];
      for (const p of batch) {
        await this.ensureSegmentFor(p.marker.commit_seq, records);
        const rec = encodeRecord(p.marker, p.capsule_bytes);
        const loc = this.locs[p.marker.commit_seq - 1];
        loc.segment = this.segments[this.segments.length - 1].name;
        loc.offset = this.handle!.size + records.reduce((n, r) => n + r.length, 0);
        records.push(rec);
      }
      if (records.length) await this.handle!.append(concatBytes(records));
      await this.handle!.sync();
      const last = batch[batch.length - 1];
      invariant(last.marker.commit_seq > this.durableSeq, 'the durable watermark only moves forward');
      this.durableSeq = last.marker.commit_seq;
      this.durableMarkerId = last.marker_id;
      for (const p of batch) {
        const ack: AppendAck = {
          commit_seq: p.marker.commit_seq,
          commit_id: p.marker.commit_id,
          marker_id: p.marker_id,
          deduplicated: false,
        };
        p.resolve(ack);
        for (const l of this.listeners) l(ack);
      }
    } catch (err) {
      await this.failPending(batch, err);
    } finally {
      this.flushing = false;
      if (this.queue.length) this.scheduleFlush();
    }
  }

  /** Roll to a new segment when the current one is full (writing any buffered records first). */
  private async ensureSegmentFor(seq: number, buffered: Uint8Array[]): Promise<void> {
    const pendingBytes = buffered.reduce((n, r) => n + r.length, 0);
    if (this.handle && this.handle.size + pendingBytes < this.segmentMaxBytes) return;
    const sealed = this.handle ? this.segments[this.segments.length - 1].name : null;
    if (this.handle) {
      if (buffered.length) {
        await this.handle.append(concatBytes(buffered.splice(0)));
      }
      await this.handle.sync();
      await this.handle.close();
    }
    if (sealed) this.onSealed?.(sealed);
    const name = segmentName(seq);
    const path = `${LOG_DIR}/${name}`;
    await this.storage.writeFile(path, encodeHeader(seq), { sync: true });
    await this.storage.syncDir(LOG_DIR);
    this.segments.push({ name, first_seq: seq });
    this.handle = await this.storage.openAppend(path);
  }

  /** A write or fsync failed: nothing past the durable head may be acknowledged or kept. */
  private async failPending(batch: Pending[], err: unknown): Promise<void> {
    const rest = this.queue.splice(0);
    const all = [...batch, ...rest];
    for (let s = this.headSeq; s > this.durableSeq; s--) {
      const p = all.find((x) => x.marker.commit_seq === s);
      if (p?.idempotency_key !== undefined) this.idempotency.delete(p.idempotency_key);
      this.locs.pop();
    }
    this.headSeq = this.durableSeq;
    this.headMarkerId = this.durableMarkerId;
    try {
      // Cut whatever part of the failed write reached the file, so the next append starts clean.
      if (this.handle) {
        const lastLoc = this.locs[this.durableSeq - 1];
        const seg = this.segments[this.segments.length - 1];
        const end =
          lastLoc && lastLoc.segment === seg.name
            ? lastLoc.offset + RECORD_HEADER_BYTES + lastLoc.body_len
            : LOG_HEADER_BYTES;
        await this.handle.close();
        await this.storage.truncate(`${LOG_DIR}/${seg.name}`, end);
        this.handle = await this.storage.openAppend(`${LOG_DIR}/${seg.name}`);
      }
    } catch {
      // The torn-tail recovery on next open handles whatever we could not cut here.
    }
    const e = new FsmeshError('internal', `capsule log append failed: ${(err as Error).message}`);
    for (const p of all) p.reject(e);
  }

  /**
   * Failover (docs/protocols.md §failover): keep the history up to `commitSeq` and cut the rest —
   * a suffix the new writer's signed handover says was never acknowledged by a quorum. Only with no
   * append in flight (the node is, or becomes, a replica). Durable: files cut and fsync'd.
   */
  async truncateAfter(commitSeq: number): Promise<{ removed: number }> {
    invariant(this.queue.length === 0 && !this.flushing, 'no append in flight while truncating');
    invariant(commitSeq >= 0 && commitSeq <= this.durableSeq, 'truncation point inside the durable log');
    const removed = this.durableSeq - commitSeq;
    if (removed === 0) return { removed };
    const first = this.locs[commitSeq]; // the first record to remove
    const keep = this.segments.findIndex((s) => s.name === first.segment);
    invariant(keep >= 0, 'the record to cut lies in a known segment');
    await this.handle?.close();
    this.handle = null;
    for (const s of this.segments.slice(keep + 1)) {
      await this.storage.remove(`${LOG_DIR}/${s.name}`);
      await this.storage.remove(`${LOG_DIR}/${s.name}.id`);
    }
    const seg = this.segments[keep];
    // A cut sealed segment is no longer the protected object it was recorded as.
    await this.storage.remove(`${LOG_DIR}/${seg.name}.id`);
    await this.storage.truncate(`${LOG_DIR}/${seg.name}`, first.offset);
    await this.storage.syncDir(LOG_DIR);
    this.segments = this.segments.slice(0, keep + 1);
    this.locs.length = commitSeq;
    for (const [k, v] of this.idempotency) if (v.commit_seq > commitSeq) this.idempotency.delete(k);
    this.headSeq = this.durableSeq = commitSeq;
    this.headMarkerId = this.durableMarkerId = commitSeq
      ? this.locs[commitSeq - 1].marker_id
      : GENESIS_MARKER_ID;
    this.handle = await this.storage.openAppend(`${LOG_DIR}/${seg.name}`);
    invariant(this.locs.length === this.headSeq, 'one record location per commit_seq');
    return { removed };
  }

  /** Read one durable record, its capsule decoded and validated. */
  async read(commitSeq: number): Promise<{
    marker: CommitMarker;
    marker_id: ObjectId;
    capsule_bytes: Uint8Array;
    capsule: CommitCapsule;
  }> {
    const r = await this.readRecord(commitSeq);
    return { ...r, capsule: decodeCapsule(r.capsule_bytes) };
  }

  /**
   * Read one durable record as stored — checksum and marker checked, the capsule not decoded:
   * what a peer is sent (it validates the capsule and its commit id itself). `body` is the marker
   * bytes followed by the capsule bytes, the record as it travels (docs/protocols.md).
   */
  async readRecord(commitSeq: number): Promise<{
    marker: CommitMarker;
    marker_id: ObjectId;
    body: Uint8Array;
    capsule_bytes: Uint8Array;
  }> {
    if (!Number.isSafeInteger(commitSeq) || commitSeq < 1 || commitSeq > this.durableSeq) {
      throw new FsmeshError(
        'not_found',
        `commit_seq ${commitSeq} is not in the log (durable head ${this.durableSeq})`,
      );
    }
    const loc = this.locs[commitSeq - 1];
    const rec = await this.storage.readRange(
      `${LOG_DIR}/${loc.segment}`,
      loc.offset,
      RECORD_HEADER_BYTES + loc.body_len,
    );
    const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    const body = rec.subarray(RECORD_HEADER_BYTES);
    if (rec.length !== RECORD_HEADER_BYTES + loc.body_len || crc32(body) !== dv.getUint32(4, true)) {
      throw new FsmeshError(
        'corrupt_data',
        `capsule log ${loc.segment}: record for commit_seq ${commitSeq} at offset ${loc.offset} failed its checksum`,
      );
    }
    const marker = decodeMarker(body.subarray(0, MARKER_BYTES));
    invariant(marker.commit_seq === commitSeq, 'log index points at the wrong record');
    return { marker, marker_id: loc.marker_id, body, capsule_bytes: body.subarray(MARKER_BYTES) };
  }

  /** Records as stored (readRecord), in commit order. */
  async *rangeRecords(fromSeq: number, toSeq: number) {
    for (let s = Math.max(1, fromSeq); s <= Math.min(toSeq, this.durableSeq); s++)
      yield { commit_seq: s, ...(await this.readRecord(s)) };
  }

  async *range(fromSeq: number, toSeq: number) {
    for (let s = Math.max(1, fromSeq); s <= Math.min(toSeq, this.durableSeq); s++)
      yield { commit_seq: s, ...(await this.read(s)) };
  }

  markerIdAt(commitSeq: number): ObjectId {
    if (commitSeq === 0) return GENESIS_MARKER_ID;
    invariant(commitSeq >= 1 && commitSeq <= this.durableSeq, `markerIdAt(${commitSeq}) out of range`);
    return this.locs[commitSeq - 1].marker_id;
  }

  /** Wait for queued appends to become durable, then close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flushTimer?.cancel();
    this.flushTimer = null;
    while (this.queue.length || this.flushing) await this.flush();
    await this.handle?.close();
    this.handle = null;
  }
}
