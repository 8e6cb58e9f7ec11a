/**
 * The chaos runner, short version (CI): 5 cycles of real faults on 3 real processes under a
 * concurrent write workload; the checker must find nothing lost, a converged cluster, clean data
 * directories and writes resuming within the bound. `npm run chaos -- --cycles 50` is the long one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('chaos (5 cycles): no acknowledged write lost, converged, verify clean, writes resume', () => {
  const r = spawnSync(process.execPath, ['chaos/run.ts', '--cycles', '5', '--seed', '2', '--json'], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  assert.equal(r.status, 0, `${line}\n${r.stderr.slice(-4000)}`);
  const report = JSON.parse(line);
  for (const key of ['cycles', 'acked', 'lost', 'converged', 'max_unavailable_ms'])
    assert.ok(key in report, `report has ${key}`);
  assert.equal(report.cycles, 5);
  assert.ok(report.acked > 0, 'the workload wrote');
  assert.equal(report.lost, 0);
  assert.equal(report.converged, true);
  assert.equal(report.verify_clean, true);
  assert.equal(report.acked_while_writer_isolated, 0);
  assert.ok(report.max_recovery_ms <= report.recovery_bound_ms, JSON.stringify(report));
});
