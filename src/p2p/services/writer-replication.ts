/**
 * The writer side of replication (§6): announce the active generation as a signed record and the
 * commit head over gossip, ship every commit to every connected replica in order, and resolve a
 * write per the durability mode — at once (`local`) or when a majority of members hold it (`quorum`).
 */

import type { PrivateKey } from '@libp2p/interface';
import { UNSAFE } from '../../core/buggify.ts';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import type { NodeComponents } from '../../node/services.ts';
import type { Transport } from '../../runtime/index.ts';
import type { AppendAck } from '../../storage/capsule-log.ts';
import type { ClusterOptions } from '../cluster-options.ts';
import { jsonFrame, PROTO, parseJsonFrame, topics } from '../protocols.ts';
import { encodeSignedRecord, type SignedRecord, signRecord } from '../records.ts';

export type WriterReplicationComponents = Pick<
  NodeComponents,
  'log' | 'generations' | 'clock' | 'metrics' | 'shard' | 'events'
> & {
  transport: Transport;
  key: PrivateKey;
};

export class WriterReplication {
  private readonly c: WriterReplicationComponents;
  private readonly opts: ClusterOptions;
  private readonly t: { manifests: string; heads: string };
  private ownRecord: SignedRecord | null = null;
  private readonly acks = new Map<number, { need: number; have: Set<string>; done: () => void }>();
  private readonly pushers = new Map<string, { target: number; running: boolean }>();
  /** Per peer: the highest commit_seq it acknowledged, never above what we sent it. */
  private readonly acked = new Map<string, number>();
  /** Per peer: where its log ends as it told us (a `gap` answer): the next push starts after it. */
  private readonly cursor = new Map<string, number>();
  stopped = false;

  constructor(c: WriterReplicationComponents, opts: ClusterOptions) {
    this.c = c;
    this.opts = opts;
    this.t = topics(opts.cluster, c.shard);
    // Per-peer state lives only while the peer is connected: a departed peer's acks stop counting.
    c.transport.onPeer((peer, event) => {
      if (event === 'connect') {
        // A peer that (re)connects gets what it missed at once: commits made while it was away
        // (waiting for a quorum, perhaps) are pushed and acknowledged without another write.
        if (!this.stopped && c.log.commitSeqHigh > 0) this.enqueueReplica(peer, c.log.commitSeqHigh);
        return;
      }
      this.acked.delete(peer);
      this.cursor.delete(peer);
      this.pushers.delete(peer);
    });
  }

  /** Acks count only from members: the named ones, else (cluster key) any connected peer. */
  private isMember(peer: string): boolean {
    if (UNSAFE.count_any_ack) return true; // planted bug (simulator only)
    return this.opts.member_ids ? this.opts.member_ids.includes(peer) : true;
  }

  /** The signed record of our active generation (what head answers carry). */
  currentRecord(): SignedRecord | null {
    return this.ownRecord;
  }

  /** The signed record of a generation this writer retains (a multi-shard answer carries it). */
  async recordOf(generation_id: string): Promise<SignedRecord | null> {
    const ref = this.c.generations.retained.find((r) => r.generation_id === generation_id && !r.rolled_back);
    return ref ? this.sign(ref) : null;
  }

  private sign(a: {
    generation_id: string;
    generation_seq: number;
    artifact_manifest_id: string;
    commit_seq_high: number;
  }) {
    return signRecord(this.c.key, {
      format: 1,
      cluster: this.opts.cluster,
      shard: this.c.shard,
      generation_id: a.generation_id,
      generation_seq: a.generation_seq,
      artifact_manifest_id: a.artifact_manifest_id,
      commit_seq_high: a.commit_seq_high,
      writer: this.c.transport.peerId,
      ...(this.opts.shards > 1 ? { shards: this.opts.shards } : {}),
    });
  }

