/**
 * Trust and membership (§8.4): who the shard's writer is (configured, or pinned on first use and
 * kept in the data dir), which generation records are acceptable (structure, cluster and shard,
 * signature, trusted writer, no divergence from what we saw), the writer's commit head with the
 * lag alert (§7.3), and the quarantine of divergent manifests.
 */

import { UNSAFE } from '../../core/buggify.ts';
import { DATA_DIR, quarantinePath } from '../../core/data-dir-layout.ts';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { manifestIdOf } from '../../core/manifest.ts';
import type { NodeComponents } from '../../node/services.ts';
import { isNotFound, type Transport, writeFileAtomic } from '../../runtime/index.ts';
import type { ClusterOptions } from '../cluster-options.ts';
import { decodeSignedRecord, type SignedRecord, verifyRecordSignature } from '../records.ts';

export type MembershipComponents = Pick<
  NodeComponents,
  'storage' | 'events' | 'shard' | 'noteLatestGeneration'
> & {
  transport: Transport;
  /** Only the active generation is read (lag alerts); a shard kept nowhere here has none. */
  generations: Pick<NodeComponents['generations'], 'active'>;
};

/** Signed records kept per shard (retention keeps far fewer generations). */
const MAX_KEPT_RECORDS = 64;

export class Membership {
  private readonly c: MembershipComponents;
  private readonly opts: ClusterOptions;
  trusted: string | null = null;
  /** The newest acceptable record from the trusted writer. */
  latest: SignedRecord | null = null;
  writer_head = 0;
  private lagAlerted = false;
  private readonly seen = new Map<string, string>(); // generation_id -> manifest id (trusted records)
  /** The newest trusted records, signed, by generation id (bounded): answers for a shard carry them. */
  private readonly records = new Map<string, SignedRecord>();
  private readonly warnedWriters = new Set<string>();

  constructor(c: MembershipComponents, opts: ClusterOptions) {
    this.c = c;
    this.opts = opts;
  }

