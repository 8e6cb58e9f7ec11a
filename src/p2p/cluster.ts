/**
 * A node's cluster membership as one node service (§4 Option B, §6, §7, §8): composes the small
 * services of src/p2p/services — trust and membership, the protocol server, writer replication
 * (writers) or replica sync (replicas) — over one Transport, and gives the node what it asks of a
 * cluster: durability (quorum acks), peer repair, status. The network comes from the runtime seam:
 * libp2p in production, the simulator's network under simulation.
 *
 * Length: ~450 lines because it wires eight sub-services (membership, failover, fence, router,
 * keeper, protocol server, writer replication or replica sync) and their role switches; each
 * behaviour lives in its own file under services/.
 */
import type { PrivateKey } from '@libp2p/interface';
import { FsmeshError, invariant } from '../core/errors.ts';
import type { RepairDescriptor } from '../core/manifest.ts';
import type { ReadOptions } from '../engine/local-engine.ts';
import type {
  NodeComponents,
  NodeService,
  RoutedResult,
  RoutingState,
  ServiceFactory,
  SyncProgress,
} from '../node/services.ts';
import type { Clock, TimerHandle, Transport } from '../runtime/index.ts';
import type { SearchOptions } from '../search/searcher.ts';
import type { AppendAck } from '../storage/capsule-log.ts';
import { type ClusterOptions, clusterOptions } from './cluster-options.ts';
import {
  checkHandover,
  decodeSignedHandover,
  encodeSignedHandover,
  type SignedHandover,
} from './handover.ts';
import { loadOrCreateIdentity } from './identity.ts';
import { topics } from './protocols.ts';
import { encodeSignedRecord, type SignedRecord } from './records.ts';
import { serveRateLimitOf } from './serve-rate.ts';
import { ConnectionKeeper } from './services/connection-keeper.ts';
import { Failover, type PromotionPlan } from './services/failover.ts';
import { Membership } from './services/membership.ts';
import { serveProtocols } from './services/protocol-server.ts';
import { QueryRouter } from './services/query-router.ts';
import { ReplicaSync } from './services/replica-sync.ts';
import { WriterFence } from './services/writer-fence.ts';
import { WriterReplication } from './services/writer-replication.ts';
import { SlowPeerGuard } from './slow-peers.ts';
import { fetchObjectFromPeers } from './symbol-fetch.ts';

export interface ClusterServiceConfig extends Partial<ClusterOptions> {
  /** Injected network and identity (the simulator); default: libp2p and `node.key` in the data dir. */
  transport?: Transport;
  private_key?: PrivateKey;
  /** libp2p only: listen addresses, seed multiaddrs, the pnet cluster key. */
  listen?: string[];
  /** Addresses advertised to peers instead of the listen addresses (NAT, port forwarding, a proxy). */
  announce?: string[];
  seeds?: string[];
  cluster_key?: Uint8Array;
  inbound_request_timeout_ms?: number;
  /**
   * Symbol and capsule answers over the bulk lane, TLS beside libp2p (default true; docs/protocols.md
   * "Bulk lane"). False keeps every exchange on libp2p streams (one port to open, slower transfers).
   */
  bulk_lane?: boolean;
  /** The bulk lane's TCP port (default 0: one the OS picks); fixed when a firewall must let it in. */
  bulk_lane_port?: number;
  /** Health-based routing: forward queries when more than this many commits behind the writer. */
  route_lag_commits?: number;
}

/** The libp2p host a cluster configuration asks for (loaded only when used: the simulator has none). */
export async function libp2pTransport(
  cfg: ClusterServiceConfig,
  key: PrivateKey,
  clock?: Clock,
): Promise<Transport> {
  const { Libp2pTransport } = await import('./libp2p-transport.ts');
  return new Libp2pTransport({
    privateKey: key,
    listen: cfg.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    announce: cfg.announce,
    seeds: cfg.seeds ?? [],
    cluster_key: cfg.cluster_key,
    inbound_request_timeout_ms: cfg.inbound_request_timeout_ms,
    bulk_lane: cfg.bulk_lane,
    bulk_lane_port: cfg.bulk_lane_port,
    clock,
  });
}

