/**
 * Writer failover (docs/protocols.md §failover). The operator's admin key signs a handover
 * `{cluster, shard, epoch, writer, commit_seq_high, head_marker_id}`; every node started with
 * `--admin-pub` follows the valid handover with the highest epoch:
 *  - the named writer becomes (or stays) the writer, everybody else a replica of it;
 *  - a log longer than `commit_seq_high` keeps exactly that prefix (it must end at
 *    `head_marker_id`): the rest was never acknowledged by a quorum — the new writer collected the
 *    longest log of a majority before the handover was signed — and is cut (`log_suffix_truncated`);
 *  - an active generation built from cut commits is rolled back through the gate.
 * Promotion is two steps, so the record signs exactly the history the new writer holds:
 * `prepare` (collect missing commits from a majority of members) then `promote` (install the record).
 * Manual today; an automatic mode (a lease plus member votes) would produce the same record.
 */
import { DATA_DIR } from '../../core/data-dir-layout.ts';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import type { NodeComponents } from '../../node/services.ts';
import { isNotFound, type Transport, writeFileAtomic } from '../../runtime/index.ts';
import type { ClusterOptions } from '../cluster-options.ts';
import {
  checkHandover,
  decodeSignedHandover,
  encodeSignedHandover,
  type HandoverRecord,
  type SignedHandover,
  verifyHandover,
} from '../handover.ts';
import { jsonFrame, PROTO, parseJsonFrame } from '../protocols.ts';
import { pullCapsules } from './capsule-replay.ts';

export type FailoverComponents = Pick<
  NodeComponents,
  'storage' | 'log' | 'generations' | 'gate' | 'events' | 'shard'
> & {
  transport: Transport;
  /** Switch this node's role (cluster services and actors) to follow the handover. */
  setRole(role: 'writer' | 'replica', writer: string): Promise<void>;
  stopped(): boolean;
};

export interface PromotionPlan {
  cluster: string;
  shard: string;
  writer: string;
  epoch: number;
  commit_seq_high: number;
  head_marker_id: string;
  members_consulted: number;
}

/** The record the admin key signs for a prepared promotion: exactly the prepared history. */
export function handoverOf(plan: PromotionPlan): HandoverRecord {
  return {
    format: 1,
    cluster: plan.cluster,
    shard: plan.shard,
    epoch: plan.epoch,
    writer: plan.writer,
    commit_seq_high: plan.commit_seq_high,
    head_marker_id: plan.head_marker_id,
  };
}

export class Failover {
  private readonly c: FailoverComponents;
  private readonly opts: ClusterOptions;
  current: SignedHandover | null = null;
  private applying: Promise<void> = Promise.resolve();

  constructor(c: FailoverComponents, opts: ClusterOptions) {
    this.c = c;
    this.opts = opts;
  }

  get epoch(): number {
    return this.current?.handover.epoch ?? 0;
  }

