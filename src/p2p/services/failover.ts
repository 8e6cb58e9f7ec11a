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
 *
 * Length: ~470 lines because the promise phase, the follower's cut (with the fork search against
 * the new writer) and the handover install share one serialized state (epoch, promise, chains).
 */

import { UNSAFE } from '../../core/buggify.ts';
import { DATA_DIR } from '../../core/data-dir-layout.ts';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import { decodeMarker, MARKER_BYTES, markerIdOf } from '../../core/marker.ts';
import type { NodeComponents } from '../../node/services.ts';
import { isNotFound, type Transport, writeFileAtomic } from '../../runtime/index.ts';
import type { ClusterOptions } from '../cluster-options.ts';
import {
  checkHandover,
  checkPrepareTicket,
  decodePrepareTicket,
  decodeSignedHandover,
  encodePrepareTicket,
  encodeSignedHandover,
  type HandoverRecord,
  type PrepareTicket,
  type SignedHandover,
  type SignedPrepareTicket,
  verifyHandover,
  verifyPrepareTicket,
} from '../handover.ts';
import { jsonFrame, PROTO, parseJsonFrame } from '../protocols.ts';
import { pullCapsules } from './capsule-replay.ts';

export type FailoverComponents = Pick<
  NodeComponents,
  'storage' | 'log' | 'generations' | 'gate' | 'events' | 'shard' | 'clock'
