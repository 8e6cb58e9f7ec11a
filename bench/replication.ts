/**
 * Option A vs Option B (issue: Option A and audit; §10's claim), real processes on 127.0.0.1:
 *  - a writer holds one generation of a >= 50,000-document corpus (semantic tier on with --semantic);
 *  - a fresh `--replication artifacts` replica (Option B: fetch + verify + activate) and a fresh
 *    `--replication commits` replica (Option A: receive commits + rebuild) start one after the
 *    other; for each: wall time until it serves the writer's manifest, CPU seconds of its process,
 *    bytes moved (artifact bytes fetched / capsule-log bytes received);
 *  - then 1,000 new commits: the time until each replica serves the writer's newest generation.
 * Prints one JSON line; the ratio A / B is §10's "hours to minutes" claim, measured.
 *   node bench/replication.ts [--docs 50000] [--semantic 1] [--commits 1000]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freeLoopbackPort } from '../src/runtime/loopback-port.ts';
import { loadCorpus } from './corpus.ts';
import { getJson, procs, startNode, until } from './nodes.ts';
import { arg, benchDir, nowMs, report, round } from './util.ts';

const N = arg('docs', 50_000);
const SEMANTIC = arg('semantic', 1) === 1;
const NEW_COMMITS = arg('commits', 1000);
const start = (args: string[]) => startNode([...(SEMANTIC ? ['--semantic'] : []), ...args]);
const j = getJson;

/** CPU seconds (user + system) a process used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true }))
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  return n;
}
const node = async (root: string, name: string, role: string, extra: string[]) =>
  start([
    '--data',
    path.join(root, name),
    '--http',
    `127.0.0.1:${await freeLoopbackPort()}`,
    '--listen',
    `/ip4/127.0.0.1/tcp/${await freeLoopbackPort()}`,
    '--role',
    role,
    ...extra,
  ]);

async function serves(url: string, manifestId: string): Promise<void> {
  await until(
    async () => ((await j(`${url}/v1/status`)).artifact_manifest_id === manifestId ? true : null),
    1_800_000,
  );
}

try {
  const root = benchDir('replication');
  const docs = loadCorpus(N);
  const batches = Math.ceil(docs.length / 5000);
  const writer = await node(root, 'w', 'writer', [
    '--members',
    '1',
    '--batch-max-commits',
    String(batches),
    '--build-interval-ms',
    '1000000',
  ]);
  const tw = nowMs();
  for (let i = 0; i < docs.length; i += 5000)
    await j(`${writer.url}/v1/docs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(docs.slice(i, i + 5000)),
    });
  const ws = await until(async () => {
    const s = await j(`${writer.url}/v1/status`);
    return s.active_commit_seq_high >= batches ? s : null;
  }, 1_800_000);
  const writerBuildMs = nowMs() - tw;
  const seed = writer.ready.multiaddrs[0];
  const mode = async (replication: 'artifacts' | 'commits') => {
    const t0 = nowMs();
    const r = await node(root, replication, 'replica', ['--seed', seed, '--replication', replication]);
    await serves(r.url, ws.artifact_manifest_id);
    const ms = nowMs() - t0;
    const st = await j(`${r.url}/v1/status`);
    return {
      r,
      figures: {
        serve_ms: Math.round(ms),
        cpu_s: round(cpuSeconds(r.child.pid!), 2),
        bytes_moved:
          replication === 'artifacts'
            ? (st.sync_progress?.bytes ?? null)
            : dirBytes(path.join(root, replication, 'log')),
      },
    };
  };
  const b = await mode('artifacts');
  const a = await mode('commits');
  // Catch-up: 1,000 new commits (one document each), built by the writer as they come.
  const tc = nowMs();
  for (let i = 0; i < NEW_COMMITS; i++)
    await j(`${writer.url}/v1/docs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ id: `new-${i}`, text: `a new document number ${i} about replication` }]),
    });
  const last = await until(async () => {
    const s = await j(`${writer.url}/v1/status`);
    return s.active_commit_seq_high >= batches + NEW_COMMITS ? s : null;
  });
  const writerDoneMs = nowMs() - tc;
  const catchUp: Record<string, number> = {};
  await Promise.all(
    [
      ['artifacts', b.r.url],
      ['commits', a.r.url],
    ].map(async ([name, url]) => {
      await serves(url, last.artifact_manifest_id);
      catchUp[name] = Math.round(nowMs() - tc);
    }),
  );
  report('replication', {
    docs: docs.length,
    semantic: SEMANTIC,
    writer_build_ms: Math.round(writerBuildMs),
    option_b_artifacts: b.figures,
    option_a_commits: a.figures,
    ratio_a_over_b_serve_time: round(a.figures.serve_ms / b.figures.serve_ms, 2),
    ratio_a_over_b_cpu: round(a.figures.cpu_s / Math.max(0.01, b.figures.cpu_s), 2),
    catch_up: {
      new_commits: NEW_COMMITS,
      writer_generations: last.generation_seq - ws.generation_seq,
      writer_done_ms: Math.round(writerDoneMs),
      artifacts_serve_ms: catchUp.artifacts,
      commits_serve_ms: catchUp.commits,
    },
  });
} finally {
  for (const p of procs) p.kill('SIGTERM');
}
