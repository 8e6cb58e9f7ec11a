/**
 * Node runtime overhead (issues 6 and 16): ingest docs/s (durable acks) and query latency through
 * the HTTP API of a real node process, against the same operations on the library engine in this
 * process, in the same run. Queries come from autocannon in a third process (bench/load/), first
 * on an idle node, then while a stream of single-document ingests keeps generations building and
 * activating (on the node's compute threads). Figures: HTTP/library ratios (goal ≤ 1.3× for
 * queries, ≤ 1.5× for ingest) and query p99 under activations / idle p99 (goal ≤ 1.5×).
 *   node bench/http.ts [--docs 20000] [--batch 100] [--queries 400] [--warmup-docs 4000]
 */
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultEngineConfig, LocalEngine } from '../src/engine/local-engine.ts';
import { nodeFsStorage, seededRandom, systemClock } from '../src/runtime/index.ts';
import { freeLoopbackPort } from '../src/runtime/loopback-port.ts';
import { loadCorpus } from './corpus.ts';
import { getJson, procs, rssOf, searchLoad, startNode, until } from './nodes.ts';
import { arg, benchDir, nowMs, report, round, summarize } from './util.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = arg('docs', 20_000);
const B = arg('batch', 100);
const Q = arg('queries', 400);
// Untimed ingest before every timed one, the same on both sides: a node is a long-running
// process, and the first requests of a fresh one measure its JIT (the first 20,000 documents took
// ~2× the later ones over HTTP, ~1.5× in the library). The query load warms up the same way.
const W = arg('warmup-docs', 4_000);
const all = loadCorpus(50_000)
  .slice(0, N + W)
  .map((d) => ({ id: d.id, title: d.title, text: d.text }));
const warmDocs = all.slice(N);
const docs = all.slice(0, N);
const queries = docs.slice(0, Q).map((d) => d.text.split(' ').slice(2, 4).join(' '));
const batchesOf = (ds: typeof docs) => {
  const out: (typeof docs)[] = [];
  for (let i = 0; i < ds.length; i += B) out.push(ds.slice(i, i + B));
  return out;
};
const batches = batchesOf(docs);
const warmBatches = batchesOf(warmDocs);
// One build once the warm-up and the bulk ingest are in, on both sides (the same generation
// shape: one segment with its graph), then one per BUILD_EVERY commits of the concurrent stream.
const BUILD_EVERY = warmBatches.length + batches.length;

/** POST every body over `connections` keep-alive connections; the wall time in ms. */
async function postAll(url: string, bodies: string[], connections: number): Promise<number> {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const post = (body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: '/v1/docs',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(Buffer.concat(chunks).toString())),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < bodies.length) await post(bodies[next++]);
    }),
  );
  const ms = nowMs() - t0;
  agent.destroy();
  return ms;
}

/** The library's durable appends with `callers` concurrent callers; the wall time in ms. */
async function libraryIngest(dir: string, callers: number): Promise<number> {
  const e = await LocalEngine.open(
    { clock: systemClock, random: seededRandom(1), storage: nodeFsStorage(benchDir(dir)) },
    defaultEngineConfig(),
  );
  const run = async (bs: (typeof docs)[]) => {
    let next = 0;
    const t0 = nowMs();
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (next < bs.length) await e.ingest(toOps(bs[next++]));
      }),
    );
    return nowMs() - t0;
  };
  await run(warmBatches);
  const ms = await run(batches);
  await e.close();
  return ms;
}

const toOps = (b: typeof docs) =>
  b.map((d) => ({ op: 'upsert' as const, doc_id: d.id, title: d.title, text: d.text }));

/** A concurrent ingest stream until stopped; returns how many commits it made. */
function churn(ingestOne: (i: number) => Promise<void>) {
  let stop = false;
  let n = 0;
  const done = (async () => {
    while (!stop) await ingestOne(n++);
  })();
  return async () => {
    stop = true;
    await done;
    return n;
  };
}

