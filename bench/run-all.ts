/**
 * `npm run bench`: every benchmark in turn, each printing one JSON line; then one more line,
 * `issue16_summary`, with each figure of issue 16's table as measured in this run (a ratio to the
 * baseline the bench measured beside it, its spread where the bench repeats it), its goal, and
 * whether it is met. `npm run bench -- search obs` runs only the benchmarks named.
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
const results: Record<string, any> = {};
for (const b of BENCHES) {
  if (only.length && !only.some((o) => b.startsWith(o))) continue;
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
      if (j?.bench) results[j.bench] = j;
    } catch {
      // not a result line
    }
}

type Figure = { figure: string; value: unknown; goal: string; met: boolean | null };
const figures: Figure[] = [];
/** Add a figure when its bench ran; `at` reads it from that bench's JSON. */
function fig(
  bench: string,
  figure: string,
  goal: string,
  at: (j: any) => unknown,
  met: (v: any) => boolean | null,
) {
  const j = results[bench];
  if (!j) return;
  let value: unknown = null;
  try {
    value = at(j) ?? null;
  } catch {
    value = null;
  }
  figures.push({ figure, value, goal, met: value === null ? null : met(value) });
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
  'open',
  'CLI lexical search, cold process (ms, MB)',
  '<= 200 ms, <= 150 MB',
  (j) => [j.cli_search.lexical.wall_ms, j.cli_search.lexical.peak_rss_mb],
  (v) => v[0] <= 200 && v[1] <= 150,
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
