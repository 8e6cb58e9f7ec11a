/**
 * `npm run bench`: every benchmark in turn, each printing one JSON line; then one more line,
 * `issue16_summary`, with each figure of issue 16's table as measured in this run (a ratio to the
 * baseline the bench measured beside it), its goal, and whether it is met. The benches whose
 * figures are single samples run more than once (RUNS): such a figure is the median of the runs,
 * with every run's value and their spread [min, max]; the others repeat inside themselves.
 * `npm run bench -- search obs` runs only the benchmarks named; BENCH_RUNS=1 runs each once.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const BENCHES = [
  'capsule-append.ts',
  'search.ts',
  'codec.ts',
  'http.ts',
  'bootstrap.ts',
  'obs.ts',
  'two-tier.ts',
  'replication.ts',
  'open.ts',
  'shards.ts',
];
/** Runs of the benches whose summary figures are one sample each (a cluster bench's ratio, say). */
const RUNS: Record<string, number> = { 'http.ts': 3, 'bootstrap.ts': 2 };
const runsOf = (b: string) => (process.env.BENCH_RUNS ? Number(process.env.BENCH_RUNS) : (RUNS[b] ?? 1));
/** Every run's JSON line, by bench name. */
const results: Record<string, any[]> = {};
for (const b of BENCHES) {
  if (only.length && !only.some((o) => b.startsWith(o))) continue;
  for (let run = 0; run < runsOf(b); run++) {
    const r = spawnSync(process.execPath, [path.join(here, b)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    process.stdout.write(r.stdout);
    if (r.status !== 0) process.exitCode = 1;
    for (const line of r.stdout.split('\n'))
      try {
        const j = JSON.parse(line);
        if (j?.bench) {
          results[j.bench] ??= [];
          results[j.bench].push(j);
        }
      } catch {
        // not a result line
      }
  }
}

type Figure = {
  figure: string;
  value: unknown;
  goal: string;
  met: boolean | null;
  runs?: unknown[];
  spread?: [number, number];
};
const figures: Figure[] = [];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/**
 * Add a figure when its bench ran; `at` reads it from one run's JSON. Over several runs a number
 * becomes the median with the runs and their spread; anything else is the first run's value.
 */
function fig(
  bench: string,
  figure: string,
  goal: string,
  at: (j: any) => unknown,
  met: (v: any) => boolean | null,
) {
  const js = results[bench];
  if (!js?.length) return;
  const values = js.map((j) => {
    try {
      return at(j) ?? null;
    } catch {
      return null;
    }
  });
  const numbers = values.filter((v): v is number => typeof v === 'number');
  if (js.length > 1 && numbers.length === values.length) {
    const value = Math.round(median(numbers) * 1000) / 1000;
    figures.push({
      figure,
      value,
      goal,
      met: met(value),
      runs: values,
      spread: [Math.min(...numbers), Math.max(...numbers)],
    });
    return;
  }
  const value = values[0];
  figures.push({
    figure,
    value,
    goal,
    met: value === null ? null : met(value),
    ...(js.length > 1 ? { runs: values } : {}),
  });
}
const first = (xs: { ratio_to_raw_tcp?: number }[]) => xs.find((x) => x.ratio_to_raw_tcp)?.ratio_to_raw_tcp;
fig(
  'bootstrap',
  'bootstrap / raw TCP of the same bytes',
  '>= 0.5',
  (j) => first(j.bootstrap),
  (v) => v >= 0.5,
);
fig(
  'bootstrap',
  'context: the wire path alone / raw TCP (bulk lane, libp2p streams)',
  'context',
  (j) => [j.wire.bulk_lane_ratio_to_raw_tcp, j.wire.libp2p_streams_ratio_to_raw_tcp],
  () => null,
);
fig(
  'bootstrap',
  '4 capped peers / 1 capped peer',
  '>= 3',
  (j) => j.capped_speedup_4_peers,
  (v) => v >= 3,
);
fig(
  'http',
  'query p99 under activations / idle (node)',
  '<= 1.5',
  (j) => j.ratios.http_query_p99_under_activations_over_idle,
  (v) => v <= 1.5,
);
fig(
  'http',
  'HTTP query p50 / library, under ingest',
  '<= 1.3',
  (j) => j.ratios.query_p50_http_over_library,
  (v) => v <= 1.3,
);
fig(
  'http',
  'context: library query + bare node:http round trip / library (the HTTP query floor)',
  'context',
  (j) => j.ratios.query_p50_library_plus_bare_http_over_library,
  () => null,
);
fig(
  'http',
  'HTTP ingest time / library',
  '<= 1.5',
  (j) => j.ratios.ingest_time_http_over_library,
  (v) => v <= 1.5,
);
// Context for the ingest ratio (no goal of their own): what any HTTP server costs on the same
// bodies, and the same ingest with 4 connections against 4 concurrent library callers.
fig(
  'http',
  'context: bare node:http server / library ingest time (the HTTP floor)',
  'context',
  (j) => j.ratios.ingest_time_bare_http_over_library,
  () => null,
);
fig(
  'http',
  'context: HTTP ingest time / library, 4 connections vs 4 callers',
  'context',
  (j) => j.ratios.ingest_time_http_over_library_4_connections,
  () => null,
);
fig(
  'http',
  'context: node RSS steady after queries / peak so far (MB)',
  'context',
  (j) => [
    j.http.node_memory_mb.steady_after_queries.rss_mb,
    j.http.node_memory_mb.steady_after_queries.peak_rss_mb,
  ],
  () => null,
);
fig(
  'bootstrap',
  'context: fresh replica RSS serving / peak during the 1-peer bootstrap (MB)',
  'context',
  (j) => [j.bootstrap[0].replica_rss_mb, j.bootstrap[0].replica_peak_rss_mb],
  () => null,
);
fig(
  'open',
  "CLI lexical search, cold process (ms, MB; median of 3, the runs' ms)",
  '<= 200 ms, <= 150 MB',
  (j) => [j.cli_search.lexical.wall_ms, j.cli_search.lexical.peak_rss_mb, j.cli_search.lexical.wall_ms_runs],
  (v) => v[0] <= 200 && v[1] <= 150,
);
fig(
  'open',
  "CLI hybrid search, cold process (ms, MB; median of 3, the runs' ms; the issue's goal is for any mode)",
  '<= 200 ms, <= 150 MB',
  (j) => [j.cli_search.hybrid.wall_ms, j.cli_search.hybrid.peak_rss_mb, j.cli_search.hybrid.wall_ms_runs],
  (v) => v[0] <= 200 && v[1] <= 150,
);
fig(
  'open',
  'context: artifact bytes a fresh engine reads for one lexical query / the lexical artifacts',
  'context',
  (j) => j.lexical_query_reads.read_over_lexical,
  () => null,
);
fig(
  'open',
  'ingest peak RSS (MB)',
  '<= 300',
  (j) => j.ingest.peak_rss_mb,
  (v) => v <= 300,
);
fig(
  'open',
  'node restart to serving (ms, spread)',
  '< 1000',
  (j) => j.restart_to_serving.map((r: { first_lexical_ms: number }) => r.first_lexical_ms),
  (v) => Math.max(...v) < 1000,
);
fig(
  'search',
  'full build speed-up (2 threads vs one segment inline)',
  '>= 2',
  (j) => j.full_generation_build.speedup_vs_one_segment_inline,
  (v) => v >= 2,
);
fig(
  'search',
  'lexical p50 speed-up vs flexsearch (spread of runs)',
  '> 1 in every run',
  (j) => j.lexical.vs_flexsearch_runs.p50_speedup_spread,
  (v) => v[0] > 1,
);
fig(
  'search',
  'lexical nDCG@10 against the reference BM25 (all postings scored)',
  '= 1.0',
  (j) => j.lexical.ndcg_at_10_vs_reference_bm25,
  (v) => v === 1,
);
fig(
  'search',
  'context: full build 2 threads / 1 thread (scaling with cores)',
  'context',
  (j) => j.full_generation_build.speedup_2_threads_vs_1,
  () => null,
);
fig(
  'search',
  'lexical build speed-up vs flexsearch (spread of runs)',
  '> 1 in every run',
  (j) => j.lexical.vs_flexsearch_runs.build_speedup_spread,
  (v) => v[0] > 1,
);
fig(
  'obs',
  'tracing overhead on queries, % (default sampling; spread)',
  '<= 5',
  (j) => [j.overhead.tracing_query_pct, ...j.overhead.tracing_query_pct_spread],
  (v) => v[0] <= 5,
);
fig(
  'bootstrap',
  'pointer flip 100k / 10k docs',
  '<= 1.2',
  (j) => j.activation_flip_ms.ratio,
  (v) => v <= 1.2,
);
if (figures.length)
  process.stdout.write(
    `${JSON.stringify({ bench: 'issue16_summary', node: process.version, figures, met: figures.filter((f) => f.met).length, of: figures.filter((f) => f.goal !== 'context').length })}\n`,
  );
