/**
 * A node of a multi-shard collection (docs/sharding.md): one local node per shard it carries (its
 * own log, generations, actors and cluster services, all over one network host) and a follower of
 * each shard it does not, and the two things a single-shard node never needed:
 *   - writes anywhere: a batch is checked whole, split by `shardOf`, and each part committed by
 *     its shard's writer (here, or forwarded over the `write` protocol) as one capsule — all or
 *     nothing per shard; a partial failure names the shards that committed;
 *   - scatter-gather reads (scatter-gather.ts): every shard answers from one pinned generation,
 *     statistics first, then ranked lists scored with their sums, merged into one answer that
 *     names its `snapshot`, the generation of each shard.
 */
import { utf8 } from '../core/bytes.ts';
import { type DocOp, LIMITS } from '../core/capsule.ts';
import { WIRE_LIMITS } from '../core/defaults.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import { blake3Hex } from '../core/ids.ts';
import { shardName, shardOf, splitOpsByShard } from '../core/sharding.ts';
import { checkIdempotencyKey, docsToOps } from '../node/doc-input.ts';
import type { FsmeshNode } from '../node/index.ts';
import { requestWrite, serveShardRpc, type WriteAnswer } from '../p2p/shard-rpc.ts';
import type { Clock, Transport } from '../runtime/index.ts';
import type { SearchOptions } from '../search/searcher.ts';
import type { ShardReadVector } from './read-vectors.ts';
import { ScatterGather, type ShardedSearchResult } from './scatter-gather.ts';
import type { LocalShard, RemoteShard } from './shard-handles.ts';
import { shardSetStatus } from './shard-status.ts';

export type { ShardedSearchResult } from './scatter-gather.ts';
export type { LocalShard, RemoteShard } from './shard-handles.ts';

export interface ShardSetOptions {
  shards: number;
  writer_of: number | null;
  /** This node's peer id (answers for an empty shard name it). */
  self: string;
  /** The node's clock (the simulator's virtual one): query budgets are measured on it. */
  clock: Clock;
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

/** What a part's encoding adds to its ops (capsule fields, the forwarding request's). */
const PART_ENVELOPE_BYTES = 512;

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

export class ShardSet {
  readonly shards: number;
  readonly writer_of: number | null;
  readonly self: string;
  private readonly local = new Map<number, LocalShard>();
  private readonly remote = new Map<number, RemoteShard>();
  private readonly timeoutMs: number;
  private readonly reads: ScatterGather;

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
    this.reads = new ScatterGather({
      shards: this.shards,
      self: this.self,
      local: this.local,
      remote: this.remote,
      clock: o.clock,
      request_timeout_ms: this.timeoutMs,
    });
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
    // Sized before any part commits: a part too large for one commit (or one forwarding frame)
    // is the client's batch to split, not a partial commit no retry could finish.
    for (const [k, part] of parts) {
      const size = Buffer.byteLength(JSON.stringify(part)) + PART_ENVELOPE_BYTES;
      if (size > WIRE_LIMITS.max_capsule_bytes)
        throw new FsmeshError(
          'invalid_input',
          `shard ${k}'s part of the batch is ~${size} bytes, over the ${WIRE_LIMITS.max_capsule_bytes}-byte limit of one commit; nothing committed: split the batch`,
        );
    }
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
    let writer = l ? l.cluster.status().trusted_writer : this.remote.get(k)!.trust.writer();
    if (typeof writer !== 'string' && !l) {
      // A followed shard whose writer has announced nothing yet: ask the peers who writes it.
      await this.remote.get(k)!.trust.refresh(Math.min(5000, this.timeoutMs));
      writer = this.remote.get(k)!.trust.writer();
    }
    if (typeof writer !== 'string')
      throw new FsmeshError('unavailable', `shard ${k}: no writer known yet (not connected to it); retry`, {
        retry_after_s: 1,
      });
    const req = { shards: this.shards, ops, idempotency_key: key };
    try {
      return await requestWrite(this.transportOf(k), writer, req, this.timeoutMs);
    } catch (err) {
      // A followed shard's writer may have moved (failover) while this node missed the handover:
      // ask the peers' heads, and forward once more if it did.
      const r = this.remote.get(k);
      if (!r || (err instanceof FsmeshError && err.code === 'invalid_input')) throw err;
      await r.trust.refresh(Math.min(5000, this.timeoutMs));
      const now = r.trust.writer();
      if (!now || now === writer) throw err;
      return requestWrite(this.transportOf(k), now, req, this.timeoutMs);
    }
  }

  /** Where a document lives (tests, tools). */
  shardOfDoc(docId: string): number {
    return shardOf(docId, this.shards);
  }

  /** Scatter-gather on a snapshot vector (scatter-gather.ts). */
  search(opts: SearchOptions & ShardReadVector): Promise<ShardedSearchResult> {
    return this.reads.search(opts);
  }

  /** Every shard: its writer, its members, its active generation and lag (`/v1/status`). */
  status(): Record<string, unknown> {
    return shardSetStatus(this, this.localShards(), [...this.remote.values()], this.reads.goodPeer);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
