/**
 * A shard this node does not carry (`--replicate-shards` narrowed it away; docs/sharding.md): the
 * node still needs to know who writes it (to forward writes) and which of its generations that
 * writer signed (to accept a member's answer for it). It follows the shard's manifests topic with
 * the same trust rules as a replica — the writer pinned on first use only from the seeds (kept in
 * `shards/<k>/trusted-writer`), records checked for cluster, shard, layout and signature — and
 * keeps nothing else: no log, no generations.
 */
import type { NodeEvents } from '../obs/events.ts';
import type { Storage, Transport } from '../runtime/index.ts';
import { clusterOptions } from './cluster-options.ts';
import { checkHandover, decodeSignedHandover, type SignedHandover, verifyHandover } from './handover.ts';
import { jsonFrame, PROTO, parseJsonFrame, topics } from './protocols.ts';
import { encodeSignedRecord, type SignedRecord } from './records.ts';
import { Membership } from './services/membership.ts';

export interface RemoteShardOptions {
  transport: Transport;
  /** The shard's own directory (only the writer pin is written there). */
  storage: Storage;
  events: NodeEvents;
  cluster: string;
  shard: string;
  shards: number;
  seed_peer_ids: string[];
  /** The operator's admin key: a handover it signed moves this shard's writer (failover). */
  admin_pub?: string;
}

export class RemoteShardTrust {
  private readonly membership: Membership;
  private readonly o: RemoteShardOptions;
  /** The newest handover epoch followed (0: the writer pinned from the seeds). */
  private epoch = 0;

  constructor(o: RemoteShardOptions) {
    this.o = o;
    this.membership = new Membership(
      {
        transport: o.transport,
        storage: o.storage,
        events: o.events,
        shard: o.shard,
        generations: { active: null },
        noteLatestGeneration: () => {},
      },
      clusterOptions({
        role: 'replica',
        cluster: o.cluster,
        shards: o.shards,
        seed_peer_ids: o.seed_peer_ids,
        // Nothing of this shard is kept here: there is no lag to alert on.
        lag_alert_commits: Number.MAX_SAFE_INTEGER,
      }),
    );
  }

  async start(): Promise<void> {
    await this.o.storage.mkdirp('');
    await this.membership.load();
    const m = this.membership;
    this.o.transport.subscribe(
      topics(this.o.cluster, this.o.shard).manifests,
      (msg) => void m.admitRecord(msg.data, msg.from).catch(() => {}),
      async (msg) => ((await m.checkRecord(msg.data)) ? 'accept' : 'reject'),
    );
    // Failover of this shard: follow the admin-signed handover, as its replicas do.
    this.o.transport.subscribe(
      topics(this.o.cluster, this.o.shard).handover,
      (msg) => void this.offerHandover(parseHandover(msg.data)),
      async (msg) => ((await this.validHandover(parseHandover(msg.data))) ? 'accept' : 'reject'),
    );
  }

  private async validHandover(s: SignedHandover | null): Promise<boolean> {
    return (
      s !== null &&
      this.o.admin_pub !== undefined &&
      s.handover.cluster === this.o.cluster &&
      s.handover.shard === this.o.shard &&
      (await verifyHandover(s, this.o.admin_pub))
    );
  }

  /** A newer admin-signed handover moves the trusted writer. True when it was followed. */
  async offerHandover(s: SignedHandover | null): Promise<boolean> {
    if (!s || s.handover.epoch <= this.epoch || !(await this.validHandover(s))) return false;
    this.epoch = s.handover.epoch;
    this.membership.follow(s.handover.writer);
    return true;
  }

  /**
   * Ask the connected peers' heads for this shard's writer and newest handover (no writer known
   * yet, or a forwarded write was refused: the writer may have moved while this node was away).
   */
  async refresh(timeout_ms: number): Promise<void> {
    for (const peer of this.o.transport.peers()) {
      try {
        const [f] = await this.o.transport.request(peer, PROTO.head, jsonFrame({}), {
          timeout_ms,
          max_response_bytes: 64 << 10,
        });
        const h = parseJsonFrame<{ handover?: unknown; writer?: unknown }>(f, 'head answer');
        if (h?.handover) await this.offerHandover(safeCheck(h.handover));
        // Before its first generation a writer announces no record: it says it writes in its head
        // answer (attributed to the authenticated peer; pinned only if that peer is a seed).
        if (!this.membership.trusted && h?.writer === peer) await this.membership.pinWriter(peer);
      } catch {
        // a peer without this shard, or unreachable: the next
      }
    }
  }

  /** The shard's trusted writer, once pinned. */
  writer(): string | null {
    return this.membership.trusted;
  }

  /** A generation (id and manifest) the trusted writer signed, as seen since this node started. */
  isTrusted(generation_id: string, artifact_manifest_id: string): boolean {
    return this.membership.isTrustedManifest(generation_id, artifact_manifest_id);
  }

  /**
   * A member's answer carried the writer's signed record of its generation (one this node may
   * not have heard announced: it started later): admitted by the same rules as gossip.
   */
  admit(record: SignedRecord, from: string): Promise<boolean> {
    return this.membership.admitRecord(encodeSignedRecord(record), from);
  }

  /** The newest signed generation heard of (status). */
  latest(): { generation_id: string; commit_seq_high: number } | null {
    const r = this.membership.latest?.record;
    return r ? { generation_id: r.generation_id, commit_seq_high: r.commit_seq_high } : null;
  }
}

function parseHandover(data: Uint8Array): SignedHandover | null {
  try {
    return decodeSignedHandover(data);
  } catch {
    return null;
  }
}

function safeCheck(v: unknown): SignedHandover | null {
  try {
    return checkHandover(v as SignedHandover);
  } catch {
    return null;
  }
}