// ---- library: LocalEngine directly, in this process ----
const lib = await LocalEngine.open(
  { clock: systemClock, random: seededRandom(1), storage: nodeFsStorage(benchDir('lib')) },
  defaultEngineConfig(),
);
// Builds every BUILD_EVERY commits, as the node below is told to (--batch-max-commits): both sides
// query generations of the same shape. Ingest time counts the durable appends only.
for (const b of warmBatches) await lib.ingest(toOps(b));
let libIngestMs = 0;
for (const b of batches) {
  const t0 = nowMs();
  await lib.ingest(toOps(b));
  libIngestMs += nowMs() - t0;
}
await lib.buildAndActivate();
const libIdle: number[] = [];
for (const q of queries) {
  const s = nowMs();
  await lib.search({ q, k: 10, mode: 'hybrid' });
  libIdle.push(nowMs() - s);
}
const libQ: number[] = [];
const stopLib = churn(async (i) => {
  await lib.ingest([{ op: 'upsert', doc_id: `x${i}`, text: 'concurrent ingest stream' }]);
  if (i % BUILD_EVERY === BUILD_EVERY - 1) await lib.buildAndActivate();
});
for (const q of queries) {
  const s = nowMs();
  await lib.search({ q, k: 10, mode: 'hybrid' });
  libQ.push(nowMs() - s);
}
await stopLib();
await lib.close();

// ---- HTTP: a real node process; the load generator is another process ----
const node = await startNode([
  '--data',
  path.join(benchDir('http'), 'd'),
  '--http',
  `127.0.0.1:${await freeLoopbackPort()}`,
  '--batch-max-commits',
  String(BUILD_EVERY),
  // Size-triggered builds only, at the same commits as the library's.
  '--build-interval-ms',
  '600000',
]);
// Request bodies are serialized before the clock starts: a client's JSON encoding is not the
// server's cost.
const bodies = batches.map((b) => JSON.stringify(b));
const warmBodies = warmBatches.map((b) => JSON.stringify(b));
await postAll(node.url, warmBodies, 1);
const httpIngestMs = await postAll(node.url, bodies, 1);
const high = (await getJson(`${node.url}/v1/status`)).commit_seq_high;
await until(async () =>
  (await getJson(`${node.url}/v1/status`)).active_commit_seq_high >= high ? true : null,
);

