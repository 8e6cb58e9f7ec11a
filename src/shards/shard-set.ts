/**
 * A node of a multi-shard collection (docs/sharding.md): one local node per shard it carries (its
 * own log, generations, actors and cluster services, all over one network host), and the two
 * things a single-shard node never needed:
 *   - writes anywhere: a batch is checked whole, split by `shardOf`, and each part committed by
 *     its shard's writer (here, or forwarded over the `write` protocol) as one capsule — all or
 *     nothing per shard; a partial failure names the shards that committed;
 *   - scatter-gather reads: every shard answers from one pinned generation, in two phases —
 *     statistics first (summed into collection-wide BM25 statistics), then ranked lists scored
 *     with them — merged into one answer that names its `snapshot`, the generation of each shard.
 * Each shard is read here when this node serves it well enough, else on the best member.
 */
import { UNSAFE } from '../core/buggify.ts';
import { utf8 } from '../core/bytes.ts';
import { type DocOp, LIMITS } from '../core/capsule.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import { blake3Hex } from '../core/ids.ts';
import { shardName, shardOf, splitOpsByShard } from '../core/sharding.ts';
import type { ReadOptions, ShardStatsShare } from '../engine/local-engine.ts';
import { checkIdempotencyKey, docsToOps } from '../node/doc-input.ts';
import type { FsmeshNode } from '../node/index.ts';
import type { ClusterService } from '../p2p/cluster.ts';
import type { RemoteShardTrust } from '../p2p/remote-shard.ts';
import {
  requestShardLists,
  requestShardStats,
  requestWrite,
  type ShardStatsAnswer,
  serveShardRpc,
  type WriteAnswer,
} from '../p2p/shard-rpc.ts';
import type { Transport } from '../runtime/index.ts';
import { type LexicalStats, sumLexicalStats } from '../search/lexical/scoring.ts';
import { type MergedAnswer, mergeShardLists, type ShardLists } from '../search/multi-shard.ts';
import type { SearchOptions } from '../search/searcher.ts';
import { EMPTY_SHARD, type ShardReadVector, shardReadOptions } from './read-vectors.ts';
import type { LocalShard, RemoteShard } from './shard-handles.ts';
import { SERVING, shardSetStatus } from './shard-status.ts';

export type { LocalShard, RemoteShard } from './shard-handles.ts';

export interface ShardSetOptions {
  shards: number;
  writer_of: number | null;
  /** This node's peer id (answers for an empty shard name it). */
  self: string;
  local: LocalShard[];
  remote?: RemoteShard[];
  /** Deadline for a forwarded write part and for each phase of a remote shard read. */
  request_timeout_ms?: number;
}

export interface ShardedWriteAck {
  commit_seqs: Record<string, number>;
  commit_ids: Record<string, string>;
  docs: number;
  deduplicated: boolean;
}

export interface ShardedSearchResult extends MergedAnswer {
  /** The generation each shard answered from: pass it back as `snapshot` to read the same view. */
  snapshot: Record<string, string>;
  shards: Record<
    string,
    { generation_id: string; artifact_manifest_id: string; commit_seq_high: number; served_by: string }
  >;
}

/**
 * Where a shard's two phases ran: here, or on one member (phase 2 goes where phase 1 went); or
 * nowhere, for a shard that has no generation yet.
 */
type Source = { kind: 'local' } | { kind: 'peer'; peer: string } | { kind: 'empty' };

/**
 * Each shard's part of a batch keeps its own idempotency key, derived from the client's: the same
 * key and shard always give the same part key, within the per-commit key limit (a long key is
 * replaced by its hash).
 */
function partKey(key: string | undefined, k: number): string | undefined {
  if (key === undefined) return undefined;
  const suffix = `#${k}`;
  return utf8.encode(key).length + suffix.length <= LIMITS.idempotency_key_bytes
    ? `${key}${suffix}`
    : `${blake3Hex(utf8.encode(key))}${suffix}`;
}

/** A shard no document was written to yet: no generation, nothing to count or rank. */
function emptyShard(): { source: Source; share: ShardStatsShare } {
  return {
    source: { kind: 'empty' },
    share: {
      generation_id: EMPTY_SHARD,
      artifact_manifest_id: '',
      commit_seq_high: 0,
      stats: { live_docs: 0, len_sum: 0, df: {} },
    },
  };
}