/** The cluster as a node service factory (for `createNode({ services: [...] })`). */
export function clusterService(cfg: ClusterServiceConfig = {}): ServiceFactory {
  return (components) => new ClusterService(components, cfg);
}

export class ClusterService implements NodeService {
  readonly name = 'cluster';
  readonly opts: ClusterOptions;
  private readonly c: NodeComponents;
  private readonly cfg: ClusterServiceConfig;
  private net: Transport | null = null;
  private membership: Membership | null = null;
  private failover: Failover | null = null;
  private key: PrivateKey | null = null;
  private writer: WriterReplication | null = null;
  private replica: ReplicaSync | null = null;
  private timer: TimerHandle | null = null;
  /** The periodic round's generation: a role switch starts a new one, the old one ends. */
  private rounds = 0;
  private keeper: ConnectionKeeper | null = null;
  private router: QueryRouter | null = null;
  private offEvents: (() => void) | null = null;
  private stopped = false;
  /** The writer's fence and lease in a failover-capable cluster (services/writer-fence.ts). */
  private fence: WriterFence | null = null;
  /** The last fetch progress of this replica (status, head answers, the console's progress bars). */
  private syncProgress: SyncProgress | null = null;

  constructor(c: NodeComponents, cfg: ClusterServiceConfig) {
    this.c = c;
    this.cfg = cfg;
    this.opts = clusterOptions({
      ...cfg,
      role: cfg.role ?? c.role,
      seed_peer_ids: cfg.seed_peer_ids ?? (cfg.seeds ?? []).map((s) => s.split('/p2p/')[1]).filter(Boolean),
    });
    invariant(this.opts.role === c.role, 'the cluster role is the node role');
    this.opts.admin_pub = cfg.admin_pub;
    const report = cfg.onProgress;
    this.opts.onProgress = (p) => {
      this.syncProgress = { ...p };
      report?.(p);
    };
  }

  get transport(): Transport {
    invariant(this.net !== null, 'the cluster transport exists once the service started');
    return this.net;
  }

  async start(): Promise<void> {
    const { c, opts } = this;
    const key = this.cfg.private_key ?? (await loadOrCreateIdentity(c.storage));
    this.key = key;
    const network = this.cfg.transport ?? (await libp2pTransport(this.cfg, key, c.clock));
    this.net = new SlowPeerGuard(network, c.clock);
    const transport = this.net;
    this.keeper = new ConnectionKeeper({ ...c, transport }, this.cfg.seeds ?? []);
    const membership = new Membership({ ...c, transport }, opts);
    this.membership = membership;
    await membership.load();
    const failover = new Failover(
      {
        ...c,
        transport,
        setRole: (r, w) => this.setRole(r, w),
        stopped: () => this.stopped,
        // A writer that promised a promotion (it is being replaced while alive) stops writing.
        onPromise: (t) => {
          if (this.writer && t.candidate !== transport.peerId) this.fence?.raise();
        },
        fence: () => {
          if (this.writer) this.fence?.raise();
        },
        trustedWriter: () => membership.trusted,
      },
      opts,
    );
    this.failover = failover;
    // The newest handover this node followed decides who writes, whatever the start-up flags say.
    const h = await failover.load();
    if (h) {
      membership.trusted = h.handover.writer;
      opts.role = h.handover.writer === transport.peerId ? 'writer' : 'replica';
      if (opts.role !== c.role) c.setRole(opts.role);
      const active = c.generations.active;
      if (opts.role === 'writer' && active && active.commit_seq_high > c.log.commitSeqHigh)
        throw new FsmeshError(
          'corrupt_data',
          `this node writes (epoch ${h.handover.epoch}) but its log ends at ${c.log.commitSeqHigh}, below its active generation (${active.commit_seq_high})`,
        );
    }
    this.router = this.makeRouter(transport, membership);
    this.fence = new WriterFence(c.clock, {
      self: transport.peerId,
      members: opts.members,
      enabled: opts.admin_pub !== undefined && opts.members > 1,
      isAdminTicket: (t) => failover.validTicket(t),
    });
    if (opts.role === 'writer') this.fence.start();
    for (const mode of ['artifacts', 'commits'] as const)
      c.metrics.replication_mode.set({ mode }, mode === opts.replication ? 1 : 0);
    this.startRole();
    this.serve(transport, membership, failover);
    this.subscribe(transport, membership);
    await transport.start();
    await this.keeper.start();
    this.offEvents = c.events.on((e) => {
      // Never after stop: the transport is gone (an unhandled rejection here killed a process).
      if (e.event === 'generation_activation_succeeded' && !this.stopped && this.writer && this.fence?.open())
        void this.writer.announce().catch(() => {});
    });
    this.tick();
  }

