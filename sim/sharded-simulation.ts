/**
 * Deterministic simulation of a multi-shard collection (docs/sharding.md, docs/simulation.md):
 * N nodes, S shards, node i the writer of shard i (i < S), every node replicating every shard,
 * all over the simulated network, disks and clock through the production composition
 * (`composeShardedNode`). A seeded workload writes through random nodes and reads in every mode —
 * latest, strict with the last write token, and again on the snapshot of an earlier answer — while
 * nodes crash and restart, links partition and messages drop. Invariants:
 *   - snapshot_reads_repeat: the same snapshot (and query) always gives the same hits;
 *   - answer_is_its_snapshot: an answer equals the merge computed from exactly the generations it
 *     names, read from each shard's writer (so no answer mixes two generations of one shard);
 *   - answers_name_signed_generations: each named generation is one its shard's writer activated;
 *   - strict_read_respects_write_token: every shard's answer covers the token's commit;
 *   - acknowledged_commits_never_lost (per shard) and shards_converge (liveness, after faults).
 * Same seed, same trace hash.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { type ComposedShardedNode, composeShardedNode } from '../src/compose/compose-sharded-node.ts';
import { shardName } from '../src/core/sharding.ts';
import { peerIdOf } from '../src/p2p/identity.ts';
import { type Random, seededRandom } from '../src/runtime/index.ts';
import { sumLexicalStats } from '../src/search/lexical/scoring.ts';
import { mergeShardLists } from '../src/search/multi-shard.ts';
import type { ShardedSearchResult } from '../src/shards/shard-set.ts';
import { NodeClock, VirtualClock } from './clock.ts';
import { SimDisk } from './disk.ts';
import { driver, RunLog, SIM_NODE, type SimResult, settle, type Violation } from './harness.ts';
import { SimNetwork } from './network.ts';

export const SHARDED_FAULTS = ['crash', 'partition', 'drop'] as const;
export type ShardedFault = (typeof SHARDED_FAULTS)[number];

export interface ShardedSimConfig {
  seed: number;
  nodes: number;
  shards: number;
  steps: number;
  faults: ShardedFault[];
  /** Nodes beyond the S writers carry one shard only (`--replicate-shards`), following the others. */
  narrow?: boolean;
  step_ms?: number;
  quiet_ms?: number;
}

interface Slot {
  name: string;
  key: PrivateKey;
  peer_id: string;
  disk: SimDisk;
  writer_of: number | null;
  replicate: number[] | undefined;
  n: ComposedShardedNode | null;
  down_until: number | null;
}

const QUERIES = ['rivers', 'hills number 3', 'lakes roads', 'towns', 'document 12', 'number 5 rivers'];