> & {
  transport: Transport;
  /** Switch this node's role (cluster services and actors) to follow the handover. */
  setRole(role: 'writer' | 'replica', writer: string): Promise<void>;
  stopped(): boolean;
  /** This node just promised a promotion (a writer fences itself). */
  onPromise?(t: PrepareTicket): void;
  /** A writer stops accepting writes and building (it is being replaced). */
  fence?(): void;
  /** The writer this node follows now (itself when it writes). */
  trustedWriter(): string | null;
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
  /** Manifest id of the active generation the last cut left serving until the new writer's replaces it. */
  servingUntilReplaced: string | null = null;
  /** The prepare ticket this node promised to (kept on disk). */
  promise: SignedPrepareTicket | null = null;
  /** The highest promise a member reported during this node's last prepare. */
  highestPromiseSeen = 0;
  private applying: Promise<void> = Promise.resolve();
  /** The epoch of a handover being followed from an offer (0: none). */
  private following = 0;
  /** Replicated appends and promises, one at a time: a promise never lands mid-append. */
  private replication: Promise<unknown> = Promise.resolve();

  constructor(c: FailoverComponents, opts: ClusterOptions) {
    this.c = c;
    this.opts = opts;
  }

  get epoch(): number {
    return this.current?.handover.epoch ?? 0;
  }

  /** A promise above the followed epoch (0: none): replication from older writers is refused. */
  get promisedEpoch(): number {
    const e = this.promise?.ticket.epoch ?? 0;
    return e > this.epoch ? e : 0;
  }

  /** The handover this node followed last and its promise (kept in the data dir across restarts). */
  async load(): Promise<SignedHandover | null> {
    try {
      this.current = decodeSignedHandover(await this.c.storage.readFile(DATA_DIR.writer_handover_file));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      this.promise = decodePrepareTicket(await this.c.storage.readFile(DATA_DIR.writer_promise_file));
    } catch (err) {
      if (!isNotFound(err))
        throw new FsmeshError(
          'corrupt_data',
          `${DATA_DIR.writer_promise_file}: not a prepare ticket (${(err as Error).message})`,
        );
    }
    return this.current;
  }

  /**
   * A replicated append from the trusted writer: refused once this node promised a newer epoch (the
   * writer it follows is then of an older one), and never interleaved with a promise.
   */
  replicate<T>(append: () => Promise<T>, from: string): Promise<T> {
    const run = this.replication.then(() => {
      const p = this.promise?.ticket;
      // The candidate itself may be the writer (a writer promoted again): its log is the one the
      // promotion collects, so its replication stays welcome (found by the simulator: a repeated
      // promotion of the current writer that did not complete stopped every write).
      if (p && this.promisedEpoch > 0 && from !== p.candidate && !UNSAFE.skip_promise_check)
        throw new FsmeshError(
          'conflict',
          `replicate refused: this node promised epoch ${p.epoch} to ${p.candidate} (failover in progress)`,
        );
      return append();
    });
    this.replication = run.catch(() => {});
    return run;
  }

  /**
   * A prepare ticket (carried by a head request): promise, on disk, unless it is not the admin's,
   * not above the followed epoch, or below (or beside) a promise already made. The log reported
   * after this returns is final as far as writers of older epochs are concerned.
   */
  async acceptTicket(data: unknown): Promise<void> {
    const s = checkPrepareTicket(data as SignedPrepareTicket);
    const t = s.ticket;
    if (!(await this.validTicket(s)))
      throw new FsmeshError('invalid_input', 'prepare ticket: not signed by the admin key this node trusts');
    if (t.epoch <= this.epoch)
      throw new FsmeshError('conflict', `prepare ticket: epoch ${t.epoch} is not above ${this.epoch}`);
    const run = this.replication.then(async () => {
      const p = this.promise?.ticket;
      if (p && p.epoch === t.epoch && p.candidate === t.candidate) return; // the same promise again
      if (p && (t.epoch < p.epoch || (t.epoch === p.epoch && t.candidate !== p.candidate)))
        throw new FsmeshError(
          'conflict',
          `prepare ticket: already promised epoch ${p.epoch} to ${p.candidate}`,
        );
      await writeFileAtomic(this.c.storage, DATA_DIR.writer_promise_file, encodePrepareTicket(s));
      this.promise = s;
      this.c.events.emit('writer_promise', { epoch: t.epoch, candidate: t.candidate });
      this.c.onPromise?.(t);
    });
    this.replication = run.catch(() => {});
    await run;
  }

  /** A handover offered by a peer (gossip or a head answer): follow it if valid and newer. */
  async offer(data: unknown): Promise<boolean> {
    let s: SignedHandover;
    try {
      s = checkHandover(data as SignedHandover);
    } catch {
      return false;
    }
    // One follow at a time per epoch: a follow may wait on the new writer (checking our log against
    // its history), and every head poll offers the record again meanwhile.
    if (!(await this.valid(s)) || s.handover.epoch <= Math.max(this.epoch, this.following)) return false;
    this.following = s.handover.epoch;
    try {
      await this.follow(s);
    } finally {
      if (this.following === s.handover.epoch) this.following = 0;
    }
    return true;
  }

  /** A prepare ticket signed by the admin key for this cluster and shard (any epoch). */
  async validTicket(data: unknown): Promise<boolean> {
    try {
      const s = checkPrepareTicket(data as SignedPrepareTicket);
      return (
        this.opts.admin_pub !== undefined &&
        s.ticket.cluster === this.opts.cluster &&
        s.ticket.shard === this.c.shard &&
        (await verifyPrepareTicket(s, this.opts.admin_pub))
      );
    } catch {
      return false;
    }
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
  async prepare(ticket: unknown): Promise<PromotionPlan> {
    const { transport, log } = this.c;
    const s = checkPrepareTicket(ticket as SignedPrepareTicket);
    if (s.ticket.candidate !== transport.peerId)
      throw new FsmeshError(
        'invalid_input',
        `prepare ticket names ${s.ticket.candidate}, this node is ${transport.peerId}`,
      );
    // Only members of the history we follow count: they name the same writer (found by the
    // simulator: a wiped candidate pulled a rogue member's chain, and the rogue "confirmed" it).
    if (!this.c.trustedWriter())
      throw new FsmeshError(
        'conflict',
        'this node does not know the current writer yet: promote a node that does',
      );
    await this.acceptTicket(s); // the candidate promises too
    const need = Math.floor(this.opts.members / 2); // besides ourselves
    const heads = await this.gatherPromises(s);
    if (this.epoch >= s.ticket.epoch)
      throw new FsmeshError(
        'conflict',
        `the cluster already follows epoch ${this.epoch}: promote again (with a higher epoch)`,
      );
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
        `promotion needs ${need} other member(s) of ${this.opts.members} that promised epoch ${s.ticket.epoch} and whose logs this node holds, ${covered.length} of ${heads.length} promising${this.highestPromiseSeen ? ` (a member promised epoch ${this.highestPromiseSeen} to another candidate: promote again)` : ''}: a majority must confirm the history`,
      );
    // Outlast the old writer's lease: the members that promised stopped confirming it, so by now a
    // paused old writer (a long GC) cannot build or admit writes any more when it wakes up.
    await this.c.clock.sleep(CLUSTER_DEFAULTS.writer_lease_ms);
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
      epoch: s.ticket.epoch,
      commit_seq_high: log.commitSeqHigh,
      head_marker_id: log.headMarker,
      members_consulted: covered.length,
    };
  }

  /** Ask every connected member to promise `s`; the heads of those that did (same history). */
  private async gatherPromises(
    s: SignedPrepareTicket,
  ): Promise<{ peer: string; high: number; marker: string }[]> {
    const { transport } = this.c;
    const heads: { peer: string; high: number; marker: string }[] = [];
    this.highestPromiseSeen = 0;
    for (const p of transport.peers()) {
      try {
        const [f] = await transport.request(p, PROTO.head, jsonFrame({ prepare: s }), {
          timeout_ms: CLUSTER_DEFAULTS.head_request_timeout_ms,
          max_response_bytes: 64 << 10,
        });
        const h = parseJsonFrame<{
          commit_seq_high: number;
          head_marker_id?: string;
          handover?: unknown;
          promised_epoch?: number;
          promised_to?: string;
          writer?: string | null;
        }>(f, 'head response');
        // A member already follows a newer handover: follow it first (it may cut our log), so the
        // plan's epoch is above every epoch the answering members know.
        if (h.handover) await this.offer(h.handover).catch(() => false);
        if (h.writer !== this.c.trustedWriter()) continue; // another history: neither pulled nor counted
        const promised = h.promised_epoch === s.ticket.epoch && h.promised_to === transport.peerId;
        if (!promised && Number.isSafeInteger(h.promised_epoch))
          this.highestPromiseSeen = Math.max(this.highestPromiseSeen, h.promised_epoch as number);
        // Only a member that promised counts: its log can no longer grow under an older writer.
        if (promised && Number.isSafeInteger(h.commit_seq_high) && typeof h.head_marker_id === 'string')
          heads.push({ peer: p, high: h.commit_seq_high, marker: h.head_marker_id });
      } catch {
        // an unreachable member does not count toward the majority
      }
    }
    return heads;
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
    const p = this.promise?.ticket;
    if (!p || p.epoch !== h.epoch || p.candidate !== h.writer)
      throw new FsmeshError('conflict', `no prepared promotion for epoch ${h.epoch} here: prepare first`);
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
      // Stop writing first (an old writer), then cut what the new history does not contain — all
      // before trusting the new writer: its generations, synced meanwhile, may reach past the cut
      // point and would be rolled back again and again (seen in the e2e failover test).
      if (h.writer !== self) this.c.fence?.();
      await this.cutSuffix(h);
      await writeFileAtomic(this.c.storage, DATA_DIR.writer_handover_file, encodeSignedHandover(s));
      // Only a handover kept on disk is this node's epoch (status, head answers): a failed step
      // above (a full disk) leaves nothing half-installed for peers to follow, and the next offer
      // of the record (head polls, gossip) tries again.
      this.current = s;
      await this.c.setRole(h.writer === self ? 'writer' : 'replica', h.writer);
      this.c.events.emit('writer_handover', {
        epoch: h.epoch,
        writer: h.writer,
        commit_seq: h.commit_seq_high,
      });
    });
    this.applying = run.catch(() => {});
    return run;
  }

  private async cutSuffix(h: HandoverRecord): Promise<void> {
    const { log, gate, generations } = this.c;
    const { commit_seq_high: high, head_marker_id: marker, epoch } = h;
    let cut = high;
    if (log.commitSeqHigh < high) {
      // A shorter log must be a prefix of the new history too: a node that missed a handover may
      // still hold a suffix an earlier promotion cut (seed 889). Checked against the new writer.
      const head = log.commitSeqHigh;
      if (head === 0 || h.writer === this.c.transport.peerId) return;
      const fork = await this.forkPoint(h.writer, high, marker, head).catch(() => null);
      if (fork === null)
        throw new FsmeshError('unavailable', `cannot check this log against the new writer ${h.writer} yet`);
      if (fork === head) return;
      cut = fork;
    } else if (log.commitSeqHigh === high && log.headMarker === marker) return;
    else if (high > 0 && log.markerIdAt(high) !== marker) {
      // Our log left the new history below its head. That is expected when this node missed a
      // handover in between (it was down while an earlier promotion cut its unacknowledged suffix,
      // and the writer of that epoch wrote on top): every acknowledged commit is in the new history,
      // so whatever differs never was. Find the fork against the new writer's log; divergence only
      // if it cannot show the signed head (found by the simulator, seeds 518 and 964).
      const fork = await this.forkPoint(h.writer, high, marker).catch(() => null);
      if (fork === null) {
        this.c.events.emit('manifest_divergence_detected', {
          commit_seq: high,
          reason: 'the local log differs from the new writer history below the handover point',
        });
        throw new FsmeshError('conflict', `log diverges from the handover history at or below ${high}`);
      }
      cut = fork;
    } else if (
      log.commitSeqHigh > high &&
      h.writer !== this.c.transport.peerId &&
      this.c.trustedWriter() !== this.c.transport.peerId
    ) {
      // Above the handover point, on a replica: a suffix an older writer never got acknowledged,
      // or the new writer's own first commits — a promised member accepts them from the candidate
      // before it installs the handover, and they may already be acknowledged (found by the
      // simulator's quorum-ack check, seeds 68 and 241). Keep what the new writer's log holds.
      // (An old writer's own suffix is never in the new history: it is cut to the handover point.)
      const fork = await this.forkPoint(h.writer, high, marker, log.commitSeqHigh, high).catch(() => null);
      if (fork === null)
        throw new FsmeshError('unavailable', `cannot check this log against the new writer ${h.writer} yet`);
      if (fork === log.commitSeqHigh) return;
      cut = fork;
    }
    // A generation built from commits about to be cut is not part of the new history: roll back
    // past it first, so the pointer never names commits the log no longer holds (a crash between
    // the two steps must leave a data dir that opens — found by the simulator's failover fault).
    // Only towards older generations (a rollback target may be a newer one a rollback left behind),
    // and only while one is retained: a node whose every generation holds cut commits keeps
    // serving its last one until the new writer's generation replaces it (the event says so).
    for (let a = generations.active; a && a.commit_seq_high > cut; a = generations.active) {
      let target: { commit_seq_high: number } | null = null;
      try {
        target = generations.rollbackTarget();
      } catch {
        target = null;
      }
      if (!target || target.commit_seq_high >= a.commit_seq_high) break;
      await gate.rollback();
    }
    const { removed } = await log.truncateAfter(cut);
    const beyond = generations.active && generations.active.commit_seq_high > cut ? generations.active : null;
    this.servingUntilReplaced = beyond?.artifact_manifest_id ?? null;
    this.c.events.emit('log_suffix_truncated', {
      commit_seq: cut,
      removed_commits: removed,
      epoch,
      ...(beyond ? { serving_until_replaced: beyond.generation_id } : {}),
    });
  }

  /**
   * The last commit our log (from `from` up to `upTo`) shares with `writer`'s, which must hold
   * `marker` at `high` (the signed head: the answers come from the history the handover names).
   * Markers chain, so a match at a commit means a match below it: binary search, one single-record
   * capsules request a probe; a commit the writer does not hold is a mismatch. Null when the writer
   * is not connected or does not hold the signed head.
   */
  private async forkPoint(
    writer: string,
    high: number,
    marker: string,
    upTo = Math.min(high, this.c.log.commitSeqHigh),
    from = 0,
  ): Promise<number | null> {
    const { log, transport } = this.c;
    if (writer === transport.peerId || !transport.peers().includes(writer)) return null;
    const markerAt = async (seq: number): Promise<string> => {
      const [f] = await transport.request(writer, PROTO.capsules, jsonFrame({ from: seq, to: seq }), {
        timeout_ms: FORK_PROBE_TIMEOUT_MS,
      });
      if (!f && seq > high) return ''; // beyond the writer's head: not shared
      if (!f || f.length < MARKER_BYTES) throw new FsmeshError('not_found', `no commit ${seq} at ${writer}`);
      const m = decodeMarker(f.subarray(0, MARKER_BYTES));
      if (m.commit_seq !== seq)
        throw new FsmeshError('invalid_input', `asked for commit ${seq}, got ${m.commit_seq}`);
      return markerIdOf(m);
    };
    if ((await markerAt(high)) !== marker) return null;
    // At `high` itself we already differ; below it, try our head first (a log merely behind).
    if (upTo !== high && (await markerAt(upTo)) === log.markerIdAt(upTo)) return upTo;
    let lo = from; // genesis (or the signed head): shared by both chains
    let hi = upTo - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if ((await markerAt(mid)) === log.markerIdAt(mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** One marker probe of the fork search; a follow that cannot finish is retried at the next offer. */
const FORK_PROBE_TIMEOUT_MS = 2000;

export { encodeSignedHandover };
