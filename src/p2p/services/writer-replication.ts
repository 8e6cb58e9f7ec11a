/**
 * The writer side of replication (§6): announce the active generation as a signed record and the
 * commit head over gossip, ship every commit to every connected replica in order, and resolve a
 * write per the durability mode — at once (`local`) or when a majority of members hold it (`quorum`).
 */
import type { PrivateKey } from '@libp2p/interface';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import { encodeMarker } from '../../core/marker.ts';
import type { NodeComponents } from '../../node/services.ts';
import type { Transport } from '../../runtime/index.ts';
import type { AppendAck } from '../../storage/capsule-log.ts';
import type { ClusterOptions } from '../cluster-options.ts';
import { jsonFrame, PROTO, parseJsonFrame, topics } from '../protocols.ts';
import { encodeSignedRecord, type SignedRecord, signRecord } from '../records.ts';
import { recordBytes } from './protocol-server.ts';

export type WriterReplicationComponents = Pick<
  NodeComponents,
  'log' | 'generations' | 'clock' | 'metrics' | 'shard'
> & {
  transport: Transport;
  key: PrivateKey;
};

export class WriterReplication {
  private readonly c: WriterReplicationComponents;
  private readonly opts: ClusterOptions;
  private readonly t: { manifests: string; heads: string };
  private ownRecord: SignedRecord | null = null;
  private readonly acks = new Map<number, { need: number; have: number; done: () => void }>();
  private readonly replicaChains = new Map<string, Promise<void>>();
  private readonly replicaHigh = new Map<string, number>();
  stopped = false;

  constructor(c: WriterReplicationComponents, opts: ClusterOptions) {
    this.c = c;
    this.opts = opts;
    this.t = topics(opts.cluster, c.shard);
  }

  /** The signed record of our active generation (what head answers carry). */
  currentRecord(): SignedRecord | null {
    return this.ownRecord;
  }

  async announce(): Promise<void> {
    const { transport } = this.c;
    const a = this.c.generations.active;
    if (a) {
      if (!this.ownRecord || this.ownRecord.record.artifact_manifest_id !== a.artifact_manifest_id) {
        this.ownRecord = await signRecord(this.c.key, {
          format: 1,
          cluster: this.opts.cluster,
          shard: this.c.shard,
          generation_id: a.generation_id,
          generation_seq: a.generation_seq,
          artifact_manifest_id: a.artifact_manifest_id,
          commit_seq_high: a.commit_seq_high,
          writer: transport.peerId,
        });
      }
      await transport.publish(this.t.manifests, encodeSignedRecord(this.ownRecord)).catch(() => {});
    }
    await transport
      .publish(
        this.t.heads,
        jsonFrame({ commit_seq_high: this.c.log.commitSeqHigh, writer: transport.peerId }),
      )
      .catch(() => {});
    this.c.metrics.peers_connected.set(transport.peers().length);
  }

  /** §6: ship the commit to every connected replica, in order; resolve per durability mode. */
  awaitDurable(ack: AppendAck): Promise<void> {
    for (const p of this.c.transport.peers()) this.enqueueReplica(p, ack.commit_seq);
    if (this.opts.durability === 'local') return Promise.resolve();
    const need = Math.floor(this.opts.members / 2) + 1 - 1; // replicas needed besides ourselves
    if (need <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const entry = { need, have: 0, done: resolve };
      this.acks.set(ack.commit_seq, entry);
      for (const [, high] of this.replicaHigh) if (high >= ack.commit_seq) entry.have++;
      if (entry.have >= need) {
        this.acks.delete(ack.commit_seq);
        return resolve();
      }
      const t = this.c.clock.setTimeout(() => {
        if (!this.acks.has(ack.commit_seq)) return;
        this.acks.delete(ack.commit_seq);
        reject(
          new FsmeshError(
            'timeout',
            `quorum not reached for commit_seq ${ack.commit_seq} within ${this.opts.quorum_timeout_ms} ms (${entry.have}/${need} replicas); the commit is durable on the writer but not acknowledged`,
          ),
        );
      }, this.opts.quorum_timeout_ms);
      entry.done = () => {
        t.cancel();
        resolve();
      };
    });
  }

  private enqueueReplica(peer: string, upTo: number): void {
    const prev = this.replicaChains.get(peer) ?? Promise.resolve();
    // A refused or lost push (e.g. the replica has not pinned its trusted writer yet) is retried
    // with back-off while the peer is connected; the replica also pulls missed commits itself.
    const attempt = async (): Promise<void> => {
      for (let i = 0; i < CLUSTER_DEFAULTS.push_max_attempts && !this.stopped; i++) {
        try {
          return await this.sendTo(peer, upTo);
        } catch {
          if (!this.c.transport.peers().includes(peer)) return;
          await this.c.clock.sleep(
            Math.min(CLUSTER_DEFAULTS.push_retry_max_ms, CLUSTER_DEFAULTS.push_retry_base_ms * 2 ** i),
          );
        }
      }
    };
    this.replicaChains.set(
      peer,
      prev.then(attempt).catch(() => {}),
    );
  }

  private async sendTo(peer: string, upTo: number): Promise<void> {
    let from = (this.replicaHigh.get(peer) ?? -1) + 1;
    if (from === 0) from = upTo; // first contact: try the newest; a gap answer tells us where to start
    for (let seq = from; seq <= upTo && !this.stopped; seq++) {
      const rec = await this.c.log.read(seq);
      const frames = await this.c.transport.request(
        peer,
        PROTO.replicate,
        recordBytes(encodeMarker(rec.marker), rec.capsule_bytes),
        { timeout_ms: CLUSTER_DEFAULTS.replicate_request_timeout_ms },
      );
      const r = parseJsonFrame<{ ok?: boolean; commit_seq?: number; gap?: number }>(
        frames[0],
        'replicate response',
      );
      if (r.gap !== undefined) {
        this.replicaHigh.set(peer, r.gap);
        seq = r.gap; // loop continues at gap + 1
        continue;
      }
      this.noteReplicaAck(peer, r.commit_seq ?? seq);
    }
  }

  private noteReplicaAck(peer: string, seq: number): void {
    const before = this.replicaHigh.get(peer) ?? 0;
    if (seq <= before) return;
    this.replicaHigh.set(peer, seq);
    for (const [s, e] of this.acks) {
      if (s > before && s <= seq) {
        e.have++;
        if (e.have >= e.need) {
          this.acks.delete(s);
          e.done();
        }
      }
    }
  }
}
