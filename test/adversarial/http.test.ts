/**
 * Hostile HTTP clients (issue: secure by default). Each attack that used to work against a node is
 * replayed over real TCP on 127.0.0.1; the node must refuse it with a clear error and stay correct
 * and responsive. Start-up refusals run the real CLI.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { test } from 'node:test';
import { composeNode } from '../../src/compose/compose-node.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

const TOKEN = 'adversarial-token-0123456789';

async function node(opts: { token?: string; restart?: number; mailbox?: number } = {}) {
  return composeNode({
    node: {
      data_dir: tmpDir(),
      ...(opts.mailbox !== undefined ? { mailbox_bound: opts.mailbox } : {}),
      build: { batch_max_commits: 1, build_interval_ms: 10 },
      ...(opts.restart !== undefined
        ? { restart_policy: { max_restarts: opts.restart, backoff_base_ms: 1 } }
        : {}),
    },
    http: { host: '127.0.0.1', port: 0, security: opts.token ? { token: opts.token } : {} },
  });
}

/** A raw request, so Host and Origin can be anything (fetch would set them itself). */
function raw(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; json: any; bytes: number }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method, headers, timeout: 10_000 },
      (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => {
          let json: any = null;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode!, json, bytes: text.length });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const json = { 'content-type': 'application/json' };

test('oversized idempotency keys and batches are refused before the ingest actor; ingest keeps working', async () => {
  const n = await node();
  const url = n.http!.url;
  try {
    for (let i = 0; i < 8; i++) {
      const r = await raw(
        `${url}/v1/docs`,
        'POST',
        { ...json, 'idempotency-key': 'k'.repeat(300) },
        '[{"id":"a","text":"b"}]',
      );
      assert.equal(r.status, 400);
      assert.match(r.json.error.message, /idempotency_key: 300 bytes, at most 256/);
    }
    const big = JSON.stringify(Array.from({ length: 100_001 }, (_, i) => ({ id: `d${i}`, text: 'x' })));
    const b = await raw(`${url}/v1/docs`, 'POST', json, big);
    assert.equal(b.status, 400);
    assert.match(b.json.error.message, /100001 in one batch, at most 100000/);
    const ok = await raw(`${url}/v1/docs`, 'POST', json, '[{"id":"a","text":"still accepted"}]');
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal((await raw(`${url}/healthz`, 'GET', {})).json.health, 'healthy');
    assert.equal(n.node.status().crashes.length, 0, 'no actor crashed');
  } finally {
    await n.stop();
  }
});

test('a stopped actor fails requests fast (503 unavailable), degrades the node and says so', async () => {
  const n = await node({ restart: 1 });
  const url = n.http!.url;
  const events: string[] = [];
  n.node.events.on((e) => events.push(e.event));
  try {
    n.node.injectFault('ingest');
    n.node.injectFault('ingest');
    await new Promise((r) => setTimeout(r, 200));
    const r = await raw(`${url}/v1/docs`, 'POST', json, '[{"id":"a","text":"b"}]');
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'unavailable');
    assert.ok(events.includes('actor_stopped'), events.join());
    assert.equal(n.node.status().health, 'degraded');
    assert.equal((await raw(`${url}/healthz`, 'GET', {})).status, 503);
  } finally {
    await n.stop();
  }
});

test('browsers and rebinding: foreign Origin, foreign Host and text/plain bodies are refused', async () => {
  const n = await node();
  const url = n.http!.url;
  const host = new URL(url).host;
  try {
    const plain = await raw(
      `${url}/v1/docs`,
      'POST',
      { 'content-type': 'text/plain' },
      '[{"id":"a","text":"b"}]',
    );
    assert.equal(plain.status, 415);
    assert.equal(plain.json.error.code, 'unsupported_media_type');
    const csrf = await raw(
      `${url}/v1/docs`,
      'POST',
      { ...json, origin: 'http://evil.example' },
      '[{"id":"a","text":"b"}]',
    );
    assert.equal(csrf.status, 403);
    assert.equal(csrf.json.error.code, 'forbidden');
    const rebind = await raw(`${url}/v1/status`, 'GET', { host: `evil.example:${new URL(url).port}` });
    assert.equal(rebind.status, 403);
    const own = await raw(
      `${url}/v1/docs`,
      'POST',
      { ...json, origin: `http://${host}` },
      '[{"id":"a","text":"b"}]',
    );
    assert.equal(own.status, 200, "the node's own origin is fine");
    assert.equal(
      (await raw(`${url}/v1/status`, 'GET', { host: `localhost:${new URL(url).port}` })).status,
      200,
    );
    assert.equal(n.node.status().commit_seq_high, 1, 'only the legitimate write got in');
  } finally {
    await n.stop();
  }
});