const rssAfterIngest = rssOf(node.child.pid);
const load = (): Promise<any> => searchLoad(node.url, queries, { amount: Q });
const idle = await load();
// Steady: after the build and a query load, nothing running.
const rssSteady = rssOf(node.child.pid);
if (idle.non2xx > 0) throw new Error(`the node refused ${idle.non2xx} searches`);
const gen0 = (await getJson(`${node.url}/v1/status`)).generation_id;
const stopHttp = churn(async (i) => {
  const r = await fetch(`${node.url}/v1/docs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ id: `x${i}`, text: 'concurrent ingest stream' }]),
  });
  await r.arrayBuffer();
});
const busy = await load();
const commits = await stopHttp();
const rssAfterChurn = rssOf(node.child.pid);
const gen1 = (await getJson(`${node.url}/v1/status`)).generation_id;
// One real answer, for the bare server's query floor below (same bytes on the wire).
const sampleAnswer = await (
  await fetch(`${node.url}/v1/search?q=${encodeURIComponent(queries[0])}&k=10&mode=hybrid`)
).text();
node.child.kill('SIGTERM');

// ---- the same ingest with 4 connections (a fresh node) and 4 concurrent library callers ----
const node4 = await startNode([
  '--data',
  path.join(benchDir('http4'), 'd'),
  '--http',
  `127.0.0.1:${await freeLoopbackPort()}`,
  '--build-interval-ms',
  '600000',
  '--batch-max-commits',
  '100000',
]);
await postAll(node4.url, warmBodies, 4);
const http4Ms = await postAll(node4.url, bodies, 4);
node4.child.kill('SIGTERM');
const lib1Ms = await libraryIngest('lib-1', 1);
const lib4Ms = await libraryIngest('lib-4', 4);

// ---- the HTTP floors: a bare node:http server that only parses each body, and answers each
// search with a fixed real answer (bench/load/) ----
const bare = spawn(process.execPath, [path.join(here, 'load/bare-server.ts')], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
procs.push(bare);
bare.stdin!.end(sampleAnswer);
const barePort = await new Promise<number>((resolve) =>
  bare.stdout!.once('data', (d) => resolve(Number(String(d).trim()))),
);
await postAll(`http://127.0.0.1:${barePort}`, warmBodies, 1);
const bareMs = await postAll(`http://127.0.0.1:${barePort}`, bodies, 1);
const bare4Ms = await postAll(`http://127.0.0.1:${barePort}`, bodies, 4);
const bareQuery = await searchLoad(`http://127.0.0.1:${barePort}`, queries, { amount: Q });
bare.kill();

const libIdleS = summarize(libIdle);
const libS = summarize(libQ);
const genNo = (g: string) => Number(String(g).replace('gen-', ''));
report('http', {
  docs: N,
  batch: B,
  warmup_docs: W,
  library: {
    ingest_docs_per_s: round((N / libIngestMs) * 1000, 0),
    query_idle: libIdleS,
    query_under_ingest: libS,
  },
  ingest_ms: {
    library_1_caller: round(lib1Ms, 1),
    library_4_callers: round(lib4Ms, 1),
    http_4_connections: round(http4Ms, 1),
    bare_http_1_connection: round(bareMs, 1),
    bare_http_4_connections: round(bare4Ms, 1),
  },
  // The same load generator against the bare server answering a real search answer: the round
  // trip any HTTP query pays before searching.
  bare_http_query: { p50_ms: bareQuery.p50_ms, p99_ms: bareQuery.p99_ms, answer_bytes: sampleAnswer.length },
  http: {
    ingest_docs_per_s: round((N / httpIngestMs) * 1000, 0),
    query_idle: idle,
    query_under_ingest: busy,
    ingest_commits_during_queries: commits,
    activations_during_queries: genNo(gen1) - genNo(gen0),
    // The node process (/proc VmRSS; peak = VmHWM so far): after the bulk ingest and its build,
    // steady after the idle query load, and after the queries under ingest and activations.
    node_memory_mb: {
      after_ingest_and_build: rssAfterIngest,
      steady_after_queries: rssSteady,
      after_queries_under_ingest: rssAfterChurn,
    },
  },
  ratios: {
    ingest_time_http_over_library: round(httpIngestMs / libIngestMs, 2),
    // The same bodies to a server that only parses them: the part of the ratio any HTTP costs.
    ingest_time_bare_http_over_library: round(bareMs / libIngestMs, 2),
    ingest_time_http_minus_bare_over_library: round((httpIngestMs - bareMs) / libIngestMs, 2),
    // 4 connections against 4 concurrent library callers (fresh node, fresh engines).
    ingest_time_http_over_library_4_connections: round(http4Ms / lib4Ms, 2),
    query_p50_http_over_library: round(busy.p50_ms / libS.p50_ms, 2),
    // The floor of that ratio: the library's search plus a bare HTTP round trip.
    query_p50_library_plus_bare_http_over_library: round((libS.p50_ms + bareQuery.p50_ms) / libS.p50_ms, 2),
    query_p99_http_over_library: round(busy.p99_ms / libS.p99_ms, 2),
    http_query_p99_under_activations_over_idle: round(busy.p99_ms / idle.p99_ms, 2),
    library_query_p99_under_activations_over_idle: round(libS.p99_ms / libIdleS.p99_ms, 2),
    goals: { query: 1.3, ingest: 1.5, p99_under_activations: 1.5 },
  },
});
