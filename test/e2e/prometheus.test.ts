/**
 * A real Prometheus (Debian's package, installed by .ci/run) scrapes a 3-node cluster on
 * 127.0.0.1; its HTTP API must then return the spec's metrics for all three nodes.
 */

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { startCluster, status, stopAll } from '../helpers/cluster.ts';
import { freePort, http, waitFor } from '../helpers/proc.ts';
import { tmpDir } from '../helpers/tmp.ts';

const hasPrometheus = spawnSync('prometheus', ['--version'], { encoding: 'utf8' }).status === 0;

test('Prometheus scrapes the spec metrics from a 3-node cluster', {
  skip: hasPrometheus
    ? false
    : "prometheus is not installed (.ci/run installs Debian's package; it could not here)",
}, async () => {
  const root = tmpDir();
  const c = await startCluster(root);
  const promPort = await freePort();
  const targets = [c.writer, ...c.replicas].map((p) => p.url.replace('http://', ''));
  const cfg = path.join(root, 'prometheus.yml');
  fs.writeFileSync(
    cfg,
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fsmesh\n    static_configs:\n      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]\n`,
  );
  const prom = spawn(
    'prometheus',
    [
      `--config.file=${cfg}`,
      `--storage.tsdb.path=${path.join(root, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: 'ignore' },
  );
  try {
    const r = await http(
      'POST',
      `${c.writer.url}/v1/docs`,
      Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, text: `prometheus scrape document ${i}` })),
    );
    assert.equal(r.status, 200);
    const ws = await waitFor(
      async () => {
        const s = await status(c.writer);
        return s.active_commit_seq_high >= r.json.commit_seq ? s : null;
      },
      20_000,
      'activation',
    );
    for (const rep of c.replicas)
      await waitFor(
        async () => ((await status(rep)).artifact_manifest_id === ws.artifact_manifest_id ? true : null),
        20_000,
        'replica',
      );
    for (const p of [c.writer, ...c.replicas]) await http('GET', `${p.url}/v1/search?q=scrape`);
    const query = async (q: string) =>
      (await http('GET', `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`)).json;
    // All three targets up and every spec metric present on each.
    await waitFor(
      async () => {
        const up = await query('sum(up{job="fsmesh"})');
        return up?.data?.result?.[0]?.value?.[1] === '3' ? true : null;
      },
      30_000,
      'prometheus to scrape 3 targets',
    );
    for (const m of [
      'distributed_commit_lag_ms',
      'distributed_generation_activate_ms_count',
      'distributed_artifact_repair_ratio',
      'distributed_snapshot_bootstrap_ms_count',
      'distributed_query_generation_skew_count',
      'distributed_repair_failures_total',
    ]) {
      const res = await waitFor(
        async () => {
          const j = await query(m);
          return j?.data?.result?.length === 3 ? j : null;
        },
        20_000,
        `${m} for 3 nodes`,
      );
      for (const s of res.data.result)
        assert.ok(Number.isFinite(Number(s.value[1])), `${m} ${JSON.stringify(s)}`);
    }
    const boot = await query('sum(distributed_snapshot_bootstrap_ms_count)');
    assert.ok(Number(boot.data.result[0].value[1]) >= 2, 'both replicas recorded a bootstrap');
  } finally {
    prom.kill('SIGTERM');
    await stopAll(c);
  }
});
