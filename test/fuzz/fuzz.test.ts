/**
 * Property-based fuzzing (fast-check) of every wire decoder, every on-disk decoder and every HTTP
 * route. `npm test` runs a small fixed-seed number of cases per target; `npm run fuzz` runs
 * FUZZ_RUNS (10,000) per target. A failure prints the seed and the shrunk input that replays it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { composeNode } from '../../src/compose/compose-node.ts';
import { FsmeshError } from '../../src/core/errors.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { fuzzTargets } from './targets.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const SEED = Number(process.env.FUZZ_SEED ?? 20261128);

const targets = await fuzzTargets();
for (const t of targets) {
  test(`fuzz ${t.name}: only clean refusals (${RUNS} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(t.arb, async (input) => {
        try {
          await t.run(input);
        } catch (err) {
          if (!(err instanceof FsmeshError)) throw err;
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
}

test(`fuzz HTTP routes: every malformed request gets a 4xx naming the problem (${RUNS} cases)`, async () => {
  const { node, http, stop } = await composeNode({
    node: { data_dir: tmpDir(), build: { batch_max_commits: 1, build_interval_ms: 10 } },
    http: { host: '127.0.0.1', port: 0, security: { token: 'fuzz-token-0123456789' } },
  });
  try {
    const ack = await node.ingest([{ id: 'seed', text: 'a document to search' }]);
    // Wait for its generation (a strict read): the check after the fuzzing must not race the first
    // build (a fresh-clone run on a loaded machine failed exactly so).
    await node.search({ q: 'document', min_commit_seq: ack.commit_seq, timeout_ms: 60_000 });
    const seg = fc.oneof(
      fc.constantFrom(
        'v1',
        'docs',
        'search',
        'status',
        'generations',
        'healthz',
        'livez',
        'readyz',
        'metrics',
      ),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('%', '%ZZ', '%E0%A4%A', '..', '%00'),
    );
    const query = fc.array(
      fc.tuple(
        fc.constantFrom('q', 'k', 'mode', 'as_of_commit_seq', 'min_commit_seq', 'timeout_ms', 'tier', 'x'),
        fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('1', '-1', '1e308', '4294967296', '%', 'NaN')),
      ),
      { maxLength: 4 },
    );
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
      fc.constant(`[${'1,'.repeat(5000)}1]`),
    );
    const request = fc.record({
      method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'),
      path: fc.array(seg, { minLength: 1, maxLength: 3 }).map((p) => `/${p.join('/')}`),
      query,
      body,
      type: fc.constantFrom('application/json', 'application/x-ndjson', 'text/plain', ''),
      auth: fc.boolean(),
      key: fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const qs = r.query.map(([k, v]) => `${k}=${v}`).join('&');
        const headers: Record<string, string> = {};
        if (r.type) headers['content-type'] = r.type;
        if (r.auth) headers.authorization = 'Bearer fuzz-token-0123456789';
        if (r.key !== undefined && /^[\x20-\x7e]*$/.test(r.key)) headers['idempotency-key'] = r.key;
        const res = await fetch(`${http!.url}${r.path}${qs ? `?${qs}` : ''}`, {
          method: r.method,
          headers,
          body: r.method === 'POST' || r.method === 'PUT' ? r.body : undefined,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        assert.ok(res.status < 500 || res.status === 503 || res.status === 504, `${res.status} ${text}`);
        assert.ok(text.length < 64 * 1024, `error body of ${text.length} bytes`);
        if (res.status >= 400) assert.ok(JSON.parse(text).error.code, text);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    // After all that, the node still answers.
    assert.equal((await node.search({ q: 'document' })).hits[0].doc_id, 'seed');
  } finally {
    await stop();
  }
});
