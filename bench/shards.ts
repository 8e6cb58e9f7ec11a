/**
 * One shard vs three (issue: multi-shard), real processes on 127.0.0.1, the same corpus:
 *  - A: one shard over three nodes (a writer and two replicas);
 *  - B: three shards over three nodes (`--shards 3`, each node the writer of one).
 * For each: ingest through node 0 in batches of 2,000 — half of the corpus one batch at a time,
 * half with four batches in flight (docs/s until acknowledged; then the time until every node
 * serves everything: a strict read with the write token), query latency on node 1
 * from a load generator in its own process (bench/load/search-load.ts: p50/p99 sequential, then
 * autocannon), and the bootstrap of a fourth, empty node until it serves all of it.
 * Prints one JSON line with both setups and the ratios B / A.
 *   node bench/shards.ts [--docs 20000] [--queries 400]
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { freeLoopbackPort } from '../src/runtime/loopback-port.ts';
import { type CorpusDoc, loadCorpus } from './corpus.ts';
import { getJson, procs, searchLoad, startNode, until } from './nodes.ts';
import { arg, benchDir, nowMs, report, round } from './util.ts';

const N = arg('docs', 20_000);
const Q = arg('queries', 400);
const BATCH = 2000;

interface Node {
  url: string;
  ready: any;
}

async function nodeId(dir: string): Promise<string> {
  const child = spawn(process.execPath, [path.resolve('bin/fsmesh.js'), 'node', 'id', '--data', dir]);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((r) => child.on('exit', r));
  return JSON.parse(out).peer_id;
}

/** Three nodes; `sharded`: `--shards 3`, node i writes shard i; else node 0 writes, 1 and 2 replicate. */
async function cluster(root: string, sharded: boolean): Promise<{ nodes: Node[]; seeds: string[] }> {
  const dirs = [0, 1, 2].map((i) => path.join(root, `n${i}`));
  const ids = await Promise.all(dirs.map(nodeId));
  const ports = await Promise.all(dirs.map(() => freeLoopbackPort()));
  const addr = (j: number) => `/ip4/127.0.0.1/tcp/${ports[j]}/p2p/${ids[j]}`;
  const nodes = await Promise.all(
    dirs.map(async (dir, i) =>
      startNode([
        '--data',
        dir,
        '--http',
        `127.0.0.1:${await freeLoopbackPort()}`,
        '--listen',
        `/ip4/127.0.0.1/tcp/${ports[i]}`,
        ...[0, 1, 2].filter((j) => j !== i).flatMap((j) => ['--seed', addr(j)]),
        ...(sharded
          ? ['--shards', '3', '--writer-of', String(i)]
          : ['--role', i === 0 ? 'writer' : 'replica']),
        '--batch-max-commits',
        '4',
        '--build-interval-ms',
        '500',
      ]),
    ),
  );
  if (sharded)
    for (const n of nodes)
      await until(async () => {
        const st = await getJson(`${n.url}/v1/status`);
        return Object.values(st.shards).every((x: any) => typeof x.writer === 'string') ? true : null;
      }, 60_000);
  else
    await until(
      async () => ((await getJson(`${nodes[0].url}/v1/status`)).peers.length >= 2 ? true : null),
      60_000,
    );
  return { nodes, seeds: [0, 1, 2].map(addr) };
}

/** The read that waits for a write to be visible: a write token (sharded) or a commit_seq. */
function strictParams(token: unknown, sharded: boolean): string {
  return sharded ? `min_commit_seqs=${encodeURIComponent(JSON.stringify(token))}` : `min_commit_seq=${token}`;
}

async function visibleEverywhere(nodes: Node[], token: unknown, sharded: boolean): Promise<void> {
  for (const n of nodes)
    await until(async () => {
      const r = await fetch(
        `${n.url}/v1/search?q=the&k=1&mode=lexical&timeout_ms=30000&${strictParams(token, sharded)}`,
      );
      await r.arrayBuffer();
      return r.status === 200 ? true : null;
    }, 1_800_000);
}

