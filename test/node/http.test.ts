import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { freePort, http, startNodeProc, waitFor } from '../helpers/proc.ts';
import { tmpDir } from '../helpers/tmp.ts';

test('HTTP API: routes, read modes and error paths (real process on 127.0.0.1)', async () => {
  const port = await freePort();
  const n = await startNodeProc([
    '--data',
    path.join(tmpDir(), 'd'),
    '--http',
    `127.0.0.1:${port}`,
    '--build-interval-ms',
    '20',
  ]);
  try {
    assert.match(n.url, /^http:\/\/127\.0\.0\.1:/);
    const b = `${n.url}`;
    const post = await http('POST', `${b}/v1/docs`, [
      { id: 'a', title: 'Alpha', text: 'first document about rivers' },
      { id: 'b', text: 'second document about mountains' },
    ]);
    assert.equal(post.status, 200, post.text);
    assert.equal(post.json.commit_seq, 1);
    const nd = await http(
      'POST',
      `${b}/v1/docs`,
      '{"id":"c","text":"third about rivers"}\n{"id":"d","text":"fourth"}\n',
      { 'content-type': 'application/x-ndjson' },
    );
    assert.equal(nd.status, 200, nd.text);
    const s = await http(
      'GET',
      `${b}/v1/search?q=rivers&mode=lexical&min_commit_seq=${nd.json.commit_seq}&timeout_ms=5000`,
    );
    assert.equal(s.status, 200, s.text);
    assert.deepEqual(s.json.hits.map((h: any) => h.doc_id).sort(), ['a', 'c']);
    assert.ok(s.json.generation_id && s.json.commit_seq_high >= 2);
    const del = await http('DELETE', `${b}/v1/docs/a`);
    assert.equal(del.status, 200);
    const s2 = await http(
      'GET',
      `${b}/v1/search?q=rivers&mode=lexical&min_commit_seq=${del.json.commit_seq}&timeout_ms=5000`,
    );
    assert.deepEqual(
      s2.json.hits.map((h: any) => h.doc_id),
      ['c'],
    );
    const tt = await http(
      'GET',
      `${b}/v1/search?q=rivers&mode=lexical&as_of_commit_seq=${nd.json.commit_seq}`,
    );
    assert.equal(tt.status, 200);
    assert.ok(
      tt.json.hits.some((h: any) => h.doc_id === 'a'),
      'time travel sees the deleted doc',
    );
    const st = await http('GET', `${b}/v1/status`);
    for (const k of [
      'role',
      'health',
      'generation_id',
      'artifact_manifest_id',
      'commit_seq_high',
      'lag_commits',
    ])
      assert.ok(k in st.json, k);
    const gens = await http('GET', `${b}/v1/generations`);
    assert.ok(gens.json.generations.some((g: any) => g.active));
    assert.equal((await http('GET', `${b}/healthz`)).status, 200);
    const metrics = await http('GET', `${b}/metrics`);
    assert.match(metrics.text, /distributed_generation_activate_ms_bucket/);
    assert.match(metrics.text, /fsmesh_ingest_docs_total\{[^}]*\} 5/);

    // Error paths: each a 4xx with a JSON error body naming the problem.
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/v1/docs', '{not json', 400, /invalid JSON/],
      ['POST', '/v1/docs', [{ id: 'x', text: 5 }], 400, /docs\[0\]\.text/],
      ['POST', '/v1/docs', [], 400, /must not be empty/],
      ['POST', '/v1/docs', '', 400, /empty/],
      ['GET', '/v1/search', undefined, 400, /q: required/],
      ['GET', '/v1/search?q=x&k=0', undefined, 400, /k: must be/],
      ['GET', '/v1/search?q=x&k=abc', undefined, 400, /k: expected an integer/],
      ['GET', '/v1/search?q=x&mode=magic', undefined, 400, /mode: must be one of/],
      ['GET', '/v1/search?q=x&as_of_commit_seq=999', undefined, 400, /beyond the head/],
      ['GET', '/v1/search?q=x&min_commit_seq=999&timeout_ms=30', undefined, 504, /timed out/],
      ['GET', '/v1/nope', undefined, 404, /no route/],
      ['PUT', '/v1/docs', undefined, 405, /not a route/],
    ];
    for (const [m, p, body, status, re] of cases) {
      const r = await http(m, `${b}${p}`, body);
      assert.equal(r.status, status, `${m} ${p}: ${r.text}`);
      assert.match(r.json.error.message, re, `${m} ${p}`);
    }
    const big = await fetch(`${b}/v1/docs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(17 << 20),
    });
    assert.equal(big.status, 413);
    // Nothing bad got in.
    const after = await http('GET', `${b}/v1/status`);
    assert.equal(after.json.commit_seq_high, del.json.commit_seq);
  } finally {
    assert.equal(await n.kill('SIGTERM'), 0, 'graceful shutdown exits 0');
  }
});

test('writer SIGKILLed mid-build: on restart the incomplete generation is inactive and the build resumes from the watermark', async () => {
  const dir = path.join(tmpDir(), 'd');
  const port = await freePort();
  let n = await startNodeProc([
    '--data',
    dir,
    '--http',
    `127.0.0.1:${port}`,
    '--build-interval-ms',
    '10',
    '--batch-max-commits',
    '1',
  ]);
  const acked: number[] = [];
  const big = Array.from({ length: 4000 }, (_, i) => ({
    id: `k${i}`,
    text: `kill test document ${i} lorem ipsum dolor sit amet ${i % 97}`,
  }));
  for (let i = 0; i < 8; i++) {
    const r = await http('POST', `${n.url}/v1/docs`, big.slice(i * 500, (i + 1) * 500));
    assert.equal(r.status, 200);
    acked.push(r.json.commit_seq);
  }
  // Builds are running (batch of 1 commit): kill without warning.
  await n.kill('SIGKILL');
  n = await startNodeProc(['--data', dir, '--http', `127.0.0.1:${port}`, '--build-interval-ms', '10']);
  try {
    const st = await waitFor(
      async () => {
        const s = await http('GET', `${n.url}/v1/status`);
        return s.json.active_commit_seq_high === acked[acked.length - 1] ? s.json : null;
      },
      30_000,
      'resumed build to reach the last acknowledged commit',
    );
    assert.equal(st.commit_seq_high, acked[acked.length - 1], 'no acknowledged commit lost');
    const r = await http(
      'GET',
      `${n.url}/v1/search?q=${encodeURIComponent('document 3999')}&mode=lexical&k=5`,
    );
    assert.equal(r.json.hits[0].doc_id, 'k3999');
  } finally {
    await n.kill('SIGTERM');
  }
});