  private makeRouter(transport: Transport, membership: Membership): QueryRouter {
    const { c } = this;
    return new QueryRouter(
      {
        ...c,
        transport,
        writerHead: () => (this.writer ? c.log.commitSeqHigh : membership.writer_head),
        isTrustedGeneration: (gid, mid) => this.isTrustedGeneration(gid, mid),
        onHead: async (h, peer) => {
          await this.fence?.observe(peer, h, this.failover?.epoch ?? 0);
          return this.failover?.offer(h.handover).catch(() => false);
        },
      },
      this.cfg.route_lag_commits,
    );
  }

  /** A writer trusts what it activated itself; a replica what the trusted writer signed. */
  isTrustedGeneration(generation_id: string, artifact_manifest_id: string): boolean {
    if (this.writer)
      return this.c.generations.retained.some(
        (r) => r.generation_id === generation_id && r.artifact_manifest_id === artifact_manifest_id,
      );
    return this.membership?.isTrustedManifest(generation_id, artifact_manifest_id) ?? false;
  }

  /** The trusted writer's signed record of a generation (signed now by the writer itself). */
  async signedRecordOf(generation_id: string): Promise<SignedRecord | null> {
    if (this.writer) return this.writer.recordOf(generation_id);
    return this.membership?.recordOf(generation_id) ?? null;
  }

  /**
   * A signed record a member's answer carried (a generation announced before this node joined):
   * admitted by the same rules as one gossiped. True when its generation is now trusted.
   */
  async admitRecord(record: SignedRecord, from: string): Promise<boolean> {
    if (!this.membership) return false;
    return this.membership.admitRecord(encodeSignedRecord(record), from);
  }

  /** Members fit to serve this shard at commit `min` or later, best first (health, lag). */
  servingMembers(min = 0): string[] {
    return this.router?.servingPeers(min) ?? [];
  }

  /** The role's own service: writer replication, or replica sync. */
  private startRole(): void {
    const { c, opts } = this;
    const transport = this.net!;
    const membership = this.membership!;
    if (opts.role === 'writer') {
      membership.trusted = transport.peerId;
      this.writer = new WriterReplication({ ...c, transport, key: this.key! }, opts);
      return;
    }
    this.replica = new ReplicaSync(
      {
        ...c,
        transport,
        membership,
        learnPeer: (a) => this.keeper?.learn(a),
        observePeer: (p, h) => {
          this.router?.observe(p, h);
          void this.failover?.offer(h.handover).catch(() => {});
        },
        servingUntilReplaced: () => this.failover?.servingUntilReplaced ?? null,
      },
      opts,
    );
  }

  /** Failover moved the writer role: swap the role's service and the node's actors. */
  private async setRole(role: 'writer' | 'replica', writer: string): Promise<void> {
    const membership = this.membership!;
    // A promoted writer collected a majority's history itself, and a replica does not write:
    // either way there is nothing left to confirm.
    this.fence?.clear();
    if (membership.trusted !== writer) membership.follow(writer);
    if (role === this.opts.role) return;
    if (this.writer) this.writer.stopped = true;
    this.replica?.stop();
    this.writer = null;
    this.replica = null;
    this.opts.role = role;
    this.c.setRole(role);
    this.startRole();
    // The new role's round starts now: the previous role's may be stuck for a while (a capsule
    // pull waits up to 30 s), and a promoted writer must not wait for it to renew its lease
    // (found by the simulator, seed 348: writes refused for 25 s after a promotion).
    this.rounds++;
    this.timer?.cancel();
    this.tick();
  }

