/**
 * The replica side (§7.2 bootstrap, §7.3 catch-up): poll peers' heads (gossip is not persistent),
 * learn peers (peer exchange), pull missed commits, and bring the active generation up to the
 * trusted writer's latest record — fetching only the objects we lack as repair symbols from any
 * peers, then through the activation gate. Failed syncs are retried by the retry/back-off machine;
 * after repeated failures the commit stream is replayed instead (§7.3 fallback).
 */
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import { decodeManifest, type RepairDescriptor } from '../../core/manifest.ts';
import { startGenerationLifecycle } from '../../fsm/generation-lifecycle.ts';
import { startRetryBackoff } from '../../fsm/retry-backoff.ts';
import { LifecycleTrace } from '../../obs/tracing.ts';
import type { ClusterOptions } from '../cluster-options.ts';
import { jsonFrame, PROTO, parseJsonFrame } from '../protocols.ts';
import { encodeSignedRecord, type SignedRecord } from '../records.ts';
import { type FetchProgress, fetchObjectFromPeers, findHolders } from '../symbol-fetch.ts';
import { pullCapsules, type ReplayComponents, replayTo } from './capsule-replay.ts';
import { rebuildTo } from './commit-replication.ts';
import { fetchManifestBytes } from './manifest-fetch.ts';
import type { Membership } from './membership.ts';

export type ReplicaSyncComponents = Omit<ReplayComponents, 'membership' | 'trustedWriter' | 'stopped'> &
  Pick<import('../../node/services.ts').NodeComponents, 'symbols' | 'metrics'> & {
    membership: Membership;
    /** Peer exchange: hand an address to the connection keeper (bounded, redialled if lost). */
    learnPeer(addr: string): void;
    /** Every head answer, for routing (health, draining, active commit of that peer). */
    observePeer(peer: string, head: Record<string, unknown>): void;
    /** Manifest id of the active generation a failover cut left serving (its commits are gone). */
    servingUntilReplaced?(): string | null;
  };

/**
 * A replica asks peers other than its writer every this many anti-entropy rounds (2 s at the
 * default 500 ms): peer exchange, routing state and handovers, which also travel on gossip.
 */
const PEERS_EVERY = 4;

export class ReplicaSync {
  private readonly c: ReplicaSyncComponents;
  private readonly opts: ClusterOptions;
  private readonly replay: ReplayComponents;
  private syncing = false;
  /** The trusted writer's head answer said it has no generation yet (readiness of an empty cluster). */
  writerHasNoGeneration = false;
  stopped = false;
  private bootstrapStartMs: number | null = null;
  private readonly retry;

  constructor(c: ReplicaSyncComponents, opts: ClusterOptions) {
    this.c = c;
    this.opts = opts;
    this.replay = {
      ...c,
      trustedWriter: () => c.membership.trusted,
      stopped: () => this.stopped,
    };
    this.retry = startRetryBackoff(
      c.clock,
      {
        base_ms: CLUSTER_DEFAULTS.sync_retry_step_ms,
        max_ms: CLUSTER_DEFAULTS.sync_retry_step_ms * CLUSTER_DEFAULTS.sync_max_failures,
        growth: 'linear',
        max_attempts: CLUSTER_DEFAULTS.sync_max_failures,
      },
      // The machine calls this mid-transition, still `backing_off`: the retry must not be skipped
      // (found by the simulator with commit replication: a replica that never retried a sync).
      () => void this.kick(true),
    );
    if (!c.generations.active) this.bootstrapStartMs = c.clock.monotonicMs();
    // A replica with nothing to serve asks a peer's head as soon as it connects, instead of at the
    // next anti-entropy round (up to announce_interval_ms later: 0.2–0.5 s of a 2–3 s bootstrap).
    this.offPeer = c.transport.onPeer((_peer, event) => {
      if (event === 'connect' && !this.stopped && !c.generations.active)
        void this.pollHeads().catch(() => {});
    });
  }

  private readonly offPeer: () => void;

  stop(): void {
    this.stopped = true;
    this.retry.stop();
    this.offPeer();
  }

  /**
   * A head published on gossip: it counts only when its authenticated originator (`from`, checked
   * by gossipsub's signature) is the trusted writer — never because of a field in the message.
   */
  onHead(data: Uint8Array, from: string): void {
    try {
      const h = parseJsonFrame<{ commit_seq_high: number; writer: string }>(data, 'head');
      if (!this.c.membership.trusted || from !== this.c.membership.trusted) return;
      this.c.membership.noteWriterHead(h.commit_seq_high);
    } catch {
      // malformed heads are dropped (and rejected by the validator)
    }
  }

  /** A record from gossip or a head answer. */
  async onRecord(data: Uint8Array, from: string): Promise<void> {
    if (await this.c.membership.admitRecord(data, from)) void this.kick();
  }

