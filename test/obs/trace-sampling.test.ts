/**
 * Query-span sampling: a deterministic accumulator keeps exactly the asked fraction of queries,
 * lifecycle spans are never sampled out, a collector defaults to 1 in 10, and the CLI flag rejects
 * anything but a number in [0, 1], naming itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configureTracing, LifecycleTrace, querySpan, setQuerySampleRatio } from '../../src/obs/tracing.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

test('query spans keep the asked fraction, deterministically; lifecycle spans are all kept', async () => {
  const tracing = await configureTracing('memory', { query_sample_ratio: 0.25 });
  const exporter = tracing.exporter as { getFinishedSpans(): { name: string }[]; reset(): void };
  try {
    const sampled: boolean[] = [];
    for (let i = 0; i < 100; i++) {
      const s = querySpan({ mode: 'lexical', read_mode: 'latest' });
      sampled.push(s.isRecording());
      s.end();
    }
    const queries = exporter.getFinishedSpans().filter((s) => s.name === 'query');
    assert.equal(queries.length, 25);
    // Every 4th query, not a random draw: same sequence on every run (the simulator's traces).
    assert.deepEqual(
      sampled.map((x, i) => (x ? i : -1)).filter((i) => i >= 0),
      Array.from({ length: 25 }, (_, k) => 4 * k + 3),
    );
    for (let i = 0; i < 5; i++) {
      const lt = new LifecycleTrace(`gen-${i}`);
      await lt.child('verify', async () => {});
      lt.end('active');
    }
    const lifecycle = exporter.getFinishedSpans().filter((s) => s.name !== 'query');
    assert.equal(lifecycle.length, 10);
    setQuerySampleRatio(0);
    exporter.reset();
    for (let i = 0; i < 50; i++) querySpan({ mode: 'lexical', read_mode: 'latest' }).end();
    assert.equal(exporter.getFinishedSpans().length, 0);
    assert.throws(() => setQuerySampleRatio(1.5), /\[0, 1\], got 1.5/);
    assert.throws(() => setQuerySampleRatio(Number.NaN), /\[0, 1\]/);
  } finally {
    await tracing.shutdown();
  }
  // Shutdown restores the default (every query) for whoever configures tracing next.
  const again = await configureTracing('memory');
  try {
    for (let i = 0; i < 10; i++) querySpan({ mode: 'lexical', read_mode: 'latest' }).end();
    const ex = again.exporter as { getFinishedSpans(): unknown[] };
    assert.equal(ex.getFinishedSpans().length, 10);
  } finally {
    await again.shutdown();
  }
});

test('--trace-sample-ratio takes a number in [0, 1] and needs --trace; errors name the flag', () => {
  const base = ['node', 'start', '--data', tmpDir(), '--http', '127.0.0.1:0'];
  for (const bad of ['2', 'x', '0.5.1', '1.5', '']) {
    const r = cli([...base, '--trace', 'console', '--trace-sample-ratio', bad]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--trace-sample-ratio: expected a number from 0 to 1/);
  }
  const r = cli([...base, '--trace-sample-ratio', '0.5']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--trace-sample-ratio needs --trace/);
});
