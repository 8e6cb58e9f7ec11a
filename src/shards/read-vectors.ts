/**
 * Read options of a multi-shard query (docs/sharding.md), one value per shard:
 *   snapshot         {"<shard>": "gen-N", ...} for every shard: exactly those generations again
 *   min_commit_seqs  a write token {"<shard>": commit_seq, ...}: strict read, per named shard
 *   as_of_commit_seq {"<shard>": commit_seq, ...}: time travel, per named shard
 * Every problem is named; nothing is guessed (commit sequences of different shards are unrelated,
 * so a single number is not accepted where a vector is meant).
 */
import { FsmeshError } from '../core/errors.ts';
import { checkShardIndex } from '../core/sharding.ts';
import type { ReadOptions } from '../engine/local-engine.ts';
import { checkStrictRead } from '../engine/read-path.ts';
import type { SearchOptions } from '../search/searcher.ts';

export interface ShardReadVector {
  snapshot?: Record<string, string>;
  min_commit_seqs?: Record<string, number>;
  as_of_commit_seq?: Record<string, number>;
  timeout_ms?: number;
}

const bad = (m: string): never => {
  throw new FsmeshError('invalid_input', m);
};

/** A `{"<shard>": value}` object with valid shard keys (or an error naming `what`). */
function vectorOf<T>(
  v: unknown,
  shards: number,
  what: string,
  check: (x: unknown) => x is T,
): Map<number, T> {
  if (!v || typeof v !== 'object' || Array.isArray(v))
    return bad(
      `${what}: expected a JSON object {"<shard>": value, ...}, got ${JSON.stringify(v)?.slice(0, 80)}`,
    );
  const out = new Map<number, T>();
  for (const [key, x] of Object.entries(v as Record<string, unknown>)) {
    const k = checkShardIndex(key, shards, `${what} key`);
    if (!check(x)) bad(`${what}["${key}"]: unexpected value ${JSON.stringify(x)?.slice(0, 80)}`);
    out.set(k, x as T);
  }
  return out;
}

const isSeq = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
/** The snapshot entry of a shard that had no generation yet: it reads as empty again. */
export const EMPTY_SHARD = 'none';

const isGen = (x: unknown): x is string =>
  typeof x === 'string' && (x === EMPTY_SHARD || /^gen-[1-9]\d{0,15}$/.test(x));

/** The search options and each shard's read options. */
export function shardReadOptions(
  o: SearchOptions & ShardReadVector & { min_commit_seq?: unknown },
  shards: number,
): { search: SearchOptions; perShard: ReadOptions[] } {
  checkStrictRead(0, o.timeout_ms); // the bound on timeout_ms, before any shard waits by it
  if (o.min_commit_seq !== undefined)
    bad('min_commit_seq: a multi-shard read takes min_commit_seqs, the write token {"<shard>": commit_seq}');
  if (typeof o.as_of_commit_seq === 'number')
    bad('as_of_commit_seq: a multi-shard read takes a vector {"<shard>": commit_seq}');
  const perShard: ReadOptions[] = Array.from({ length: shards }, () => ({}));
  if (o.snapshot !== undefined) {
    if (o.min_commit_seqs !== undefined || o.as_of_commit_seq !== undefined)
      bad('snapshot cannot be combined with min_commit_seqs or as_of_commit_seq');
    const snap = vectorOf(o.snapshot, shards, 'snapshot', isGen);
    if (snap.size !== shards) bad(`snapshot: must name a generation for each of the ${shards} shards`);
    for (const [k, g] of snap) perShard[k].generation_id = g;
  }
  if (o.min_commit_seqs !== undefined)
    for (const [k, seq] of vectorOf(o.min_commit_seqs, shards, 'min_commit_seqs', isSeq)) {
      perShard[k].min_commit_seq = seq;
      if (o.timeout_ms !== undefined) perShard[k].timeout_ms = o.timeout_ms;
    }
  if (o.as_of_commit_seq !== undefined)
    for (const [k, seq] of vectorOf(o.as_of_commit_seq, shards, 'as_of_commit_seq', isSeq)) {
      if (perShard[k].min_commit_seq !== undefined)
        bad(`shard ${k}: as_of_commit_seq and min_commit_seqs cannot be combined`);
      perShard[k].as_of_commit_seq = seq;
    }
  return { search: { q: o.q, k: o.k, mode: o.mode, tier: o.tier, rrf_k: o.rrf_k }, perShard };
}