  /** The handover this node followed last (kept in the data dir across restarts). */
  async load(): Promise<SignedHandover | null> {
    try {
      this.current = decodeSignedHandover(await this.c.storage.readFile(DATA_DIR.writer_handover_file));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return this.current;
  }

  /** A handover offered by a peer (gossip or a head answer): follow it if valid and newer. */
  async offer(data: unknown): Promise<boolean> {
    let s: SignedHandover;
    try {
      s = checkHandover(data as SignedHandover);
    } catch {
      return false;
    }
    if (!(await this.valid(s)) || s.handover.epoch <= this.epoch) return false;
    await this.follow(s);
    return true;
  }

  async valid(s: SignedHandover): Promise<boolean> {
    return (
      this.opts.admin_pub !== undefined &&
      s.handover.cluster === this.opts.cluster &&
      s.handover.shard === this.c.shard &&
      (await verifyHandover(s, this.opts.admin_pub))
    );
  }

  /**
   * Step 1 on the node to promote: collect missing commits from a majority of members (so every
   * quorum-acknowledged commit is in this log) and say what the handover must sign.
   */
  async prepare(): Promise<PromotionPlan> {
    const { transport, log } = this.c;
    const need = Math.floor(this.opts.members / 2); // besides ourselves
    const heads: { peer: string; high: number; marker: string }[] = [];
    for (const p of transport.peers()) {
      try {
        const [f] = await transport.request(p, PROTO.head, jsonFrame({}), {
          timeout_ms: CLUSTER_DEFAULTS.head_request_timeout_ms,
          max_response_bytes: 64 << 10,
        });
        const h = parseJsonFrame<{ commit_seq_high: number; head_marker_id?: string; handover?: unknown }>(
          f,
          'head response',
        );
        // A member already follows a newer handover: follow it first (it may cut our log), so the
        // plan's epoch is above every epoch the answering members know.
        if (h.handover) await this.offer(h.handover).catch(() => false);
        if (Number.isSafeInteger(h.commit_seq_high) && typeof h.head_marker_id === 'string')
          heads.push({ peer: p, high: h.commit_seq_high, marker: h.head_marker_id });
      } catch {
        // an unreachable member does not count toward the majority
      }
    }
    // Pull what we lack, longest log first.
    heads.sort((a, b) => b.high - a.high);
    for (const h of heads) {
      if (h.high <= log.commitSeqHigh) continue;
      await pullCapsules({ log, transport, stopped: this.c.stopped }, h.peer, h.high).catch(() => {});
    }
    // A member counts toward the majority only if its whole log is a prefix of ours: then every
    // commit it holds (so every one a quorum acknowledged, by intersection) is in this history. A
    // member whose commits we could not collect (a failed pull, our full disk) or whose chain differs
    // (a rogue peer) does not count.
    const covered = heads.filter((h) => h.high <= log.commitSeqHigh && log.markerIdAt(h.high) === h.marker);
    if (covered.length < need)
      throw new FsmeshError(
        'unavailable',
        `promotion needs ${need} other member(s) of ${this.opts.members} whose logs this node holds, ${covered.length} of ${heads.length} answering: a majority must confirm the history`,
      );
    const active = this.c.generations.active;
    if (active && log.commitSeqHigh < active.commit_seq_high)
      throw new FsmeshError(
        'conflict',
        `this node's log ends at ${log.commitSeqHigh}, below its active generation (${active.commit_seq_high}): no member supplied the commits; promote another node`,
      );
    return {
      cluster: this.opts.cluster,
      shard: this.c.shard,
      writer: transport.peerId,
      epoch: this.epoch + 1,
      commit_seq_high: log.commitSeqHigh,
      head_marker_id: log.headMarker,
      members_consulted: covered.length,
    };
  }

  /** Step 2: install a handover naming this node, signed by the admin key, then announce it. */
  async promote(s: SignedHandover): Promise<SignedHandover> {
    checkHandover(s);
    const h = s.handover;
    if (!(await this.valid(s)))
      throw new FsmeshError(
        'invalid_input',
        'handover: not signed by the admin key this node trusts (--admin-pub)',
      );
    if (h.writer !== this.c.transport.peerId)
      throw new FsmeshError(
        'invalid_input',
        `handover names ${h.writer}, this node is ${this.c.transport.peerId}`,
      );
    if (h.epoch <= this.epoch)
      throw new FsmeshError('conflict', `epoch ${h.epoch} is not above the current ${this.epoch}`);
    if (h.commit_seq_high !== this.c.log.commitSeqHigh || h.head_marker_id !== this.c.log.headMarker)
      throw new FsmeshError('conflict', 'the log changed since the promotion was prepared: prepare again');
    await this.follow(s);
    return s;
  }

  /** Follow a valid, newer handover: persist it, cut an unacknowledged suffix, switch roles. */
  private follow(s: SignedHandover): Promise<void> {
    const run = this.applying.then(async () => {
      if (s.handover.epoch <= this.epoch) return;
      const h = s.handover;
      const self = this.c.transport.peerId;
      // Stop writing first (an old writer), then cut what the new history does not contain.
      if (h.writer !== self) await this.c.setRole('replica', h.writer);
      await this.cutSuffix(h.commit_seq_high, h.head_marker_id, h.epoch);
      await writeFileAtomic(this.c.storage, DATA_DIR.writer_handover_file, encodeSignedHandover(s));
      // Only a handover kept on disk is this node's epoch (status, head answers): a failed step
      // above (a full disk) leaves nothing half-installed for peers to follow, and the next offer
      // of the record (head polls, gossip) tries again.
      this.current = s;
      if (h.writer === self) await this.c.setRole('writer', self);
      this.c.events.emit('writer_handover', {
        epoch: h.epoch,
        writer: h.writer,
        commit_seq: h.commit_seq_high,
      });
    });
    this.applying = run.catch(() => {});
    return run;
  }

  private async cutSuffix(high: number, marker: string, epoch: number): Promise<void> {
    const { log, gate, generations } = this.c;
    if (log.commitSeqHigh <= high) return;
    if ((high === 0 ? log.headMarker : log.markerIdAt(high)) !== marker && high > 0) {
      this.c.events.emit('manifest_divergence_detected', {
        commit_seq: high,
        reason: 'the local log differs from the new writer history below the handover point',
      });
      throw new FsmeshError('conflict', `log diverges from the handover history at or below ${high}`);
    }
    // A generation built from commits about to be cut is not part of the new history: roll back
    // past it first, so the pointer never names commits the log no longer holds (a crash between
    // the two steps must leave a data dir that opens — found by the simulator's failover fault).
    while ((generations.active?.commit_seq_high ?? 0) > high) await gate.rollback();
    const { removed } = await log.truncateAfter(high);
    this.c.events.emit('log_suffix_truncated', {
      commit_seq: high,
      removed_commits: removed,
      epoch,
    });
  }
}

export { encodeSignedHandover };