test('with a token, every /v1 route needs it; probes and metrics stay open', async () => {
  const n = await node({ token: TOKEN });
  const url = n.http!.url;
  try {
    for (const [m, p] of [
      ['GET', '/v1/status'],
      ['GET', '/v1/search?q=x'],
      ['POST', '/v1/docs'],
      ['DELETE', '/v1/docs/a'],
    ]) {
      const r = await raw(
        `${url}${p}`,
        m,
        { ...json, authorization: 'Bearer wrong-token-000000000000' },
        m === 'POST' ? '[]' : undefined,
      );
      assert.equal(r.status, 401, `${m} ${p}`);
      assert.equal(r.json.error.code, 'unauthorized');
    }
    assert.equal((await raw(`${url}/v1/status`, 'GET', { authorization: `Bearer ${TOKEN}` })).status, 200);
    for (const p of ['/healthz', '/livez', '/readyz', '/metrics'])
      assert.notEqual((await raw(`${url}${p}`, 'GET', {})).status, 401, p);
  } finally {
    await n.stop();
  }
});

test('malformed targets, unbounded waits and huge error lists are refused with bounded answers', async () => {
  // A small query mailbox, so a few hundred parked reads (not thousands of connections, which a
  // loaded machine's accept queue refuses) outnumber it.
  const n = await node({ mailbox: 64 });
  const url = n.http!.url;
  try {
    await n.node.ingest([{ id: 'a', text: 'hello world' }]);
    assert.equal((await raw(`${url}/v1/search?q=%E0%A4%A`, 'GET', {})).status, 400);
    assert.equal((await raw(`${url}/v1/docs/%ZZ`, 'DELETE', {})).status, 400);
    const t = await raw(`${url}/v1/search?q=x&min_commit_seq=99&timeout_ms=4294967296`, 'GET', {});
    assert.equal(t.status, 400);
    assert.match(t.json.error.message, /timeout_ms: must be an integer from 0 to 60000/);
    const ones = `[${'1,'.repeat(90_000)}1]`;
    const e = await raw(`${url}/v1/docs`, 'POST', json, ones);
    assert.equal(e.status, 400);
    assert.ok(e.bytes < 64 * 1024, `error body of ${e.bytes} bytes`);
    assert.equal(e.json.error.problems.length, 100);
    assert.ok(e.json.error.problem_count > 100);
    // Parked strict reads do not fill the query mailbox: other reads still answer.
    const parked = Array.from({ length: 300 }, () =>
      raw(`${url}/v1/search?q=x&min_commit_seq=999&timeout_ms=1500`, 'GET', {}),
    );
    await new Promise((r) => setTimeout(r, 300));
    const live = await raw(`${url}/v1/search?q=hello`, 'GET', {});
    assert.equal(live.status, 200);
    assert.ok((await Promise.all(parked)).every((r) => r.status === 504));
  } finally {
    await n.stop();
  }
});

test('a commit too large to replicate is refused before it is acknowledged', async () => {
  const n = await node();
  try {
    const docs = Array.from({ length: 9 }, (_, i) => ({ id: `big${i}`, text: 'x'.repeat((1 << 20) - 64) }));
    await assert.rejects(n.node.ingest(docs), /the largest that can replicate; split the batch/);
    assert.equal(n.node.status().commit_seq_high, 0);
  } finally {
    await n.stop();
  }
});

test('node start is secure by default: exposed listeners need a key or token, or --insecure', () => {
  const d = path.join(tmpDir(), 'd');
  const h = cli(['node', 'start', '--data', d, '--http', '0.0.0.0:1']);
  assert.equal(h.code, 2);
  assert.match(h.stderr, /--http 0\.0\.0\.0 is reachable from other machines: add --http-token FILE/);
  const l = cli(['node', 'start', '--data', d, '--http', '127.0.0.1:1', '--listen', '/ip4/0.0.0.0/tcp/0']);
  assert.equal(l.code, 2);
  assert.match(l.stderr, /add --cluster-key FILE/);
  const q = cli([
    'node',
    'start',
    '--data',
    d,
    '--http',
    '127.0.0.1:1',
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--durability',
    'quorum',
    '--members',
    '3',
  ]);
  assert.equal(q.code, 2);
  assert.match(q.stderr, /--members N counts acks from any peer: add --cluster-key FILE/);
  const short = path.join(tmpDir(), 'token');
  fs.writeFileSync(short, 'short\n');
  const t = cli(['node', 'start', '--data', d, '--http', '127.0.0.1:1', '--http-token', short]);
  assert.equal(t.code, 2);
  assert.match(t.stderr, /at least 16 characters/);
});
