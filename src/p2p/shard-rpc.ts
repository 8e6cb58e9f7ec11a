/**
 * The two protocols of a multi-shard collection (docs/protocols.md, docs/sharding.md), served per
 * shard through its namespaced view (shard-transport.ts):
 *   write        `{shards, ops, idempotency_key?}` → `{commit_seq, commit_id, deduplicated}`: a part of a
 *                batch forwarded to the shard's writer (any node accepts writes for every shard)
 *   shard-query  `{phase:"stats", search, read}` → `{generation_id, artifact_manifest_id,
 *                commit_seq_high, stats, record?}` (record: the writer's signed record of it); `{phase:"lists", search, generation_id, stats}` →
 *                `{lexical?, vector?, semantic?}`: the two phases of a scatter-gather query
 * Every request and answer is checked here before use: peers may be hostile.
 */
import type { DocOp } from '../core/capsule.ts';
import { FsmeshError } from '../core/errors.ts';
import type { ReadOptions, ShardStatsShare } from '../engine/local-engine.ts';
import type { Transport } from '../runtime/index.ts';
import type { LexicalStats } from '../search/lexical/scoring.ts';
import type { ShardLists } from '../search/multi-shard.ts';
import { MAX_K, MAX_QUERY_CHARS, type SearchOptions } from '../search/searcher.ts';
import { MAX_FRAME_BYTES } from './framing.ts';
import { jsonFrame, PROTO, parseJsonFrame } from './protocols.ts';
import { decodeSignedRecord, type SignedRecord } from './records.ts';

export interface WriteRequest {
  /** The sender's shard count: a part placed under another layout is refused. */
  shards: number;
  ops: DocOp[];
  idempotency_key?: string;
}

export interface WriteAnswer {
  commit_seq: number;
  commit_id: string;
  deduplicated: boolean;
}

export type ShardQuery =
  | { phase: 'stats'; search: SearchOptions; read: ReadOptions }
  | { phase: 'lists'; search: SearchOptions; generation_id: string; stats: LexicalStats };

/** A stats answer; `record` is the shard writer's signed record of that generation when the peer has it. */
export type ShardStatsAnswer = ShardStatsShare & { record?: SignedRecord };

export interface ShardRpcHandlers {
  write(req: WriteRequest, from: string): Promise<WriteAnswer>;
  stats(search: SearchOptions, read: ReadOptions): Promise<ShardStatsAnswer>;
  lists(search: SearchOptions, generation_id: string, stats: LexicalStats): Promise<ShardLists>;
}

/** Most query terms whose statistics travel (a query is at most MAX_QUERY_CHARS characters). */
const MAX_STATS_TERMS = MAX_QUERY_CHARS;
const bad = (m: string): never => {
  throw new FsmeshError('invalid_input', m);
};
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Only the search fields a shard needs, typed; the engine validates their values. */
function searchOf(v: unknown): SearchOptions {
  if (!v || typeof v !== 'object') return bad('search: must be an object');
  const s = v as Record<string, unknown>;
  if (typeof s.q !== 'string' || s.q.length > MAX_QUERY_CHARS) bad('search.q: a string of bounded length');
  if (s.k !== undefined && !(isCount(s.k) && s.k <= MAX_K)) bad('search.k: an integer up to MAX_K');
  return {
    q: s.q as string,
    k: s.k as number | undefined,
    mode: s.mode as SearchOptions['mode'],
    tier: s.tier as SearchOptions['tier'],
    rrf_k: s.rrf_k as number | undefined,
  };
}

function readOf(v: unknown): ReadOptions {
  if (!v || typeof v !== 'object') return {};
  const r = v as Record<string, unknown>;
  const out: ReadOptions = {};
  for (const k of ['as_of_commit_seq', 'min_commit_seq', 'timeout_ms'] as const)
    if (r[k] !== undefined) out[k] = isCount(r[k]) ? r[k] : bad(`read.${k}: a non-negative integer`);
  if (r.generation_id !== undefined) out.generation_id = String(r.generation_id);
  return out;
}

/** Statistics from a peer: bounded, non-negative integers (a forged df could only skew ranking). */
export function checkLexicalStats(v: unknown): LexicalStats {
  if (!v || typeof v !== 'object') return bad('stats: must be an object');
  const s = v as Record<string, unknown>;
  if (
    !isCount(s.live_docs) ||
    typeof s.len_sum !== 'number' ||
    !(s.len_sum >= 0) ||
    !Number.isFinite(s.len_sum)
  )
    bad('stats: live_docs and len_sum must be non-negative numbers');
  if (!s.df || typeof s.df !== 'object' || Array.isArray(s.df)) return bad('stats.df: must be an object');
  const entries = Object.entries(s.df as Record<string, unknown>);
  if (entries.length > MAX_STATS_TERMS) bad(`stats.df: more than ${MAX_STATS_TERMS} terms`);
  const df: Record<string, number> = Object.create(null);
  for (const [t, n] of entries) {
    if (!isCount(n) || n > (s.live_docs as number))
      bad(`stats.df[${JSON.stringify(t.slice(0, 40))}]: out of range`);
    df[t] = n as number;
  }
  return { live_docs: s.live_docs as number, len_sum: s.len_sum as number, df };
}

