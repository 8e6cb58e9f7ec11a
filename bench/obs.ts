/**
 * Observability overhead (issue 9): query and ingest throughput through a node with tracing on
 * (OpenTelemetry SDK, batch processor, in-memory exporter) versus off (the API's no-op tracer), in
 * the same run; plus the cost of the per-query metric updates measured directly against the query
 * time. Goal: overhead <= 5 %.
 *   node bench/obs.ts [--docs 20000] [--queries 2000]
 */
import * as path from 'node:path';
import { trace } from '@opentelemetry/api';
import { composeNode } from '../src/compose/compose-node.ts';
import { NodeMetrics } from '../src/obs/metrics.ts';
import { loadCorpus } from './corpus.ts';
import { arg, benchDir, nowMs, report, round } from './util.ts';

const N = arg('docs', 20_000);
const Q = arg('queries', 2000);
const docs = loadCorpus(50_000)
  .slice(0, N)
  .map((d) => ({ id: d.id, title: d.title, text: d.text }));
const queries = Array.from({ length: Q }, (_, i) =>
  docs[(i * 7919) % docs.length].text.split(' ').slice(1, 3).join(' '),
);

async function run(label: string) {
  const { node } = await composeNode({
    node: {
      data_dir: path.join(benchDir(`obs-${label}`), 'd'),
      build: { batch_max_commits: 100_000, build_interval_ms: 3_600_000 },
    },
  });
  let t = nowMs();
  for (let i = 0; i < docs.length; i += 200) await node.ingest(docs.slice(i, i + 200));
  const ingestMs = nowMs() - t;
  await node.buildNow();
  for (const q of queries.slice(0, 100)) await node.search({ q, mode: 'lexical' });
  t = nowMs();
  for (const q of queries) await node.search({ q, mode: 'lexical' });
  const queryMs = nowMs() - t;
  await node.stop();
  return { ingest_docs_per_s: (N / ingestMs) * 1000, queries_per_s: (Q / queryMs) * 1000 };
}

// Alternate off/on twice and keep the best of each, to damp noise on a shared machine.
const off1 = await run('off');
const { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } = await import(
  '@opentelemetry/sdk-trace-base'
);
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 100_000 })],
});
trace.setGlobalTracerProvider(provider);
const on1 = await run('on');
trace.disable();
const off2 = await run('off');
trace.setGlobalTracerProvider(provider);
const on2 = await run('on');
await provider.forceFlush();
const spans = exporter.getFinishedSpans().length;
await provider.shutdown();
const best = (a: number, b: number) => Math.max(a, b);
const off = {
  ingest: best(off1.ingest_docs_per_s, off2.ingest_docs_per_s),
  query: best(off1.queries_per_s, off2.queries_per_s),
};
const on = {
  ingest: best(on1.ingest_docs_per_s, on2.ingest_docs_per_s),
  query: best(on1.queries_per_s, on2.queries_per_s),
};

// Per-query metric updates (latency histogram + skew histogram), timed directly.
const m = new NodeMetrics({ node: 'bench', shard: 'default' });
const t = nowMs();
for (let i = 0; i < 200_000; i++) {
  m.query_latency_ms.observe({ mode: 'latest' }, 0.3);
  m.query_generation_skew.observe(0);
}
const metricUsPerQuery = ((nowMs() - t) / 200_000) * 1000;
const queryUs = 1e6 / off.query;

report('obs', {
  docs: N,
  queries: Q,
  tracing_off: { ingest_docs_per_s: round(off.ingest, 0), queries_per_s: round(off.query, 0) },
  tracing_on: {
    ingest_docs_per_s: round(on.ingest, 0),
    queries_per_s: round(on.query, 0),
    spans_exported: spans,
  },
  overhead: {
    tracing_query_pct: round((1 - on.query / off.query) * 100, 2),
    tracing_ingest_pct: round((1 - on.ingest / off.ingest) * 100, 2),
    metrics_us_per_query: round(metricUsPerQuery, 3),
    metrics_query_pct: round((metricUsPerQuery / queryUs) * 100, 2),
    goal_pct: 5,
  },
});
