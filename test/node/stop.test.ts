/**
 * A node stops promptly whatever it is doing: SIGTERM while documents stream in and builds run
 * exits in seconds (before the fix a late timer armed by the builder after stop kept the process
 * alive for the build interval, 10 minutes). Underneath: the node's clock starts no timer once
 * stopped, and a closing engine starts no build and waits for the ones under way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trackedClock } from '../../src/node/tracked-clock.ts';
import { systemClock } from '../../src/runtime/index.ts';
import { freePort, startNodeProc } from '../helpers/proc.ts';
import { openEngine, tmpDir } from '../helpers/tmp.ts';

test('a node SIGTERMed while ingesting and building exits within seconds', async () => {
  const port = await freePort();
  const n = await startNodeProc([
    '--data',
    tmpDir(),
    '--http',
    `127.0.0.1:${port}`,
    '--batch-max-commits',
    '5',
    '--build-interval-ms',
    '600000',
  ]);
  const post = async (docs: unknown[]) => {
    const r = await fetch(`${n.url}/v1/docs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(docs),
    });
    assert.equal(r.status, 200, await r.text());
  };
  for (let i = 0; i < 40; i++)
    await post(Array.from({ length: 50 }, (_, k) => ({ id: `d${i}-${k}`, text: `doc ${i} ${k} words` })));
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    n.kill('SIGTERM'),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        n.child.kill('SIGKILL');
        reject(new Error(`no exit 20 s after SIGTERM:\n${n.output()}`));
      }, 20_000);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.equal(code, 0, n.output());
  assert.ok(Date.now() - t0 < 15_000, `stopped in ${Date.now() - t0} ms`);
  assert.match(n.output(), /"stopped":true/);
});

test('the node clock arms no timer once stopped; a closing engine starts no build', async () => {
  const { clock, cancelAll } = trackedClock(systemClock);
  let fired = 0;
  clock.setTimeout(() => fired++, 10);
  cancelAll();
  clock.setTimeout(() => fired++, 1); // after stop: never fires, holds nothing open
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fired, 0);

  const e = await openEngine(tmpDir());
  await e.ingest([{ op: 'upsert', doc_id: 'a', text: 'alpha' }]);
  const closing = e.close();
  await assert.rejects(e.buildCandidate(), (err: Error & { code?: string }) => err.code === 'unavailable');
  await closing;
});