  private polling: Promise<void> | null = null;

  private rounds = 0;

  /**
   * Ask connected peers their heads (one round at a time: a round in flight is shared). The
   * trusted writer every round; the other peers every PEERS_EVERY-th periodic round, and in every
   * round asked for outside the period (a new connection, a first activation) or while no writer
   * is trusted. Each head request is a libp2p stream; asking every peer every 500 ms was most of an
   * idle node's CPU (5 of its 6-7 % of a core with four nodes).
   */
  pollHeads(periodic = false): Promise<void> {
    const everyone = !periodic || this.rounds++ % PEERS_EVERY === 0;
    this.polling ??= this.pollRound(everyone).finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  private async pollRound(everyone: boolean): Promise<void> {
    const { transport, membership } = this.c;
    this.c.metrics.peers_connected.set(transport.peers().length);
    for (const p of transport.peers()) {
      if (!everyone && membership.trusted && p !== membership.trusted) continue;
      try {
        const [f] = await transport.request(p, PROTO.head, jsonFrame({}), {
          timeout_ms: CLUSTER_DEFAULTS.head_request_timeout_ms,
        });
        const h = parseJsonFrame<{
          commit_seq_high: number;
          record: SignedRecord | null;
          peers?: string[];
          writer?: string | null;
        }>(f, 'head response');
        // The answer is attributed to `p`, the authenticated peer: it may say it is the writer
        // only about itself, and only a seed's identity is pinned on first use.
        // Trust on first use starts now; its write to disk goes on beside the record's sync (whose
        // activation waits for it) instead of before it: ~200 ms of a bootstrap here.
        const pinning = !membership.trusted && h.writer === p ? membership.pinWriter(p) : null;
        pinning?.catch(() => {}); // awaited below
        this.exchangePeers(h.peers);
        this.c.observePeer(p, h as unknown as Record<string, unknown>);
        if (p === membership.trusted) this.writerHasNoGeneration = !h.record;
        if (h.record) await this.onRecord(encodeSignedRecord(h.record), p);
        if (pinning) await pinning;
        if (h.record && h.record.record.writer === membership.trusted && p === membership.trusted) {
          membership.noteWriterHead(h.commit_seq_high);
          this.retryAfterGivingUp();
          if (!this.bootstrapping()) await pullCapsules(this.replay, p, h.commit_seq_high);
        }
      } catch {
        // peer without the protocol or unreachable: try the next
      }
    }
  }

  /**
   * A first generation is being fetched as artifacts: the log catch-up (pulled, and for a while
   * pushed: defersPushes) waits until it is active (§7.2 step 5). Beside the fetch,
   * the writer's whole log went through the same upload (a capped writer's link carried 16 MB more
   * than the other holders') and its decryption and validation through the same two cores (15-25 %
   * of a 50k-document bootstrap); the generation is what lets the replica answer.
   */
  private bootstrapping(): boolean {
    return this.syncing && !this.c.generations.active && this.opts.replication !== 'commits';
  }

  /**
   * The writer's pushes wait too, but only while a fresh node fetches its first generation and
   * for at most bootstrap_push_defer_max_ms after it started: a quorum write may need this replica.
   */
  defersPushes(): boolean {
    return (
      this.bootstrapping() &&
      this.bootstrapStartMs !== null &&
      this.c.clock.monotonicMs() - this.bootstrapStartMs < CLUSTER_DEFAULTS.bootstrap_push_defer_max_ms
    );
  }

  private lastRetryKickMs = 0;

  /**
   * A sync that gave up waits for the next new record — but a writer that has nothing new to write
   * never sends one, and the replica would stay behind for good (found by the simulator with
   * commit replication: its pulls failed fast while the writer was marked slow). The writer's head
   * answer says it is still behind: try again, at most every `sync_retry_after_give_up_ms`.
   */
  private retryAfterGivingUp(): void {
    const now = this.c.clock.monotonicMs();
    if (
      this.retry.state() !== 'gave_up' ||
      now - this.lastRetryKickMs < CLUSTER_DEFAULTS.sync_retry_after_give_up_ms
    )
      return;
    const target = this.c.membership.latest;
    if (!target || target.record.artifact_manifest_id === this.c.generations.active?.artifact_manifest_id)
      return;
    this.lastRetryKickMs = now;
    void this.kick();
  }

  /** Peer exchange, bounded: a few new addresses per round, to the connection keeper. */
  private exchangePeers(addrs: unknown): void {
    const { transport } = this.c;
    if (!Array.isArray(addrs)) return;
    const known = new Set([...transport.peers(), transport.peerId]);
    let budget = CLUSTER_DEFAULTS.peer_exchange_dials_per_round;
    for (const a of addrs.slice(0, CLUSTER_DEFAULTS.peer_exchange_max_addrs)) {
      if (budget <= 0) return;
      if (typeof a !== 'string' || known.has(a.split('/p2p/')[1] ?? '')) continue;
      budget--;
      this.c.learnPeer(a);
    }
  }

  /** Bring the active generation up to the latest trusted record (one loop at a time). */
  async kick(fromRetry = false): Promise<void> {
    if (this.syncing || this.stopped) return;
    if (!fromRetry && this.retry.state() === 'backing_off') return; // the machine kicks when the wait is over
    if (this.retry.state() === 'gave_up') this.retry.send({ type: 'RESET' }); // a new record: try again
    this.syncing = true;
    try {
      while (!this.stopped) {
        const target = this.c.membership.latest;
        const active = this.c.generations.active;
        if (!target || target.record.artifact_manifest_id === active?.artifact_manifest_id) break;
        // Never move back in commits — unless the active generation holds commits a failover cut:
        // then any generation of the new writer replaces it, whatever its commit_seq_high
        // (found by the simulator, seed 3043: a zombie's gen-7 outranked the new writer's gen-1).
        const cutAway = active !== null && this.c.servingUntilReplaced?.() === active.artifact_manifest_id;
        if (active && !cutAway && target.record.commit_seq_high < active.commit_seq_high) break;
        try {
          if (this.opts.replication === 'commits') await this.rebuildOrCheckpoint(target, cutAway);
          else await this.syncTo(target, cutAway);
          this.retry.send({ type: 'SUCCEEDED' });
        } catch {
          if (this.opts.replication === 'commits') {
            this.retry.send({ type: 'FAILED' });
            break;
          }
          // §7.3 fallback: when the generation delta cannot be fetched, replay the commit stream.
          const failures = this.retry.failures() + 1;
          if (
            failures >= CLUSTER_DEFAULTS.sync_failures_before_replay &&
            (await this.c.membership
              .pinDurable()
              .then(() => replayTo(this.replay, target))
              .then(
                () => true,
                () => false,
              ))
          ) {
            this.retry.send({ type: 'SUCCEEDED' });
            continue;
          }
          this.retry.send({ type: 'FAILED' });
          break;
        }
      }
    } finally {
      this.syncing = false;
    }
  }

  /** Generations a `commits` replica took as artifacts because it could not rebuild up to them. */
  checkpoints = 0;

  /**
   * Option A: rebuild the writer's generations from the commit stream. When the chain back to our
   * active generation is gone (the writer's retention dropped it, a failover cut ours) the target
   * is fetched as artifacts once — a checkpoint — and rebuilding resumes from there. A rebuild that
   * differs is a divergence: never a checkpoint, nothing activated.
   */
  private async rebuildOrCheckpoint(target: SignedRecord, cutAway: boolean): Promise<void> {
    if (!cutAway) {
      try {
        await rebuildTo({ ...this.replay, transport: this.c.transport }, target);
        return;
      } catch (err) {
        const e = err as FsmeshError;
        if (e.details?.divergence || (e.code !== 'not_found' && e.code !== 'conflict')) throw err;
      }
    }
    await this.syncTo(target, cutAway);
    this.checkpoints++;
  }

  /** Fetch the generation named by a trusted record (only the objects we lack), then the gate. */
  private async syncTo(s: SignedRecord, replacesCutHistory = false): Promise<void> {
    const { c } = this;
    const rec = s.record;
    const lc = startGenerationLifecycle(c.clock, rec.generation_id, rec.artifact_manifest_id);
    const tr = new LifecycleTrace(rec.generation_id, {
      shard: rec.shard,
      role: 'replica',
      artifact_manifest_id: rec.artifact_manifest_id,
    });
    const t0 = c.clock.monotonicMs();
    if (c.generations.active) c.health.send({ type: 'FELL_BEHIND' });
    const failure = { source: 'peer_sync' as const, lifecycle: lc, trace: tr };
    try {
      // 1. The manifest, from any peer; its bytes must hash to the signed id.
      const manifestBytes = await fetchManifestBytes(c, rec);
      const manifest = decodeManifest(manifestBytes); // full validation: every problem named
      if (
        manifest.generation_id !== rec.generation_id ||
        manifest.commit_seq_high !== rec.commit_seq_high ||
        manifest.shard !== rec.shard
      ) {
        lc.send({ type: 'QUARANTINE', reason: 'manifest contradicts its signed record' });
        await c.membership.quarantine(manifestBytes, 'manifest contradicts its signed record');
        c.events.emit('manifest_divergence_detected', {
          generation_id: rec.generation_id,
          commit_seq: rec.commit_seq_high,
          signed_manifest_id: rec.artifact_manifest_id,
        });
        throw new FsmeshError('invalid_manifest', 'manifest contradicts its signed record');
      }
      c.builds.checkEmbedderGate(manifest);
      await c.objects.put('manifest', manifestBytes);
      const release = c.generations.lease(rec.artifact_manifest_id);
      try {
        // 2. Only the objects we lack: the generation delta (§7.3).
        const ids = [...manifest.lexical_artifacts, ...manifest.vector_artifacts].map((a) => a.object_id);
        const descriptors = new Map(manifest.repair.descriptors.map((d) => [d.object_id, d]));
        const { hashed_ids, ...fetched } = await this.fetchMissing(ids, descriptors, tr);
        // 3. Verify, warm, flip: the gate, through the lifecycle machine.
        await c.membership.pinDurable(); // the writer this generation is trusted for is on disk
        await c.gate.activate({
          manifest_id: rec.artifact_manifest_id,
          source: 'peer_sync',
          lifecycle: lc,
          trace: tr,
          details: { ...fetched, sync_ms: c.clock.monotonicMs() - t0 },
          replaces_cut_history: replacesCutHistory,
          hashed_ids,
        });
        // Repair symbols are for protecting and serving, not for answering: never on the way to
        // activation. Queued only now, for the fetched objects and the ones held from before (a
        // peer asking for symbols meanwhile gets them encoded on demand: protocol-server).
        c.symbols.ensureLater('artifact', ids);
        if (this.bootstrapStartMs !== null) {
          c.metrics.snapshot_bootstrap_ms.observe(c.clock.monotonicMs() - this.bootstrapStartMs);
          this.bootstrapStartMs = null;
          c.health.send({ type: 'BOOTSTRAPPED' });
          // The commit stream starts now (§7.2 step 5): ask the writer's head and pull at once
          // rather than at the next anti-entropy round.
          void this.pollHeads().catch(() => {});
          this.opts.onProgress?.({
            phase: 'done',
            objects_done: fetched.fetched_objects,
            objects_total: fetched.fetched_objects,
            bytes: fetched.fetched_bytes,
            peers: fetched.peers,
          });
        }
        c.health.send({ type: 'CAUGHT_UP' });
      } finally {
        release();
      }
    } catch (err) {
      c.gate.reportFailure(
        { ...failure, generation_id: rec.generation_id, commit_seq: rec.commit_seq_high },
        err,
      );
      throw err;
    }
  }

  /** Fetch the objects we lack from peers, in parallel, reporting progress. */
  private async fetchMissing(
    ids: string[],
    descriptors: Map<string, RepairDescriptor>,
    tr: LifecycleTrace,
  ): Promise<{ fetched_objects: number; fetched_bytes: number; peers: number; hashed_ids: Set<string> }> {
    const { c } = this;
    const missing: string[] = [];
    for (const id of ids) if ((await c.objects.check('artifact', id)) !== 'ok') missing.push(id);
    let done = 0;
    let bytes = 0;
    const peerSet = new Set<string>();
    const report = () =>
      this.opts.onProgress?.({
        phase: 'fetch',
        objects_done: done,
        objects_total: missing.length,
        bytes,
        peers: peerSet.size,
      });
    report();
    const peers = await this.fetchPeers(missing, descriptors);
    await tr.child(
      'transfer',
      () =>
        Promise.all(
          missing.map(async (id) => {
            let last = 0;
            const d = descriptors.get(id);
            if (!d) throw new FsmeshError('invalid_manifest', `manifest has no repair descriptor for ${id}`);
            await fetchObjectFromPeers(c.transport, c.symbols, d, peers, {
              progress: (p: FetchProgress) => {
                bytes += p.bytes - last;
                last = p.bytes;
                for (const x of p.peers) peerSet.add(x);
                report();
              },
              decodeWrap: (fn) => tr.child('decode', fn, { object_id: id }),
              sleep: (ms) => c.clock.sleep(ms),
            });
            done++;
            report();
          }),
        ),
      { objects: missing.length },
    );
    // Every fetched object was hashed against its id as it was stored (ObjectAssembly.finish).
    return {
      fetched_objects: missing.length,
      fetched_bytes: bytes,
      peers: peerSet.size,
      hashed_ids: new Set(missing),
    };
  }

  /**
   * The peers a sync fetches from: every connected one, or with `--fetch-peers K` the first K to
   * show they hold the generation (asked for one missing object's header), the same K for every
   * object. Taking the first K peer ids instead made a replica whose first peers lacked the
   * generation fall back to commit replay every time.
   */
  private async fetchPeers(missing: string[], descriptors: Map<string, RepairDescriptor>): Promise<string[]> {
    const all = [...this.c.transport.peers()].sort();
    const k = this.opts.fetch_peers;
    const probe = missing.length > 0 ? descriptors.get(missing[0]) : undefined;
    if (!k || k >= all.length || !probe) return all;
    return (await findHolders(this.c.transport, probe, all)).holders.slice(0, k);
  }
}
