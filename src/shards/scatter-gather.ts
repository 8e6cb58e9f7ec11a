/**
 * Scatter-gather reads of a multi-shard collection (docs/sharding.md). Phase 1 pins one generation
 * per shard and sums the BM25 statistics; phase 2 asks each shard for its lists from exactly that
 * generation, scored with the sums; the merge fuses them (src/search/multi-shard.ts). A shard is
 * read here when this node serves the read, else on a member — whose answer counts only if it is
 * the generation the read asked for, signed by the shard's writer, with the commit the read needs.
 * One query has one time budget: every wait on a member ends within it.
 */
import { UNSAFE } from '../core/buggify.ts';
import { FsmeshError } from '../core/errors.ts';
import { shardName } from '../core/sharding.ts';
import type { ReadOptions, ShardStatsShare } from '../engine/local-engine.ts';
import { requestShardLists, requestShardStats, type ShardStatsAnswer } from '../p2p/shard-rpc.ts';
import type { Clock } from '../runtime/index.ts';
import { type LexicalStats, sumLexicalStats } from '../search/lexical/scoring.ts';
import { type MergedAnswer, mergeShardLists, type ShardLists } from '../search/multi-shard.ts';
import type { SearchOptions } from '../search/searcher.ts';
import { EMPTY_SHARD, type ShardReadVector, shardReadOptions } from './read-vectors.ts';
import type { LocalShard, RemoteShard } from './shard-handles.ts';
import { SERVING } from './shard-status.ts';

export interface ShardedSearchResult extends MergedAnswer {
  /** The generation each shard answered from: pass it back as `snapshot` to read the same view. */
  snapshot: Record<string, string>;
  shards: Record<
    string,
    { generation_id: string; artifact_manifest_id: string; commit_seq_high: number; served_by: string }
  >;
}

export interface ShardReaders {
  shards: number;
  /** This node's peer id (answers for an empty shard name it). */
  self: string;
  local: ReadonlyMap<number, LocalShard>;
  remote: ReadonlyMap<number, RemoteShard>;
  clock: Clock;
  /** A query's budget beyond its strict-read wait (and each member request's at most). */
  request_timeout_ms: number;
}

/**
 * Where a shard's two phases ran: here, or on one member (phase 2 goes where phase 1 went); or
 * nowhere, for a shard that has no generation yet.
 */
type Source = { kind: 'local' } | { kind: 'peer'; peer: string } | { kind: 'empty' };
type Found = { source: Source; share: ShardStatsShare };
/** A member's answer, checked: true when it counts. */
type Trust = (share: ShardStatsAnswer, peer: string) => Promise<boolean>;
interface QueryCtx {
  deadline_ms: number;
}