  private subscribe(transport: Transport, membership: Membership): void {
    const t = topics(this.opts.cluster, this.c.shard);
    transport.subscribe(
      t.manifests,
      (m) => void this.replica?.onRecord(m.data, m.from).catch(() => {}),
      async (m) => ((await membership.checkRecord(m.data)) ? 'accept' : 'reject'),
    );
    transport.subscribe(
      t.heads,
      (m) => this.replica?.onHead(m.data, m.from),
      (m) => (m.data.length <= 512 ? 'accept' : 'reject'),
    );
    transport.subscribe(
      t.handover,
      (m) => void this.failover?.offer(parseHandover(m.data)).catch(() => {}),
      async (m) => {
        const s = parseHandover(m.data);
        return s && (await this.failover!.valid(s)) ? 'accept' : 'reject';
      },
    );
  }

  /** Promotion, step 1 (`POST /v1/admin/promote/prepare` with the admin-signed prepare ticket). */
  preparePromotion(ticket: unknown): Promise<PromotionPlan> {
    if (!this.failover) throw new FsmeshError('unavailable', 'the cluster service is not running');
    if (!this.opts.admin_pub)
      throw new FsmeshError(
        'conflict',
        'failover needs --admin-pub on every node (the admin key signs handovers)',
      );
    return this.failover.prepare(ticket);
  }

  /** Promotion, step 2 (`POST /v1/admin/promote`): install the signed handover and announce it. */
  async promote(signed: unknown): Promise<{ writer: string; epoch: number; commit_seq_high: number }> {
    if (!this.failover || !this.net)
      throw new FsmeshError('unavailable', 'the cluster service is not running');
    const s = checkHandover(signed as SignedHandover);
    await this.failover.promote(s);
    const t = topics(this.opts.cluster, this.c.shard);
    await this.net.publish(t.handover, encodeSignedHandover(s)).catch(() => {});
    return {
      writer: s.handover.writer,
      epoch: s.handover.epoch,
      commit_seq_high: s.handover.commit_seq_high,
    };
  }

  private stopping: Promise<void> | null = null;

  /** Detaches synchronously (timers, loops), then stops the transport; idempotent. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopped = true;
      this.timer?.cancel();
      this.offEvents?.();
      this.keeper?.stop();
      if (this.writer) this.writer.stopped = true;
      this.replica?.stop();
      this.stopping = this.net?.stop() ?? Promise.resolve();
    }
    return this.stopping;
  }

  /** The protocols this node answers (protocol-server), wired to its live state. */
  private serve(transport: Transport, membership: Membership, failover: Failover): void {
    const { c, opts } = this;
    serveProtocols({
      ...c,
      serveRate: serveRateLimitOf(opts.serve_rate_limit_bytes_per_s, c.clock),
      routingState: () => ({
        ...c.routingState(),
        sync_progress: this.syncProgress,
        replication: this.opts.replication,
      }),
      transport,
      role: () => opts.role,
      trustedWriter: () => membership.trusted,
      currentRecord: () => this.writer?.currentRecord() ?? membership.latest,
      handover: () => failover.current,
      promise: () => (failover.promisedEpoch > 0 ? failover.promise : null),
      acceptPrepare: (t) => failover.acceptTicket(t),
      // Appends follow the trusted writer: its pin is on disk first (membership.pinDurable).
      replicate: async (append, from) => {
        await membership.pinDurable();
        return failover.replicate(append, from);
      },
      deferReplication: () => this.replica?.defersPushes() ?? false,
    });
  }

  /** Periodic anti-entropy: writers re-announce, replicas poll heads (gossip is not persistent). */
  private tick(round = this.rounds): void {
    if (this.stopped || round !== this.rounds) return;
    const run = this.writer
      ? this.writerRound(this.writer)
      : (this.replica?.pollHeads(true) ?? Promise.resolve());
    void run
      .catch(() => {})
      .finally(() => {
        if (!this.stopped && round === this.rounds)
          this.timer = this.c.clock.setTimeout(() => this.tick(round), this.opts.announce_interval_ms);
      });
  }

