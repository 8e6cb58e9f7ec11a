/**
 * Node runtime overhead (issue 6): ingest docs/s (durable acks) and query p50/p99 under a
 * concurrent ingest stream, through the HTTP API versus the same operations called on the
 * library engine directly, in the same run. Goal: HTTP/actor runtime costs <= 1.3x.
 *   node bench/http.ts [--docs 20000] [--batch 100] [--queries 400]
 */
import * as path from 'node:path';
import { composeNode } from '../src/compose/compose-node.ts';
import { defaultEngineConfig, LocalEngine } from '../src/engine/local-engine.ts';
import { nodeFsStorage, seededRandom, systemClock } from '../src/runtime/index.ts';
import { loadCorpus } from './corpus.ts';
import { arg, benchDir, nowMs, report, round, summarize } from './util.ts';

const N = arg('docs', 20_000);
const B = arg('batch', 100);
const Q = arg('queries', 400);
const docs = loadCorpus(50_000)
  .slice(0, N)
  .map((d) => ({ id: d.id, title: d.title, text: d.text }));
const queries = docs.slice(0, Q).map((d) => d.text.split(' ').slice(2, 4).join(' '));
const batches: (typeof docs)[] = [];
for (let i = 0; i < docs.length; i += B) batches.push(docs.slice(i, i + B));

// ---- library: LocalEngine directly ----
const lib = await LocalEngine.open(
  { clock: systemClock, random: seededRandom(1), storage: nodeFsStorage(benchDir('lib')) },
  defaultEngineConfig(),
);
let t = nowMs();
for (const b of batches)
  await lib.ingest(b.map((d) => ({ op: 'upsert' as const, doc_id: d.id, title: d.title, text: d.text })));
const libIngestMs = nowMs() - t;
await lib.buildAndActivate();
const libQ: number[] = [];
let stopLib = false;
const libChurn = (async () => {
  let i = 0;
  while (!stopLib) {
    await lib.ingest([{ op: 'upsert', doc_id: `x${i++}`, text: 'concurrent ingest stream' }]);
    if (i % 20 === 0) await lib.buildAndActivate();
  }
})();
for (const q of queries) {
  const s = nowMs();
  await lib.search({ q, k: 10, mode: 'hybrid' });
  libQ.push(nowMs() - s);
}
stopLib = true;
await libChurn;
await lib.close();

// ---- HTTP: node (actors) + HTTP server in this process, over loopback ----
const composed = await composeNode({
  node: {
    data_dir: path.join(benchDir('http'), 'd'),
    build: { batch_max_commits: 20, build_interval_ms: 50 },
  },
  http: {},
});
const node = composed.node;
const server = composed.http!;
t = nowMs();
for (const b of batches) {
  const r = await fetch(`${server.url}/v1/docs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(b),
  });
  if (r.status !== 200) throw new Error(await r.text());
  await r.arrayBuffer();
}
const httpIngestMs = nowMs() - t;
await node.buildNow();
const httpQ: number[] = [];
let stopHttp = false;
const httpChurn = (async () => {
  let i = 0;
  while (!stopHttp) {
    const r = await fetch(`${server.url}/v1/docs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ id: `x${i++}`, text: 'concurrent ingest stream' }]),
    });
    await r.arrayBuffer();
  }
})();
for (const q of queries) {
  const s = nowMs();
  const r = await fetch(`${server.url}/v1/search?q=${encodeURIComponent(q)}&k=10&mode=hybrid`);
  await r.arrayBuffer();
  httpQ.push(nowMs() - s);
}
stopHttp = true;
await httpChurn;
await server.close();
await node.stop();

const libS = summarize(libQ);
const httpS = summarize(httpQ);
report('http', {
  docs: N,
  batch: B,
  library: { ingest_docs_per_s: round((N / libIngestMs) * 1000, 0), query_under_ingest: libS },
  http: { ingest_docs_per_s: round((N / httpIngestMs) * 1000, 0), query_under_ingest: httpS },
  ratios: {
    ingest_time_http_over_library: round(httpIngestMs / libIngestMs, 2),
    query_p50_http_over_library: round(httpS.p50_ms / libS.p50_ms, 2),
    query_p99_http_over_library: round(httpS.p99_ms / libS.p99_ms, 2),
    goal: 1.3,
  },
});
