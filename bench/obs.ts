/**
 * Observability overhead (issue 9): query and ingest throughput through a node with tracing on
 * (OpenTelemetry SDK, batch processor, in-memory exporter) versus off (the API's no-op tracer), in
 * the same run; plus the cost of the per-query metric updates measured directly against the query
 * time. Goal: overhead <= 5 %.
 *   node bench/obs.ts [--docs 20000] [--queries 2000] [--rounds 5]
 */
import * as path from 'node:path';
import { trace } from '@opentelemetry/api';
import { composeNode } from '../src/compose/compose-node.ts';
import { NodeMetrics } from '../src/obs/metrics.ts';
import { DEFAULT_OTLP_QUERY_SAMPLE_RATIO, setQuerySampleRatio } from '../src/obs/tracing.ts';
import { loadCorpus } from './corpus.ts';
import { arg, benchDir, nowMs, report, round } from './util.ts';

const N = arg('docs', 20_000);
const Q = arg('queries', 2000);
const ROUNDS = arg('rounds', 5);
const docs = loadCorpus(50_000)
  .slice(0, N)
  .map((d) => ({ id: d.id, title: d.title, text: d.text }));
const queries = Array.from({ length: Q }, (_, i) =>
  docs[(i * 7919) % docs.length].text.split(' ').slice(1, 3).join(' '),
);

type Node = Awaited<ReturnType<typeof composeNode>>['node'];

async function ingestNode(label: string): Promise<{ node: Node; ingest_docs_per_s: number }> {
  const { node } = await composeNode({
    node: {
      data_dir: path.join(benchDir(`obs-${label}`), 'd'),
      build: { batch_max_commits: 100_000, build_interval_ms: 3_600_000 },
    },
  });
  const t = nowMs();
  for (let i = 0; i < docs.length; i += 200) await node.ingest(docs.slice(i, i + 200));
  const ingestMs = nowMs() - t;
  await node.buildNow();
  return { node, ingest_docs_per_s: (N / ingestMs) * 1000 };
}

async function queryRound(node: Node): Promise<number> {
  const t = nowMs();
  for (const q of queries) await node.search({ q, mode: 'lexical' });
  return (Q / (nowMs() - t)) * 1000;
}

const { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } = await import(
  '@opentelemetry/sdk-trace-base'
);
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 100_000 })],
});
const tracingOn = (ratio: number) => {
  trace.disable();
  trace.setGlobalTracerProvider(provider);
  setQuerySampleRatio(ratio);
};
const tracingOff = () => {
  trace.disable();
  setQuerySampleRatio(1);
};

// Ingest: one node with tracing off, one with it on (ingest is fsync-bound; one run each).
const offIngest = await ingestNode('off');
tracingOn(1);
const onIngest = await ingestNode('on');
await onIngest.node.stop();
tracingOff();

// Queries: the same node and generation, rounds interleaved off / on (every query) / on (the
// collector default, 1 in 10), so drift on a shared machine hits all three alike; median per setting.
const node = offIngest.node;
for (const q of queries.slice(0, 200)) await node.search({ q, mode: 'lexical' });
const settings = {
  off: tracingOff,
  all: () => tracingOn(1),
  sampled: () => tracingOn(DEFAULT_OTLP_QUERY_SAMPLE_RATIO),
};
const rounds: Record<keyof typeof settings, number[]> = { off: [], all: [], sampled: [] };
for (let r = 0; r < ROUNDS; r++)
  for (const k of Object.keys(settings) as (keyof typeof settings)[]) {
    settings[k]();
    rounds[k].push(await queryRound(node));
    await provider.forceFlush();
  }
tracingOff();
await node.stop();
const spans = exporter.getFinishedSpans().length;
await provider.shutdown();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const off = { ingest: offIngest.ingest_docs_per_s, query: median(rounds.off) };
const overheadPct = (k: 'all' | 'sampled') => round((1 - median(rounds[k]) / off.query) * 100, 2);
const spreadPct = (k: 'all' | 'sampled') => {
  const per = rounds[k].map((qps, i) => (1 - qps / rounds.off[i]) * 100);
  return [round(Math.min(...per), 2), round(Math.max(...per), 2)];
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
  queries_per_round: Q,
  rounds: ROUNDS,
  tracing_off: { ingest_docs_per_s: round(off.ingest, 0), queries_per_s: round(off.query, 0) },
  tracing_on: {
    ingest_docs_per_s: round(onIngest.ingest_docs_per_s, 0),
    queries_per_s_every_query: round(median(rounds.all), 0),
    queries_per_s_sampled: round(median(rounds.sampled), 0),
    query_sample_ratio: DEFAULT_OTLP_QUERY_SAMPLE_RATIO,
    spans_exported: spans,
  },
  overhead: {
    tracing_query_pct: overheadPct('sampled'),
    tracing_query_pct_spread: spreadPct('sampled'),
    tracing_query_pct_every_query: overheadPct('all'),
    tracing_query_pct_every_query_spread: spreadPct('all'),
    tracing_ingest_pct: round((1 - onIngest.ingest_docs_per_s / off.ingest) * 100, 2),
    metrics_us_per_query: round(metricUsPerQuery, 3),
    metrics_query_pct: round((metricUsPerQuery / queryUs) * 100, 2),
    goal_pct: 5,
  },
});