/** A shard no document was written to yet: no generation, nothing to count or rank. */
function emptyShard(): Found {
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

/**
 * Does a member's answer answer this read? The generation a snapshot named; a signed record that
 * matches the answer, whose commit satisfies a strict or as-of read (a commit without a record
 * would be the member's word only).
 */
function answersRead(share: ShardStatsAnswer, read: ReadOptions): string | null {
  if (read.generation_id !== undefined && share.generation_id !== read.generation_id)
    return `answered ${share.generation_id}, the snapshot named ${read.generation_id}`;
  const rec = share.record?.record;
  if (
    rec &&
    (rec.generation_id !== share.generation_id ||
      rec.artifact_manifest_id !== share.artifact_manifest_id ||
      rec.commit_seq_high !== share.commit_seq_high)
  )
    return 'its signed record does not match its answer';
  const bounded = read.min_commit_seq !== undefined || read.as_of_commit_seq !== undefined;
  if (bounded && !rec) return 'no signed record to check its commit against';
  if (read.min_commit_seq !== undefined && share.commit_seq_high < read.min_commit_seq)
    return `commit ${share.commit_seq_high} is older than the strict read's ${read.min_commit_seq}`;
  if (read.as_of_commit_seq !== undefined && share.commit_seq_high > read.as_of_commit_seq)
    return `commit ${share.commit_seq_high} is newer than as_of_commit_seq ${read.as_of_commit_seq}`;
  return null;
}

/** The most telling of the members' errors: what a client can act on first. */
const ERROR_RANK: Record<string, number> = { retention_dropped: 4, not_found: 3, timeout: 2 };
function moreTelling(a: unknown, b: unknown): unknown {
  const rank = (e: unknown) => (e instanceof FsmeshError ? (ERROR_RANK[e.code] ?? 1) : 0);
  return rank(b) > rank(a) ? b : a;
}

/**
 * Trust of a carried shard: a signed record in the answer is verified and admitted like a gossiped
 * one (a generation announced before this node joined); without one, the generation must be one
 * the shard's writer signed as this node's replica saw it.
 */
const trustedBy =
  (l: LocalShard): Trust =>
  async (share, peer) => {
    if (share.record && !(await l.cluster.admitRecord(share.record, peer))) return false;
    return l.cluster.isTrustedGeneration(share.generation_id, share.artifact_manifest_id);
  };

export class ScatterGather {
  private readonly r: ShardReaders;
  /** Per shard not carried here: the member that last answered for it (asked first next time). */
  readonly goodPeer = new Map<number, string>();

  constructor(r: ShardReaders) {
    this.r = r;
  }

  private primary(): LocalShard {
    return [...this.r.local.values()].sort((a, b) => a.shard - b.shard)[0];
  }

  private transportOf(k: number) {
    return this.r.local.get(k)?.transport ?? this.r.remote.get(k)!.transport;
  }

  /** Time left of the query's budget for one more member request; none left is a timeout. */
  private remaining(ctx: QueryCtx): number {
    const left = ctx.deadline_ms - this.r.clock.monotonicMs();
    if (left < 1) throw new FsmeshError('timeout', 'the multi-shard query ran out of its time budget');
    return Math.floor(left);
  }

  /**
   * Scatter-gather: phase 1, sum, phase 2, merge. A shard whose generation went away between the
   * phases (retention) is asked again once from phase 1, unless it was a snapshot read.
   */
  async search(opts: SearchOptions & ShardReadVector): Promise<ShardedSearchResult> {
    const { search, perShard } = shardReadOptions(opts, this.r.shards);
    const wait = Math.max(0, ...perShard.map((p) => p.timeout_ms ?? 0));
    const ctx = { deadline_ms: this.r.clock.monotonicMs() + wait + this.r.request_timeout_ms };
    for (let attempt = 0; ; attempt++) {
      const phase1 = await Promise.all(perShard.map((read, k) => this.statsOf(k, search, read, ctx)));
      const stats = sumLexicalStats(phase1.map((p) => p.share.stats));
      try {
        const lists = await Promise.all(
          // Planted bug (simulator only): each shard scores with its own statistics.
          phase1.map((p, k) =>
            this.listsOf(k, p, search, UNSAFE.shard_local_stats ? p.share.stats : stats, ctx),
          ),
        );
        const primary = this.primary().node.engine;
        const merged = mergeShardLists(lists, search, primary.config.embedder, primary.qualityTier());
        return { ...merged, ...this.view(phase1) };
      } catch (err) {
        const dropped = err instanceof FsmeshError && err.code === 'retention_dropped';
        if (!dropped || attempt > 0 || opts.snapshot !== undefined) throw err;
      }
    }
  }

  /** The snapshot an answer names, and where each shard was read. */
  private view(phase1: Found[]): Pick<ShardedSearchResult, 'snapshot' | 'shards'> {
    return {
      snapshot: Object.fromEntries(phase1.map((p, k) => [shardName(k), p.share.generation_id])),
      shards: Object.fromEntries(
        phase1.map((p, k) => [
          shardName(k),
          {
            generation_id: p.share.generation_id,
            artifact_manifest_id: p.share.artifact_manifest_id,
            commit_seq_high: p.share.commit_seq_high,
            served_by: p.source.kind === 'peer' ? p.source.peer : this.r.self,
          },
        ]),
      ),
    };
  }

  /**
   * Phase 1 for shard k: here when this node serves the read, else on the best member; a shard
   * with no generation anywhere yet (no document was ever written to it) answers as empty.
   */
  private async statsOf(k: number, search: SearchOptions, read: ReadOptions, ctx: QueryCtx): Promise<Found> {
    if (read.generation_id === EMPTY_SHARD) return emptyShard(); // a snapshot of an empty shard
    const remote = this.r.remote.get(k);
    if (remote) return this.followedShardStats(remote, search, read, ctx);
    const l = this.r.local.get(k)!;
    const local = l.node.status();
    const min = read.min_commit_seq ?? 0;
    const fitHere =
      SERVING.has(local.health) && local.active_commit_seq_high >= min && local.generation_id !== null;
    // A strict read this node cannot answer yet goes where the commit is already active.
    if (!fitHere) {
      const got = await this.askMembers(k, search, read, l.cluster.servingMembers(min), trustedBy(l), ctx);
      if ('found' in got) return got.found;
      if (local.generation_id === null && min === 0 && read.generation_id === undefined) return emptyShard();
    }
    try {
      return { source: { kind: 'local' }, share: await l.node.engine.shardStats({ ...search, ...read }) };
    } catch (err) {
      // A snapshot generation this node has not activated yet, or never had (it joined later), may
      // be retained on a member: those the router ranks first, then every other connected peer (a
      // node that just joined has not heard every member's state yet).
      if (!(err instanceof FsmeshError && (err.code === 'not_found' || err.code === 'retention_dropped')))
        throw err;
      const ranked = l.cluster.servingMembers(0);
      const peers = [...ranked, ...l.transport.peers().filter((p) => !ranked.includes(p))];
      const got = await this.askMembers(k, search, read, peers, trustedBy(l), ctx);
      if ('found' in got) return got.found;
      throw err;
    }
  }

  /** Phase 1 for a shard not carried here: the member that answered last first, then the others. */
  private async followedShardStats(
    r: RemoteShard,
    search: SearchOptions,
    read: ReadOptions,
    ctx: QueryCtx,
  ): Promise<Found> {
    const good = this.goodPeer.get(r.shard);
    const peers = r.transport.peers().sort((a, b) => Number(b === good) - Number(a === good));
    const got = await this.askMembers(
      r.shard,
      search,
      read,
      peers,
      async (share, peer) => {
        if (share.record && !(await r.trust.admit(share.record, peer))) return false;
        return r.trust.isTrusted(share.generation_id, share.artifact_manifest_id);
      },
      ctx,
    );
    if ('found' in got) {
      if (got.found.source.kind === 'peer') this.goodPeer.set(r.shard, got.found.source.peer);
      return got.found;
    }
    // Nobody answered and its writer never announced a generation: nothing was written to it yet.
    if (r.trust.latest() === null && read.min_commit_seq === undefined && read.generation_id === undefined)
      return emptyShard();
    throw (
      got.error ??
      new FsmeshError(
        'unavailable',
        `shard ${r.shard} is not carried here and no member answered for it from a generation its writer signed; retry`,
        { retry_after_s: 1 },
      )
    );
  }

  /** Ask members in turn within the query's budget; the first answer that counts, else the most telling error. */
  private async askMembers(
    k: number,
    search: SearchOptions,
    read: ReadOptions,
    peers: string[],
    trusted: Trust,
    ctx: QueryCtx,
  ): Promise<{ found: Found } | { error: unknown }> {
    let error: unknown = null;
    for (const peer of peers) {
      try {
        const timeout = Math.min(this.remaining(ctx), (read.timeout_ms ?? 0) + this.r.request_timeout_ms);
        const share = await requestShardStats(this.transportOf(k), peer, search, read, timeout);
        const wrong = answersRead(share, read);
        if (wrong) throw new FsmeshError('conflict', `peer ${peer}: ${wrong}`);
        if (!(await trusted(share, peer)))
          throw new FsmeshError(
            'conflict',
            `peer ${peer} answered from a generation the writer never signed`,
          );
        return { found: { source: { kind: 'peer', peer }, share } };
      } catch (err) {
        error = error === null ? err : moreTelling(error, err);
        if (this.r.clock.monotonicMs() >= ctx.deadline_ms) break;
      }
    }
    return { error };
  }

  private listsOf(
    k: number,
    p: Found,
    search: SearchOptions,
    stats: LexicalStats,
    ctx: QueryCtx,
  ): Promise<ShardLists> {
    const { source, share } = p;
    if (source.kind === 'empty') return Promise.resolve({});
    if (source.kind === 'local')
      return this.r.local
        .get(k)!
        .node.engine.shardLists({ ...search, generation_id: share.generation_id }, stats);
    return requestShardLists(
      this.transportOf(k),
      source.peer,
      search,
      share.generation_id,
      stats,
      Math.min(this.remaining(ctx), this.r.request_timeout_ms),
    );
  }
}