/** A carried shard's trust: what its writer signed (a replica) or activated (the writer). */
const trustedBy =
  (l: LocalShard) =>
  async (share: ShardStatsAnswer, peer: string): Promise<boolean> => {
    if (l.cluster.isTrustedGeneration(share.generation_id, share.artifact_manifest_id)) return true;
    // A generation announced before this node joined: trusted on its writer's signed record.
    if (!share.record || !(await l.cluster.admitRecord(share.record, peer))) return false;
    return l.cluster.isTrustedGeneration(share.generation_id, share.artifact_manifest_id);
  };

export class ShardSet {
  readonly shards: number;
  readonly writer_of: number | null;
  readonly self: string;
  private readonly local = new Map<number, LocalShard>();
  private readonly remote = new Map<number, RemoteShard>();
  private readonly timeoutMs: number;
  /** Per shard not carried here: the member that last answered for it (asked first next time). */
  private readonly goodPeer = new Map<number, string>();

  constructor(o: ShardSetOptions) {
    this.shards = o.shards;
    this.writer_of = o.writer_of;
    this.self = o.self;
    this.timeoutMs = o.request_timeout_ms ?? 30_000;
    for (const l of o.local) this.local.set(l.shard, l);
    for (const r of o.remote ?? []) this.remote.set(r.shard, r);
    // Every shard is carried here or followed as a remote one, never both.
    invariant(
      this.local.size + this.remote.size === this.shards &&
        [...this.remote.keys()].every((k) => !this.local.has(k)),
      'each shard is carried here or followed remotely',
    );
    invariant(this.local.size > 0, 'a multi-shard node carries at least one shard');
    invariant(o.writer_of === null || this.local.has(o.writer_of), 'a node carries the shard it writes');
    for (const l of o.local) this.serve(l);
  }

  shard(k: number): LocalShard {
    const l = this.local.get(k);
    invariant(l, `shard ${k} is carried here`);
    return l;
  }

  /** The shards carried here, by shard number. */
  localShards(): LocalShard[] {
    return [...this.local.values()].sort((a, b) => a.shard - b.shard);
  }

  get nodes(): FsmeshNode[] {
    return this.localShards().map((l) => l.node);
  }

  /** The first shard carried here: its engine configuration is the collection's (embedders). */
  private primary(): LocalShard {
    return this.localShards()[0];
  }

  private transportOf(k: number): Transport {
    return this.local.get(k)?.transport ?? this.remote.get(k)!.transport;
  }

  /** Answer peers' forwarded writes and shard queries for each carried shard. */
  private serve(l: LocalShard): void {
    serveShardRpc(l.transport, {
      write: async (req) => {
        if (l.node.status().role !== 'writer')
          throw new FsmeshError('conflict', `this node does not write shard ${l.shard}`);
        // Placement is checked where it is committed: a part from a node of another layout, or
        // holding a document of another shard, would hide it from later deletes and updates.
        if (req.shards !== this.shards)
          throw new FsmeshError(
            'conflict',
            `the sender splits by ${req.shards} shards, this collection has ${this.shards}`,
          );
        const stray = req.ops.find(
          (op) => typeof op?.doc_id !== 'string' || shardOf(op.doc_id, this.shards) !== l.shard,
        );
        if (stray)
          throw new FsmeshError(
            'invalid_input',
            `document ${JSON.stringify(stray?.doc_id)?.slice(0, 80)} does not belong to shard ${l.shard}`,
          );
        const ack = await l.node.ingestOps(req.ops, { idempotency_key: req.idempotency_key });
        return { commit_seq: ack.commit_seq, commit_id: ack.commit_id, deduplicated: ack.deduplicated };
      },
      stats: async (search, read) => {
        const share = await l.node.engine.shardStats({ ...search, ...read });
        // The writer's signature over this generation: a node that does not carry the shard checks it.
        const record = await l.cluster.signedRecordOf(share.generation_id);
        return record ? { ...share, record } : share;
      },
      lists: (search, generation_id, stats) => l.node.engine.shardLists({ ...search, generation_id }, stats),
    });
  }

  /** A batch from a client: checked whole (nothing committed on one bad document), then split. */
  async ingest(docs: unknown, opts: { idempotency_key?: string } = {}): Promise<ShardedWriteAck> {
    checkIdempotencyKey(opts.idempotency_key);
    const ops = docsToOps(docs);
    return this.commit(ops, opts.idempotency_key);
  }

  async delete(docId: string): Promise<ShardedWriteAck> {
    return this.commit([{ op: 'delete', doc_id: docId }], undefined);
  }