  /** A writer's periodic round: hear the members (handovers, routing), then announce unless fenced. */
  private async writerRound(writer: WriterReplication): Promise<void> {
    const fence = this.fence!;
    fence.beginRound();
    await this.router!.pollPeers();
    if (this.writer !== writer) return; // the role changed meanwhile (failover)
    if (fence.endRound()) this.c.requestBuild();
    if (!fence.fenced) {
      // Builds refused while the lease lapsed resume once it is held again.
      const active = this.c.generations.active?.commit_seq_high ?? 0;
      if (fence.leaseHeld() && this.c.log.commitSeqHigh > active) this.c.requestBuild();
      await writer.announce();
    }
  }

  /** A writer builds only while its fence is down and its lease held (replicas always may). */
  buildAllowed(): boolean {
    return !this.writer || (this.fence?.open() ?? true);
  }

  routeSearch(opts: SearchOptions & ReadOptions, local: RoutingState): Promise<RoutedResult | null> {
    return this.router ? this.router.route(opts, local) : Promise.resolve(null);
  }

  selfId(): string {
    return this.net?.peerId ?? this.c.name;
  }

  admitWrite(): void {
    if (this.writer && this.fence && !this.fence.open())
      throw new FsmeshError(
        'busy',
        'the writer is confirming its epoch with the cluster (a majority must answer); retry',
        { retry_after_s: 1 },
      );
    this.writer?.admitWrite();
  }

  confirmsEmptyCluster(): boolean {
    return this.replica?.writerHasNoGeneration ?? false;
  }

  awaitDurable(ack: AppendAck): Promise<void> {
    return this.writer ? this.writer.awaitDurable(ack) : Promise.resolve();
  }

  /** §8.1 / §8.2: an artifact the node cannot rebuild locally is fetched from peers. */
  async fetchObject(objectId: string): Promise<boolean> {
    if (!this.net) return false;
    try {
      const d = await this.descriptorOf(objectId);
      if (!d) return false; // only objects a retained manifest names are repaired from peers
      await fetchObjectFromPeers(this.net, this.c.symbols, d, this.net.peers(), {
        sleep: (ms) => this.c.clock.sleep(ms),
      });
      // Its repair symbols after the read that needed it: encoded in the background.
      this.c.symbols.ensureLater('artifact', [objectId]);
      return true;
    } catch {
      return false;
    }
  }

  /** The repair descriptor of an object named by a retained generation's manifest. */
  private async descriptorOf(objectId: string): Promise<RepairDescriptor | null> {
    for (const r of this.c.generations.retained) {
      const m = await this.c.generations.loadManifest(r.artifact_manifest_id).catch(() => null);
      const d = m?.repair.descriptors.find((x) => x.object_id === objectId);
      if (d) return d;
    }
    return null;
  }

  status(): Record<string, unknown> {
    if (!this.net || !this.membership) return {};
    const peerId = this.net.peerId;
    const writerHigh = this.writer ? this.c.log.commitSeqHigh : this.membership.writer_head;
    return {
      peer_id: peerId,
      multiaddrs: this.net.multiaddrs().map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`)),
      peers: this.net.peers(),
      cluster: this.opts.cluster,
      trusted_writer: this.membership.trusted,
      writer_commit_seq_high: writerHigh,
      lag_commits: Math.max(0, writerHigh - (this.c.generations.active?.commit_seq_high ?? 0)),
      durability: this.opts.durability,
      role: this.opts.role,
      epoch: this.failover?.epoch ?? 0,
      promised_epoch: Math.max(this.failover?.promisedEpoch ?? 0, this.failover?.highestPromiseSeen ?? 0),
      promised_to: this.failover?.promisedEpoch ? this.failover.promise?.ticket.candidate : null,
      fenced: this.fence?.fenced ?? false,
      lease_held: this.writer ? (this.fence?.leaseHeld() ?? true) : null,
      sync_progress: this.syncProgress,
      // Option A or B (docs/replication.md); a mixed cluster is explicit here and in the metrics.
      replication: this.opts.replication,
      replication_checkpoints: this.replica?.checkpoints ?? 0,
      // Each member's health, lag, draining flag and repairs in progress, as it last told us.
      members: this.router?.members() ?? {},
    };
  }
}

function parseHandover(data: Uint8Array): SignedHandover | null {
  try {
    return decodeSignedHandover(data);
  } catch {
    return null;
  }
}