export function parseShardQuery(req: Uint8Array): ShardQuery {
  const v = parseJsonFrame<Record<string, unknown>>(req, 'shard query');
  if (v?.phase === 'stats') return { phase: 'stats', search: searchOf(v.search), read: readOf(v.read) };
  if (v?.phase === 'lists') {
    if (typeof v.generation_id !== 'string') bad('generation_id: required for the lists phase');
    return {
      phase: 'lists',
      search: searchOf(v.search),
      generation_id: v.generation_id as string,
      stats: checkLexicalStats(v.stats),
    };
  }
  return bad('phase: must be "stats" or "lists"');
}

export function parseWriteRequest(req: Uint8Array): WriteRequest {
  const v = parseJsonFrame<Record<string, unknown>>(req, 'write');
  if (!Array.isArray(v?.ops)) bad('ops: must be an array');
  if (!isCount(v.shards) || v.shards < 2 || v.shards > 64) bad("shards: the sender's shard count, 2 to 64");
  if (v.idempotency_key !== undefined && typeof v.idempotency_key !== 'string')
    bad('idempotency_key: must be a string');
  // The ops are checked by the writer's ingest like any client's documents.
  return {
    shards: v.shards as number,
    ops: v.ops as DocOp[],
    idempotency_key: v.idempotency_key as string | undefined,
  };
}

export function serveShardRpc(transport: Transport, h: ShardRpcHandlers): void {
  transport.handle(PROTO.write, async (req, from) => [
    jsonFrame(await h.write(parseWriteRequest(req), from)),
  ]);
  transport.handle(PROTO.shard_query, async (req) => {
    const q = parseShardQuery(req);
    if (q.phase === 'stats') return [jsonFrame(await h.stats(q.search, q.read))];
    return [jsonFrame(await h.lists(q.search, q.generation_id, q.stats))];
  });
}

/** A part of a batch for a shard's writer; refused before sending when over the frame limit. */
export async function requestWrite(
  transport: Transport,
  writer: string,
  req: WriteRequest,
  timeout_ms: number,
): Promise<WriteAnswer> {
  const frame = jsonFrame(req);
  if (frame.length > MAX_FRAME_BYTES)
    throw new FsmeshError(
      'invalid_input',
      `this shard's part of the batch is ${frame.length} bytes, over the ${MAX_FRAME_BYTES}-byte forwarding limit: send smaller batches`,
    );
  const [f] = await transport.request(writer, PROTO.write, frame, { timeout_ms, max_response_bytes: 4096 });
  const a = parseJsonFrame<WriteAnswer>(f, 'write answer');
  if (!isCount(a?.commit_seq) || typeof a.commit_id !== 'string' || !/^[0-9a-f]{64}$/.test(a.commit_id))
    throw new FsmeshError('invalid_input', `writer ${writer} answered a malformed write acknowledgement`);
  return { commit_seq: a.commit_seq, commit_id: a.commit_id, deduplicated: a.deduplicated === true };
}

export async function requestShardStats(
  transport: Transport,
  peer: string,
  search: SearchOptions,
  read: ReadOptions,
  timeout_ms: number,
): Promise<ShardStatsAnswer> {
  const [f] = await transport.request(peer, PROTO.shard_query, jsonFrame({ phase: 'stats', search, read }), {
    timeout_ms,
    max_response_bytes: 1 << 20,
  });
  const a = parseJsonFrame<ShardStatsAnswer>(f, 'shard stats answer');
  if (
    typeof a?.generation_id !== 'string' ||
    !/^gen-\d{1,16}$/.test(a.generation_id) ||
    typeof a.artifact_manifest_id !== 'string' ||
    !/^[0-9a-f]{64}$/.test(a.artifact_manifest_id) ||
    !isCount(a.commit_seq_high)
  )
    throw new FsmeshError('invalid_input', `peer ${peer} answered malformed shard statistics`);
  // The record is checked for shape here; its signature and writer by whoever trusts it.
  const record = a.record === undefined ? undefined : decodeSignedRecord(jsonFrame(a.record));
  return {
    generation_id: a.generation_id,
    artifact_manifest_id: a.artifact_manifest_id,
    commit_seq_high: a.commit_seq_high,
    stats: checkLexicalStats(a.stats),
    ...(record ? { record } : {}),
  };
}

function checkList(v: unknown, max: number): ShardLists['lexical'] {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > max) return bad('a ranked list must be an array of at most k hits');
  return v.map((h) => {
    if (typeof h?.doc_id !== 'string' || typeof h.score !== 'number' || !Number.isFinite(h.score))
      bad('a ranked list entry must be {doc_id, score}');
    return { doc_id: h.doc_id as string, score: h.score as number };
  });
}

export async function requestShardLists(
  transport: Transport,
  peer: string,
  search: SearchOptions,
  generation_id: string,
  stats: LexicalStats,
  timeout_ms: number,
): Promise<ShardLists> {
  const [f] = await transport.request(
    peer,
    PROTO.shard_query,
    jsonFrame({ phase: 'lists', search, generation_id, stats }),
    { timeout_ms, max_response_bytes: 8 << 20 },
  );
  const a = parseJsonFrame<ShardLists>(f, 'shard lists answer');
  const max = 9 * Math.max(search.k ?? 10, 10) + 90; // deepest list a refined hybrid query asks for
  try {
    return {
      lexical: checkList(a?.lexical, max),
      vector: checkList(a?.vector, max),
      semantic: checkList(a?.semantic, max),
    };
  } catch (err) {
    throw new FsmeshError('invalid_input', `peer ${peer}: ${(err as Error).message}`);
  }
}