  private async commit(ops: DocOp[], key: string | undefined): Promise<ShardedWriteAck> {
    const parts = [...splitOpsByShard(ops, this.shards).entries()];
    // Each shard's part keeps its own idempotency key, so retrying a partly failed batch commits
    // only what is missing.
    const results = await Promise.allSettled(
      parts.map(([k, part]) => this.writePart(k, part, partKey(key, k))),
    );
    const ack: ShardedWriteAck = { commit_seqs: {}, commit_ids: {}, docs: ops.length, deduplicated: true };
    const failed: Record<string, string> = {};
    let firstError: unknown = null;
    results.forEach((r, i) => {
      const name = shardName(parts[i][0]);
      if (r.status === 'fulfilled') {
        ack.commit_seqs[name] = r.value.commit_seq;
        ack.commit_ids[name] = r.value.commit_id;
        ack.deduplicated &&= r.value.deduplicated;
      } else {
        failed[name] = (r.reason as Error).message;
        firstError ??= r.reason;
      }
    });
    if (Object.keys(failed).length === 0) return ack;
    // Nothing committed: the first shard's error as it is (its code says what to do).
    if (Object.keys(ack.commit_seqs).length === 0) throw firstError;
    throw new FsmeshError(
      'partial_commit',
      `shards ${Object.keys(failed).join(', ')} did not commit (${Object.values(failed)[0]}); shards ${Object.keys(ack.commit_seqs).join(', ')} did: retry the batch with the same Idempotency-Key to commit only the rest`,
      { commit_seqs: ack.commit_seqs, failed_shards: failed },
    );
  }

  /** One shard's part, committed by its writer: here, or forwarded to the writer it trusts. */
  private async writePart(k: number, ops: DocOp[], key: string | undefined): Promise<WriteAnswer> {
    const l = this.local.get(k);
    if (l && l.node.status().role === 'writer') {
      const ack = await l.node.ingestOps(ops, { idempotency_key: key });
      return { commit_seq: ack.commit_seq, commit_id: ack.commit_id, deduplicated: ack.deduplicated };
    }
    const writer = l ? l.cluster.status().trusted_writer : this.remote.get(k)!.trust.writer();
    if (typeof writer !== 'string')
      throw new FsmeshError('unavailable', `shard ${k}: no writer known yet (not connected to it); retry`, {
        retry_after_s: 1,
      });
    return requestWrite(
      this.transportOf(k),
      writer,
      { shards: this.shards, ops, idempotency_key: key },
      this.timeoutMs,
    );
  }

  /** Where a document lives (tests, tools). */
  shardOfDoc(docId: string): number {
    return shardOf(docId, this.shards);
  }

  /**
   * Scatter-gather: phase 1 pins one generation per shard and sums the statistics, phase 2 asks
   * each for its lists under them, and the merge fuses them. A shard whose generation went away
   * between the phases (retention) is asked again once from phase 1, unless it was a snapshot.
   */
  async search(opts: SearchOptions & ShardReadVector): Promise<ShardedSearchResult> {
    const { search, perShard } = shardReadOptions(opts, this.shards);
    for (let attempt = 0; ; attempt++) {
      const phase1 = await Promise.all(perShard.map((read, k) => this.statsOf(k, search, read)));
      const stats = sumLexicalStats(phase1.map((p) => p.share.stats));
      try {
        const lists = await Promise.all(
          // Planted bug (simulator only): each shard scores with its own statistics.
          phase1.map((p, k) =>
            this.listsOf(k, p.source, search, p.share, UNSAFE.shard_local_stats ? p.share.stats : stats),
          ),
        );
        const merged = mergeShardLists(
          lists,
          search,
          this.primary().node.engine.config.embedder,
          this.qualityTier(),
        );
        return {
          ...merged,
          snapshot: Object.fromEntries(phase1.map((p, k) => [shardName(k), p.share.generation_id])),
          shards: Object.fromEntries(
            phase1.map((p, k) => [
              shardName(k),
              {
                generation_id: p.share.generation_id,
                artifact_manifest_id: p.share.artifact_manifest_id,
                commit_seq_high: p.share.commit_seq_high,
                served_by: p.source.kind === 'peer' ? p.source.peer : this.self,
              },
            ]),
          ),
        };
      } catch (err) {
        const dropped = err instanceof FsmeshError && err.code === 'retention_dropped';
        if (!dropped || attempt > 0 || opts.snapshot !== undefined) throw err;
      }
    }
  }

  private qualityTier() {
    return this.primary().node.engine.qualityTier();
  }

