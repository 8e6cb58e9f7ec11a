/**
 * Node runtime overhead (issues 6 and 16): ingest docs/s (durable acks) and query latency through
 * the HTTP API of a real node process, against the same operations on the library engine in this
 * process, in the same run. Queries come from autocannon in a third process (bench/load/), first
 * on an idle node, then while a stream of single-document ingests keeps generations building and
 * activating (on the node's compute threads). Figures: HTTP/library ratios (goal ≤ 1.3× for
 * queries, ≤ 1.5× for ingest) and query p99 under activations / idle p99 (goal ≤ 1.5×).
 *   node bench/http.ts [--docs 20000] [--batch 100] [--queries 400]
 */
import * as path from 'node:path';
import { defaultEngineConfig, LocalEngine } from '../src/engine/local-engine.ts';
import { nodeFsStorage, seededRandom, systemClock } from '../src/runtime/index.ts';
import { freeLoopbackPort } from '../src/runtime/loopback-port.ts';
import { loadCorpus } from './corpus.ts';
import { getJson, searchLoad, startNode, until } from './nodes.ts';
import { arg, benchDir, nowMs, report, round, summarize } from './util.ts';

const N = arg('docs', 20_000);
const B = arg('batch', 100);
const Q = arg('queries', 400);
// One build over the bulk ingest on both sides (the same generation shape: one segment with its
// graph), then one per BUILD_EVERY commits of the concurrent stream.
const BUILD_EVERY = Math.ceil(N / B);
const docs = loadCorpus(50_000)
  .slice(0, N)
  .map((d) => ({ id: d.id, title: d.title, text: d.text }));
const queries = docs.slice(0, Q).map((d) => d.text.split(' ').slice(2, 4).join(' '));
const batches: (typeof docs)[] = [];
for (let i = 0; i < docs.length; i += B) batches.push(docs.slice(i, i + B));

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
let libIngestMs = 0;
for (let i = 0; i < batches.length; i++) {
  const t0 = nowMs();
  await lib.ingest(
    batches[i].map((d) => ({ op: 'upsert' as const, doc_id: d.id, title: d.title, text: d.text })),
  );
  libIngestMs += nowMs() - t0;
  if ((i + 1) % BUILD_EVERY === 0) await lib.buildAndActivate();
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
const t = nowMs();
for (const b of batches) {
  const r = await fetch(`${node.url}/v1/docs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(b),
  });
  if (r.status !== 200) throw new Error(await r.text());
  await r.arrayBuffer();
}
const httpIngestMs = nowMs() - t;
const high = (await getJson(`${node.url}/v1/status`)).commit_seq_high;
await until(async () =>
  (await getJson(`${node.url}/v1/status`)).active_commit_seq_high >= high ? true : null,
);

const load = (): Promise<any> => searchLoad(node.url, queries, { amount: Q });
const idle = await load();
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
const gen1 = (await getJson(`${node.url}/v1/status`)).generation_id;
node.child.kill('SIGTERM');

const libIdleS = summarize(libIdle);
const libS = summarize(libQ);
const genNo = (g: string) => Number(String(g).replace('gen-', ''));
report('http', {
  docs: N,
  batch: B,
  library: {
    ingest_docs_per_s: round((N / libIngestMs) * 1000, 0),
    query_idle: libIdleS,
    query_under_ingest: libS,
  },
  http: {
    ingest_docs_per_s: round((N / httpIngestMs) * 1000, 0),
    query_idle: idle,
    query_under_ingest: busy,
    ingest_commits_during_queries: commits,
    activations_during_queries: genNo(gen1) - genNo(gen0),
  },
  ratios: {
    ingest_time_http_over_library: round(httpIngestMs / libIngestMs, 2),
    query_p50_http_over_library: round(busy.p50_ms / libS.p50_ms, 2),
    query_p99_http_over_library: round(busy.p99_ms / libS.p99_ms, 2),
    http_query_p99_under_activations_over_idle: round(busy.p99_ms / idle.p99_ms, 2),
    library_query_p99_under_activations_over_idle: round(libS.p99_ms / libIdleS.p99_ms, 2),
    goals: { query: 1.3, ingest: 1.5, p99_under_activations: 1.5 },
  },
});