  async announce(): Promise<void> {
    const { transport } = this.c;
    const a = this.c.generations.active;
    if (a) {
      if (!this.ownRecord || this.ownRecord.record.artifact_manifest_id !== a.artifact_manifest_id)
        this.ownRecord = await this.sign(a);
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

  private backpressure = false;

  /**
   * Write backpressure: refuse a write while the members needed for the durability level (a
   * majority for quorum, one for local when any is connected) lag more than the limit. Lagging
   * members are pushed the missing commits meanwhile, so the lag shrinks without new writes.
   */
  admitWrite(): void {
    const max = this.opts.max_replica_lag_commits;
    if (max === undefined) return;
    const head = this.c.log.commitSeqHigh;
    const members = this.c.transport.peers().filter((p) => this.isMember(p));
    const need =
      this.opts.durability === 'quorum' ? Math.floor(this.opts.members / 2) : Math.min(1, members.length);
    const lags = members.map((p) => head - (this.acked.get(p) ?? 0)).sort((a, b) => a - b);
    const lag = need <= 0 ? 0 : (lags[need - 1] ?? head);
    this.c.metrics.replica_lag_commits.set(lag);
    const engaged = lag > max;
    if (engaged !== this.backpressure) {
      this.backpressure = engaged;
      this.c.metrics.write_backpressure.set(engaged ? 1 : 0);
      this.c.events.emit(engaged ? 'write_backpressure_engaged' : 'write_backpressure_released', {
        commit_seq: head,
        lag_commits: lag,
        max_replica_lag_commits: max,
      });
    }
    if (!engaged) return;
    for (const p of members) if (head - (this.acked.get(p) ?? 0) > max) this.enqueueReplica(p, head);
    throw new FsmeshError(
      'busy',
      `write backpressure: the replicas this write needs lag ${lag} commits behind (limit ${max}); retry shortly`,
      { retry_after_s: 1 },
    );
  }

  /** §6: ship the commit to every connected replica, in order; resolve per durability mode. */
  awaitDurable(ack: AppendAck): Promise<void> {
    for (const p of this.c.transport.peers()) this.enqueueReplica(p, ack.commit_seq);
    if (this.opts.durability === 'local') return Promise.resolve();
    const need = Math.floor(this.opts.members / 2) + 1 - 1; // replicas needed besides ourselves
    if (need <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // Distinct members, not a count of acks: a replica that reconnects acknowledges again.
      const entry = { need, have: new Set<string>(), done: resolve };
      this.acks.set(ack.commit_seq, entry);
      for (const [peer, high] of this.acked)
        if (high >= ack.commit_seq && this.isMember(peer)) entry.have.add(peer);
      if (entry.have.size >= need) {
        this.acks.delete(ack.commit_seq);
        return resolve();
      }
      const t = this.c.clock.setTimeout(() => {
        if (!this.acks.has(ack.commit_seq)) return;
        this.acks.delete(ack.commit_seq);
        reject(
          new FsmeshError(
            'timeout',
            `quorum not reached for commit_seq ${ack.commit_seq} within ${this.opts.quorum_timeout_ms} ms (${entry.have.size}/${need} replicas); the commit is durable on the writer but not acknowledged`,
          ),
        );
      }, this.opts.quorum_timeout_ms);
      entry.done = () => {
        t.cancel();
        resolve();
      };
    });
  }

  /**
   * Ship commits up to `upTo` to `peer`. One pusher per peer: a new commit only raises its target,
   * so a slow or refusing replica never queues a backlog of retries in front of newer commits. A
   * refused or lost push (the replica has not learned its new writer yet, after a failover) is
   * retried with capped back-off while the peer is connected; the replica also pulls on its own.
   */
  private enqueueReplica(peer: string, upTo: number): void {
    let p = this.pushers.get(peer);
    if (!p) {
      p = { target: 0, running: false };
      this.pushers.set(peer, p);
    }
    p.target = Math.max(p.target, upTo);
    if (!p.running) void this.runPusher(peer, p);
  }

  private async runPusher(peer: string, p: { target: number; running: boolean }): Promise<void> {
    p.running = true;
    try {
      for (let failures = 0; !this.stopped && failures < CLUSTER_DEFAULTS.push_max_attempts; ) {
        if ((this.cursor.get(peer) ?? -1) >= p.target) return;
        if (!this.c.transport.peers().includes(peer)) return;
        try {
          await this.sendTo(peer, p.target);
          failures = 0;
        } catch {
          failures++;
          await this.c.clock.sleep(
            Math.min(CLUSTER_DEFAULTS.push_retry_max_ms, CLUSTER_DEFAULTS.push_retry_base_ms * 2 ** failures),
          );
        }
      }
    } finally {
      p.running = false;
    }
  }

  private async sendTo(peer: string, upTo: number): Promise<void> {
    // First contact: try the newest; a gap answer tells us where the peer's log ends.
    const known = this.cursor.get(peer);
    const from = known === undefined ? upTo : known + 1;
    for (let seq = from; seq <= upTo && !this.stopped; seq++) {
      const rec = await this.c.log.readRecord(seq);
      const frames = await this.c.transport.request(peer, PROTO.replicate, rec.body, {
        timeout_ms: CLUSTER_DEFAULTS.replicate_request_timeout_ms,
      });
      const r = parseJsonFrame<{ ok?: boolean; commit_seq?: number; gap?: number }>(
        frames[0],
        'replicate response',
      );
      if (r.gap !== undefined) {
        // A gap only moves where we resume; it is never an ack. It must lie below what we sent.
        if (!Number.isSafeInteger(r.gap) || r.gap < 0 || r.gap >= seq)
          throw new FsmeshError('invalid_input', `replicate: ${peer} answered an impossible gap ${r.gap}`);
        this.cursor.set(peer, r.gap);
        seq = r.gap; // loop continues at gap + 1
        continue;
      }
      if (r.ok !== true || r.commit_seq !== seq)
        throw new FsmeshError(
          'invalid_input',
          `replicate: ${peer} acknowledged ${r.commit_seq}, we sent ${seq}`,
        );
      this.cursor.set(peer, seq);
      // The ack is capped at what we actually sent this peer: it cannot claim more.
      this.noteReplicaAck(peer, seq);
    }
  }

  private noteReplicaAck(peer: string, seq: number): void {
    const before = this.acked.get(peer) ?? 0;
    if (seq <= before) return;
    this.acked.set(peer, seq);
    if (!this.isMember(peer)) return;
    for (const [s, e] of this.acks) {
      if (s > before && s <= seq) {
        e.have.add(peer);
        if (e.have.size >= e.need) {
          this.acks.delete(s);
          e.done();
        }
      }
    }
  }
}