/** Batches of BATCH documents, `inflight` at a time (a client that pipelines, as `fsmesh ingest` does). */
async function ingest(n: Node, docs: CorpusDoc[], sharded: boolean, inflight: number) {
  const t0 = nowMs();
  const token: Record<string, number> = {};
  let seq = 0;
  let next = 0;
  const worker = async () => {
    for (let i = next; i < docs.length; i = next) {
      next += BATCH;
      const r = await getJson(`${n.url}/v1/docs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(docs.slice(i, i + BATCH)),
      });
      if (r.error) throw new Error(`ingest: ${r.error.message}`);
      if (sharded)
        for (const [k, v] of Object.entries(r.commit_seqs as Record<string, number>))
          token[k] = Math.max(token[k] ?? 0, v);
      else seq = Math.max(seq, r.commit_seq);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return { acked_ms: nowMs() - t0, token: sharded ? token : seq };
}

/** A fourth node, empty, seeded with the three: time until it serves every shard's head. */
async function bootstrap(root: string, seeds: string[], sharded: boolean, token: unknown): Promise<number> {
  const t0 = nowMs();
  const n = await startNode([
    '--data',
    path.join(root, 'new'),
    '--http',
    `127.0.0.1:${await freeLoopbackPort()}`,
    '--listen',
    `/ip4/127.0.0.1/tcp/${await freeLoopbackPort()}`,
    ...seeds.flatMap((s) => ['--seed', s]),
    ...(sharded ? ['--shards', '3'] : ['--role', 'replica']),
  ]);
  await visibleEverywhere([n], token, sharded);
  return nowMs() - t0;
}

async function setup(docs: CorpusDoc[], queries: string[], sharded: boolean) {
  const root = benchDir(sharded ? 'shards3' : 'shards1');
  const { nodes, seeds } = await cluster(root, sharded);
  // Half the corpus one batch at a time (latency-bound), the other half four batches in flight.
  const half = Math.floor(docs.length / 2 / BATCH) * BATCH;
  const seqW = await ingest(nodes[0], docs.slice(0, half), sharded, 1);
  const t0 = nowMs();
  const w = await ingest(nodes[0], docs.slice(half), sharded, 4);
  await visibleEverywhere(nodes, w.token, sharded);
  const visibleMs = nowMs() - t0;
  const q = await searchLoad(nodes[1].url, queries, { amount: Q, mode: 'lexical' });
  const bootMs = await bootstrap(root, seeds, sharded, w.token);
  return {
    ingest_docs_per_s: Math.round((docs.length - half) / (w.acked_ms / 1000)),
    ingest_sequential_docs_per_s: Math.round(half / (seqW.acked_ms / 1000)),
    visible_everywhere_s: round(visibleMs / 1000, 2),
    query_p50_ms: q.p50_ms,
    query_p99_ms: q.p99_ms,
    query_req_per_s: q.autocannon.req_per_s,
    non2xx: q.non2xx,
    bootstrap_s: round(bootMs / 1000, 2),
  };
}

try {
  const docs = loadCorpus(N);
  const words = docs.slice(0, 200).flatMap((d) =>
    d.text
      .split(/\W+/)
      .filter((t) => t.length > 4)
      .slice(0, 3),
  );
  const queries = Array.from(
    { length: 200 },
    (_, i) => `${words[i % words.length]} ${words[(i * 7 + 3) % words.length]}`,
  );
  const one = await setup(docs, queries, false);
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  const three = await setup(docs, queries, true);
  report('shards', {
    docs: docs.length,
    one_shard: one,
    three_shards: three,
    ratio_three_to_one: {
      ingest_docs_per_s: round(three.ingest_docs_per_s / one.ingest_docs_per_s, 2),
      ingest_sequential_docs_per_s: round(
        three.ingest_sequential_docs_per_s / one.ingest_sequential_docs_per_s,
        2,
      ),
      visible_everywhere: round(three.visible_everywhere_s / one.visible_everywhere_s, 2),
      query_p50: round(three.query_p50_ms / one.query_p50_ms, 2),
      query_p99: round(three.query_p99_ms / one.query_p99_ms, 2),
      bootstrap: round(three.bootstrap_s / one.bootstrap_s, 2),
    },
  });
} finally {
  for (const p of procs) p.kill('SIGKILL');
}