  /**
   * Phase 1 for shard k: here when this node serves the read, else on the best member; a shard
   * with no generation anywhere yet (no document was ever written to it) answers as empty.
   */
  private async statsOf(
    k: number,
    search: SearchOptions,
    read: ReadOptions,
  ): Promise<{ source: Source; share: ShardStatsShare }> {
    if (read.generation_id === EMPTY_SHARD) return emptyShard(); // a snapshot of an empty shard
    const r = this.remote.get(k);
    if (r) return this.remoteShardStats(r, search, read);
    const l = this.shard(k);
    const local = l.node.status();
    const min = read.min_commit_seq ?? 0;
    const fitHere =
      SERVING.has(local.health) && local.active_commit_seq_high >= min && local.generation_id !== null;
    // A strict read this node cannot answer yet goes where the commit is already active.
    if (!fitHere) {
      const remote = await this.remoteStats(k, search, read, l.cluster.servingMembers(min), trustedBy(l));
      if (remote) return remote;
      if (local.generation_id === null && min === 0 && read.generation_id === undefined) return emptyShard();
    }
    try {
      return { source: { kind: 'local' }, share: await l.node.engine.shardStats({ ...search, ...read }) };
    } catch (err) {
      // A snapshot generation this node has not activated yet, or never had (it joined later), may
      // be retained on a member.
      if (!(err instanceof FsmeshError && (err.code === 'not_found' || err.code === 'retention_dropped')))
        throw err;
      // Members the router ranks first, then every other connected peer (a node that just joined
      // has not heard every member's state yet); each answer is still checked against the writer.
      const ranked = l.cluster.servingMembers(0);
      const peers = [...ranked, ...l.transport.peers().filter((p) => !ranked.includes(p))];
      const remote = await this.remoteStats(k, search, read, peers, trustedBy(l));
      if (remote) return remote;
      throw err;
    }
  }

  /** Phase 1 for a shard not carried here: the member that answered last first, then the others. */
  private async remoteShardStats(
    r: RemoteShard,
    search: SearchOptions,
    read: ReadOptions,
  ): Promise<{ source: Source; share: ShardStatsShare }> {
    // Its writer never signed a generation: nothing was written to it yet.
    if (r.trust.latest() === null && read.min_commit_seq === undefined && read.generation_id === undefined)
      return emptyShard();
    const good = this.goodPeer.get(r.shard);
    const peers = r.transport.peers().sort((a, b) => Number(b === good) - Number(a === good));
    const found = await this.remoteStats(r.shard, search, read, peers, async (share, peer) => {
      if (r.trust.isTrusted(share.generation_id, share.artifact_manifest_id)) return true;
      // A generation announced before this node started: trusted on its writer's signed record.
      if (!share.record || !(await r.trust.admit(share.record, peer))) return false;
      return r.trust.isTrusted(share.generation_id, share.artifact_manifest_id);
    });
    if (!found)
      throw new FsmeshError(
        'unavailable',
        `shard ${r.shard} is not carried here and no member answered for it from a generation its writer signed; retry`,
        { retry_after_s: 1 },
      );
    if (found.source.kind === 'peer') this.goodPeer.set(r.shard, found.source.peer);
    return found;
  }

  private async remoteStats(
    k: number,
    search: SearchOptions,
    read: ReadOptions,
    peers: string[],
    trusted: (share: ShardStatsAnswer, peer: string) => boolean | Promise<boolean>,
  ): Promise<{ source: Source; share: ShardStatsShare } | null> {
    for (const peer of peers) {
      try {
        const share = await requestShardStats(
          this.transportOf(k),
          peer,
          search,
          read,
          this.readTimeout(read),
        );
        if (!(await trusted(share, peer)))
          throw new FsmeshError(
            'conflict',
            `peer ${peer} answered from a generation the writer never signed`,
          );
        return { source: { kind: 'peer', peer }, share };
      } catch {
        // the next member
      }
    }
    return null;
  }

  private readTimeout(read: ReadOptions): number {
    return (read.timeout_ms ?? 0) + this.timeoutMs;
  }

  private listsOf(
    k: number,
    source: Source,
    search: SearchOptions,
    share: ShardStatsShare,
    stats: LexicalStats,
  ): Promise<ShardLists> {
    if (source.kind === 'empty') return Promise.resolve({});
    if (source.kind === 'local')
      return this.shard(k).node.engine.shardLists({ ...search, generation_id: share.generation_id }, stats);
    return requestShardLists(
      this.transportOf(k),
      source.peer,
      search,
      share.generation_id,
      stats,
      this.timeoutMs,
    );
  }

  /** Every shard: its writer, its members, its active generation and lag (`/v1/status`). */
  status(): Record<string, unknown> {
    return shardSetStatus(this, this.localShards(), [...this.remote.values()], this.goodPeer);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