// Length: one closure holds the run's state (slots, clock, invariants); its phases are the
// functions inside it.
export async function runShardedSimulation(cfg: ShardedSimConfig): Promise<SimResult> {
  if (cfg.nodes < cfg.shards) throw new Error('a sharded simulation needs a node per shard writer');
  const rng: Random = seededRandom(cfg.seed);
  const clock = new VirtualClock();
  const net = new SimNetwork(clock, rng.fork());
  const stepMs = cfg.step_ms ?? 50;
  const run = new RunLog(clock);
  const stats: Record<string, number> = {
    ingests: 0,
    acked: 0,
    partial: 0,
    queries: 0,
    query_errors: 0,
    snapshot_reads: 0,
    crashes: 0,
    partitions: 0,
    reference_checks: 0,
  };
  const log = (s: string) => run.log(s);
  const violate = (kind: Violation['kind'], invariant: string, detail: string) =>
    run.violate(kind, invariant, detail);
  const has = (f: ShardedFault) => cfg.faults.includes(f);

  const drive = driver(clock);

  const slots: Slot[] = [];
  // Its own stream: narrowing moves no other random draw of a seed.
  const narrowRng = seededRandom(cfg.seed ^ 0x5a4d);
  for (let i = 0; i < cfg.nodes; i++) {
    const key = await generateKeyPairFromSeed('Ed25519', rng.bytes(32));
    const disk = new SimDisk(rng.fork());
    disk.sleep = (ms) => clock.sleep(ms);
    slots.push({
      name: `node-${i}`,
      key,
      peer_id: peerIdOf(key),
      disk,
      writer_of: i < cfg.shards ? i : null,
      // Nodes beyond the writers carry one shard each when narrowed (--replicate-shards K).
      replicate: cfg.narrow && i >= cfg.shards ? [narrowRng.int(cfg.shards)] : undefined,
      n: null,
      down_until: null,
    });
  }
  const ackedMax = new Array<number>(cfg.shards).fill(0);
  /** Generations each shard's writer activated: shard -> generation_id -> manifest id. */
  const signed = Array.from({ length: cfg.shards }, () => new Map<string, string>());
  const answers = new Map<string, string>();
  const snapshots: string[] = [];
  let lastToken: Record<string, number> | null = null;

  async function boot(s: Slot): Promise<void> {
    const n = await composeShardedNode({
      shards: cfg.shards,
      writer_of: s.writer_of,
      ...(s.replicate ? { replicate: s.replicate } : {}),
      node: {
        node_name: s.name,
        runtime: { clock: new NodeClock(clock), random: rng.fork(), storage: s.disk.mount() },
        ...SIM_NODE,
      },
      cluster: {
        transport: net.transport(s.peer_id),
        private_key: s.key,
        cluster: 'sim',
        members: cfg.nodes,
        member_ids: slots.filter((x) => x !== s).map((x) => x.peer_id),
        // Every writer is a seed of every node: each shard's writer is trusted on first use.
        seeds: slots.filter((x) => x !== s).map((x) => `/sim/${x.peer_id}/p2p/${x.peer_id}`),
        lag_alert_commits: 1000,
        announce_interval_ms: 200,
        quorum_timeout_ms: 5000,
      },
    });
    for (const { shard: k, node } of n.set.localShards()) {
      const c = { node };
      c.node.events.on((e) => {
        if (e.event !== 'generation_activation_succeeded') return;
        if (k === s.writer_of) signed[k].set(String(e.generation_id), String(e.artifact_manifest_id));
        log(`${s.name} shard ${k} activated ${e.generation_id}`);
      });
      if (k === s.writer_of && c.node.engine.log.commitSeqHigh < ackedMax[k])
        violate(
          'safety',
          'acknowledged_commits_never_lost',
          `${s.name} shard ${k} restarted with log ${c.node.engine.log.commitSeqHigh} < acknowledged ${ackedMax[k]}`,
        );
      // What the writer activated before a restart is still signed (it is in its store).
      if (k === s.writer_of)
        for (const r of c.node.engine.generations.retained)
          signed[k].set(r.generation_id, r.artifact_manifest_id);
    }
    s.n = n;
    s.down_until = null;
    log(`${s.name} up`);
  }

  async function crash(s: Slot): Promise<void> {
    if (!s.n) return;
    const n = s.n;
    s.n = null;
    s.disk.crash(rng.next() < 0.5);
    void n.stop().catch(() => {});
    await settle();
    s.down_until = clock.nowMs() + 500 + rng.int(2500);
    stats.crashes++;
    log(`${s.name} crash`);
  }

  for (const s of slots) await drive(boot(s));

  let docCounter = 0;
  const pending: Promise<unknown>[] = [];
  const up = () => slots.filter((s) => s.n !== null);
  const docText = (i: number) =>
    `simulated document ${i} about ${['rivers', 'hills', 'lakes', 'roads', 'towns'][i % 5]} number ${i % 17}`;

  function ingest(s: Slot): void {
    const docs = Array.from({ length: 1 + rng.int(6) }, () => {
      const i = rng.next() < 0.2 && docCounter > 0 ? rng.int(docCounter) : docCounter++;
      return rng.next() < 0.1
        ? { id: `d${i}`, delete: true as const }
        : { id: `d${i}`, text: docText(i + rng.int(3)) };
    });
    stats.ingests++;
    const key = `k${stats.ingests}`;
    pending.push(
      s.n!.set.ingest(docs, { idempotency_key: key }).then(
        (ack) => {
          stats.acked++;
          for (const [k, seq] of Object.entries(ack.commit_seqs))
            ackedMax[Number(k)] = Math.max(ackedMax[Number(k)], seq);
          lastToken = ack.commit_seqs;
          log(`${s.name} ingest ${key} -> ${JSON.stringify(ack.commit_seqs)}`);
        },
        (err) => {
          const e = err as { code?: string; details?: { commit_seqs?: Record<string, number> } };
          if (e.code === 'partial_commit') {
            stats.partial++;
            for (const [k, seq] of Object.entries(e.details?.commit_seqs ?? {}))
              ackedMax[Number(k)] = Math.max(ackedMax[Number(k)], seq);
          }
          log(`${s.name} ingest ${key} failed: ${e.code} ${String((err as Error).message).slice(0, 120)}`);
        },
      ),
    );
  }

  /** The answer recomputed from exactly the generations it names, on each shard's writer. */
  async function reference(
    r: ShardedSearchResult,
    search: { q: string; k: number; mode: 'lexical' | 'hybrid' },
  ) {
    const engines =
      r.snapshot && Object.keys(r.snapshot).map((k) => slots[Number(k)].n?.set.shard(Number(k)).node.engine);
    if (!engines || engines.some((e) => !e)) return null;
    const ids = Object.values(r.snapshot);
    try {
      const shares = await Promise.all(
        engines.map((e, k) =>
          ids[k] === 'none' ? null : e!.shardStats({ ...search, generation_id: ids[k] }),
        ),
      );
      const stats = sumLexicalStats(shares.map((x) => x?.stats ?? { live_docs: 0, len_sum: 0, df: {} }));
      const lists = await Promise.all(
        engines.map((e, k) =>
          ids[k] === 'none' ? {} : e!.shardLists({ ...search, generation_id: ids[k] }, stats),
        ),
      );
      return mergeShardLists(lists, search, engines[0]!.config.embedder, undefined).hits;
    } catch {
      return null; // a generation the writer no longer retains: nothing to compare with
    }
  }

  /** Did shard k's writer activate this generation (seen by its events, or in its store now)? */
  function isSigned(k: number, g: string, manifest: string): boolean {
    if (signed[k].get(g) === manifest) return true;
    const w = slots[k].n?.set.shard(k).node.engine.generations;
    return !!w?.retained.some((r) => r.generation_id === g && r.artifact_manifest_id === manifest);
  }

  function checkAnswer(
    s: Slot,
    r: ShardedSearchResult,
    search: { q: string; k: number; mode: 'lexical' | 'hybrid' },
    token: Record<string, number> | null,
  ) {
    const snap = JSON.stringify(r.snapshot);
    for (const [k, g] of Object.entries(r.snapshot)) {
      if (g === 'none') continue;
      if (r.shards[k].generation_id !== g)
        violate(
          'safety',
          'answer_is_its_snapshot',
          `${s.name} shard ${k} answered ${r.shards[k].generation_id}, named ${g}`,
        );
      if (!isSigned(Number(k), g, r.shards[k].artifact_manifest_id))
        violate(
          'safety',
          'answers_name_signed_generations',
          `${s.name} named shard ${k} ${g}, never activated by its writer`,
        );
    }
    if (token)
      for (const [k, seq] of Object.entries(token))
        if (r.shards[k].commit_seq_high < seq)
          violate(
            'safety',
            'strict_read_respects_write_token',
            `${s.name} shard ${k} answered at ${r.shards[k].commit_seq_high} < token ${seq}`,
          );
    const key = `${snap}|${search.q}|${search.mode}|${search.k}`;
    const hits = JSON.stringify(r.hits.map((h) => [h.doc_id, Number(h.score.toFixed(9))]));
    const before = answers.get(key);
    if (before === undefined) answers.set(key, hits);
    else if (before !== hits)
      violate('safety', 'snapshot_reads_repeat', `${s.name} ${key}: ${hits} != ${before}`);
    if (snapshots.length < 64 && !snapshots.includes(snap)) snapshots.push(snap);
    pending.push(
      reference(r, search).then((ref) => {
        if (!ref) return;
        stats.reference_checks++;
        const want = JSON.stringify(ref.map((h) => [h.doc_id, Number(h.score.toFixed(9))]));
        if (want !== hits)
          violate(
            'safety',
            'answer_is_its_snapshot',
            `${s.name} ${key}: ${hits} != merge of its generations ${want}`,
          );
      }),
    );
  }

  function query(s: Slot): void {
    const search = {
      q: QUERIES[rng.int(QUERIES.length)],
      k: 1 + rng.int(8),
      mode: rng.next() < 0.7 ? ('lexical' as const) : ('hybrid' as const),
    };
    const kind = rng.int(3);
    const token = kind === 1 ? lastToken : null;
    const snapshot =
      kind === 2 && snapshots.length ? JSON.parse(snapshots[rng.int(snapshots.length)]) : undefined;
    stats.queries++;
    if (snapshot) stats.snapshot_reads++;
    pending.push(
      s
        .n!.set.search({
          ...search,
          ...(token ? { min_commit_seqs: token, timeout_ms: 2000 } : {}),
          ...(snapshot ? { snapshot } : {}),
        })
        .then(
          (r) => checkAnswer(s, r, search, token),
          (err) => {
            stats.query_errors++;
            log(
              `${s.name} query failed: ${(err as { code?: string }).code} ${String((err as Error).message).slice(0, 120)}`,
            );
          },
        ),
    );
  }

  function fault(): void {
    const roll = rng.int(3);
    if (roll === 0 && has('crash') && up().length > 1) pending.push(crash(up()[rng.int(up().length)]));
    else if (roll === 1 && has('partition')) {
      const a = slots[rng.int(slots.length)];
      const b = slots[rng.int(slots.length)];
      if (a !== b) {
        net.partition(a.peer_id, b.peer_id);
        stats.partitions++;
        log(`partition ${a.name} ${b.name}`);
        clock.setTimeout(() => {
          net.heal();
          log('heal');
        }, 500 + rng.int(2000));
      }
    } else if (roll === 2 && has('drop')) net.faults.drop = rng.next() < 0.5 ? 0.05 : 0;
  }

  for (let step = 0; step < cfg.steps; step++) {
    for (const s of slots)
      if (!s.n && s.down_until !== null && clock.nowMs() >= s.down_until) await drive(boot(s));
    const live = up();
    if (live.length) {
      const s = live[rng.int(live.length)];
      const r = rng.next();
      if (r < 0.45) ingest(s);
      else if (r < 0.9) query(s);
      else fault();
    }
    await drive(clock.sleep(stepMs));
  }
  // Faults stop: every node comes back, the network heals, writes drain, shards converge.
  net.heal();
  net.faults.drop = 0;
  for (const s of slots) if (!s.n) await drive(boot(s));
  await drive(Promise.allSettled(pending), 60_000);
  const converged = () =>
    slots.every((s) =>
      s.n?.set
        .localShards()
        .every(({ shard: k, node }) => (node.engine.generations.active?.commit_seq_high ?? 0) >= ackedMax[k]),
    );
  const quietEnd = clock.nowMs() + (cfg.quiet_ms ?? 30_000);
  while (clock.nowMs() < quietEnd && !converged()) {
    if (!clock.step(quietEnd)) break;
    await settle();
  }
  if (!converged())
    violate(
      'liveness',
      'shards_converge',
      `acked ${JSON.stringify(ackedMax)}; ${slots
        .map(
          (s) =>
            `${s.name}=${s.n?.set
              .localShards()
              .map(({ shard, node }) => `${shard}:${node.engine.generations.active?.commit_seq_high ?? 0}`)
              .join('/')}`,
        )
        .join(' ')}`,
    );
  for (let k = 0; k < cfg.shards; k++) {
    const w = slots[k].n!.set.shard(k).node.engine.log;
    if (w.commitSeqHigh < ackedMax[k])
      violate(
        'safety',
        'acknowledged_commits_never_lost',
        `shard ${shardName(k)} writer log ${w.commitSeqHigh} < acknowledged ${ackedMax[k]}`,
      );
  }
  for (const s of slots) if (s.n) await drive(s.n.stop());
  stats.virtual_ms = clock.nowMs() - 1_700_000_000_000;
  stats.messages = net.messages;
  return run.result(cfg.seed, cfg.steps, stats);
}
