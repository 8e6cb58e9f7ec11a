/**
 * Crash safety of the pointer flip (§8.3, §14): SIGKILL real `fsmesh ingest` processes at
 * seeded random points of append + build + activation, at least 20 times on one data
 * directory. After every kill exactly one complete generation is active (or none yet), it
 * answers queries, and `fsmesh verify` passes.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { seededRandom } from '../../src/runtime/index.ts';
import { CLI, cli, tmpDir, writeJsonl } from '../helpers/tmp.ts';

function runAndKill(
  args: string[],
  killAfterMs: number,
): Promise<{ killed: boolean; code: number | null; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
    let killed = false;
    const t = setTimeout(() => {
      killed = child.kill('SIGKILL');
    }, killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ killed: killed && code === null, code, ms: Date.now() - t0 });
    });
  });
}

test('SIGKILL at random points of a build: one complete generation stays active, verify passes', async () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  const rng = seededRandom(20261127);
  let kills = 0;
  let lastHigh = 0;
  let runMs = 1000;
  const RUNS = 22;
  for (let run = 0; run < RUNS; run++) {
    const docs = Array.from({ length: 4000 }, (_, i) => ({
      id: `r${run}-d${i % 700}`,
      title: `run ${run}`,
      text: `document ${i} of run ${run} words alpha beta gamma ${i % 13}`,
    }));
    const file = writeJsonl(dir, `run-${run}.jsonl`, docs);
    // Run 0 is not killed: it measures how long a run takes, so kills land anywhere inside one.
    const delay = run === 0 ? 120_000 : 50 + rng.int(Math.max(100, runMs));
    const r = await runAndKill(['ingest', '--data', data, '--batch', '10', file], delay);
    if (run === 0) runMs = r.ms;
    if (r.killed) kills++;
    else assert.equal(r.code, 0, `run ${run} exited ${r.code}`);
    const v = cli(['verify', '--data', data]);
    assert.equal(v.code, 0, `verify after run ${run} (kill at ${delay} ms): ${v.stderr}`);
    const g = cli(['generations', '--data', data, '--json']);
    assert.equal(g.code, 0, g.stderr);
    const active = g.json.generations.filter((x: any) => x.active);
    if (g.json.active === null) {
      assert.equal(active.length, 0);
      continue;
    }
    assert.equal(active.length, 1, 'exactly one active generation');
    assert.ok(active[0].commit_seq_high >= lastHigh, 'the active generation never goes backwards');
    lastHigh = active[0].commit_seq_high;
    const s = cli(['search', '--data', data, 'alpha', '--mode', 'lexical', '--k', '3']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.json.generation_id, g.json.active);
  }
  assert.ok(kills >= 5, `expected several runs to be killed mid-way, got ${kills}`);
});