  /** Writers trust themselves; replicas the configured writer, else the pinned one. */
  async load(): Promise<void> {
    if (this.opts.role === 'writer') this.trusted = this.c.transport.peerId;
    else if (this.opts.trusted_writer) this.trusted = this.opts.trusted_writer;
    else {
      try {
        const text = new TextDecoder().decode(await this.c.storage.readFile(DATA_DIR.trusted_writer_file));
        this.trusted = text.trim() || null;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  /**
   * Trust on first use: pin the first writer learned through our seeds (stored in the data dir).
   * Only a peer named in a seed multiaddr can be pinned — its identity is what the operator typed —
   * so a stranger claiming to be the writer is never trusted. True when `writer` is now trusted.
   */
  async pinWriter(writer: string): Promise<boolean> {
    if (this.trusted) return this.trusted === writer;
    if (!(this.opts.seed_peer_ids ?? []).includes(writer)) return false;
    // Trusted in memory at once (a caller may start fetching); durable once the write is done.
    this.trusted = writer;
    const write = writeFileAtomic(
      this.c.storage,
      DATA_DIR.trusted_writer_file,
      new TextEncoder().encode(`${writer}\n`),
    );
    this.pinWrite = write;
    try {
      await write;
    } catch (err) {
      // Those waiting on this write fail (and retry); later ones are not held by it for good.
      if (this.pinWrite === write) this.pinWrite = Promise.resolve();
      throw err;
    }
    return true;
  }

  /** The pin's write to disk (fsync: up to ~200 ms beside other writers on this machine's disk). */
  private pinWrite: Promise<void> = Promise.resolve();

  /**
   * Resolves once the pinned writer is on disk. Anything durable that follows from trusting it (an
   * activation, a log append) waits for this; fetching does not.
   */
  pinDurable(): Promise<void> {
    return this.pinWrite;
  }

  /** Gossip validator: structure, size, trusted writer signature. Divergence is checked on admit. */
  async checkRecord(data: Uint8Array): Promise<boolean> {
    let s: SignedRecord;
    try {
      s = decodeSignedRecord(data);
    } catch {
      return false;
    }
    if (s.record.cluster !== this.opts.cluster || s.record.shard !== this.c.shard) return false;
    // A record of another shard layout (a cluster re-created with another --shards) never counts.
    if ((s.record.shards ?? 1) !== this.opts.shards) return false;
    if (UNSAFE.skip_record_signature_check) return true; // planted bug (simulator only)
    if (!(await verifyRecordSignature(s))) return false;
    if (this.trusted && s.record.writer !== this.trusted) {
      if (!this.warnedWriters.has(s.record.writer)) {
        this.warnedWriters.add(s.record.writer);
        this.c.events.emit('writer_key_changed', {
          generation_id: s.record.generation_id,
          commit_seq: s.record.commit_seq_high,
          trusted_writer: this.trusted,
          offered_writer: s.record.writer,
        });
      }
      return false;
    }
    return true;
  }

  /**
   * A record offered by `from` (gossip or a head answer): validated, the writer pinned on first
   * use, checked against what we saw for the same generation. True when it is new and acceptable.
   */
  async admitRecord(data: Uint8Array, from: string): Promise<boolean> {
    if (!(await this.checkRecord(data))) {
      this.c.events.emit('manifest_rejected', {
        reason: 'invalid record or signature, or untrusted writer',
        from,
      });
      return false;
    }
    const s = decodeSignedRecord(data);
    if (!this.trusted && !(await this.pinWriter(s.record.writer))) return false; // no trust yet
    const prev = this.seen.get(s.record.generation_id);
    if (prev && prev !== s.record.artifact_manifest_id) {
      this.c.events.emit('manifest_divergence_detected', {
        generation_id: s.record.generation_id,
        commit_seq: s.record.commit_seq_high,
        known_manifest_id: prev,
        offered_manifest_id: s.record.artifact_manifest_id,
        from,
      });
      return false;
    }
    this.seen.set(s.record.generation_id, s.record.artifact_manifest_id);
    this.records.set(s.record.generation_id, s);
    if (this.records.size > MAX_KEPT_RECORDS) {
      const oldest = [...this.records.values()].sort(
        (a, b) => a.record.generation_seq - b.record.generation_seq,
      )[0];
      this.records.delete(oldest.record.generation_id);
    }
    this.c.noteLatestGeneration(s.record.generation_seq);
    this.noteWriterHead(s.record.commit_seq_high);
    if (!this.latest || s.record.generation_seq > this.latest.record.generation_seq) this.latest = s;
    return true;
  }

  /**
   * Failover: trust `writer` from now on (persisted). Records seen from the former writer no
   * longer decide divergence: the new writer's history is the truth from here.
   */
  follow(writer: string): void {
    this.trusted = writer;
    this.seen.clear();
    this.records.clear();
    this.latest = null;
    this.writer_head = 0;
    void writeFileAtomic(
      this.c.storage,
      DATA_DIR.trusted_writer_file,
      new TextEncoder().encode(`${writer}\n`),
    ).catch(() => {});
  }

  /** The trusted writer's signed record of this generation, if this node kept it. */
  recordOf(generation_id: string): SignedRecord | null {
    return this.records.get(generation_id) ?? null;
  }

  /** A generation record of the trusted writer named exactly this manifest. */
  isTrustedManifest(generation_id: string, artifact_manifest_id: string): boolean {
    return this.seen.get(generation_id) === artifact_manifest_id;
  }

  /** The writer's commit head as heard; raises the lag alert past the threshold (§7.3). */
  noteWriterHead(high: number): void {
    if (!Number.isSafeInteger(high)) return;
    this.writer_head = Math.max(this.writer_head, high);
    const active = this.c.generations.active;
    const activeHigh = active?.commit_seq_high ?? 0;
    const lag = this.writer_head - activeHigh;
    if (lag > this.opts.lag_alert_commits && !this.lagAlerted) {
      this.lagAlerted = true;
      this.c.events.emit('commit_lag_alert', {
        generation_id: active?.generation_id,
        commit_seq: activeHigh,
        lag_commits: lag,
        threshold_commits: this.opts.lag_alert_commits,
      });
    } else if (lag <= this.opts.lag_alert_commits) this.lagAlerted = false;
  }

  /** §8.4: keep divergent manifest bytes aside for inspection, never activated (bounded space). */
  async quarantine(bytes: Uint8Array, reason: string): Promise<void> {
    const st = this.c.storage;
    const id = manifestIdOf(bytes);
    await st.mkdirp(DATA_DIR.quarantine_dir);
    const held = (await st.list(DATA_DIR.quarantine_dir)).filter((n) => !n.endsWith('.reason')).sort();
    if (held.length >= CLUSTER_DEFAULTS.quarantine_max_files) return; // enough evidence kept already
    await st.writeFile(quarantinePath(id), bytes, { sync: true });
    await st.writeFile(quarantinePath(`${id}.reason`), new TextEncoder().encode(`${reason}\n`));
  }
}
