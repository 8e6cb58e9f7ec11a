/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Issue 19's acceptance, with real processes on 127.0.0.1: three nodes, `--shards 3`, each the
 * writer of one shard; a corpus ingested through one node lands in all three shards; lexical
 * top-10 answers equal a single-shard node's over the same corpus; a snapshot read repeated after
 * more writes returns the same hits; a strict read with the write token sees the new documents;
 * a bad batch commits nothing on any shard.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import puppeteer from 'puppeteer-core';
import { freePort, http, type NodeProc, startNodeProc, waitFor } from '../helpers/proc.ts';
import { startNarrowNode, startShardedCluster, waitShardWriters } from '../helpers/sharded-cluster.ts';
import { syntheticDocs } from '../helpers/synthetic-corpus.ts';
import { cli, REPO, tmpDir } from '../helpers/tmp.ts';

const CHROMIUM = '/usr/bin/chromium';
const procs: NodeProc[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
});

const bundled = fs
  .readFileSync(path.join(REPO, 'examples/corpus/distributed-systems.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));

const search = (url: string, params: Record<string, string>) =>
  http('GET', `${url}/v1/search?${new URLSearchParams(params)}`);

/** Same ids and scores; order may differ only between equal scores. */
function assertSameRanking(
  got: { doc_id: string; score: number }[],
  want: { doc_id: string; score: number }[],
  q: string,
) {
  assert.equal(got.length, want.length, `${q}: hit count`);
  got.forEach((h, i) => assert.ok(Math.abs(h.score - want[i].score) < 1e-9, `${q}: score at rank ${i + 1}`));
  const key = (hs: { doc_id: string; score: number }[]) =>
    hs.map((h) => `${h.score.toFixed(9)} ${h.doc_id}`).sort();
  assert.deepEqual(key(got), key(want), `${q}: ids`);
}

test('3 nodes x 3 shards: writes anywhere, global BM25 ranking, snapshot and strict reads', {
  timeout: 180_000,
}, async () => {
  const corpus = [...bundled, ...syntheticDocs(600)];
  const [single, nodes] = await Promise.all([
    startNodeProc([
      '--data',
      tmpDir('fsmesh-single-'),
      '--http',
      `127.0.0.1:${await freePort()}`,
      '--build-interval-ms',
      '100',
      '--compute-threads',
      '0',
    ]),
    startShardedCluster(procs),
  ]);
  procs.push(single);
  const [a, b, c] = nodes;
  // Writers learn each other through the seeds: wait until each node knows every shard's writer.
  await waitShardWriters(nodes);

  // A bad document anywhere in the batch: 400, nothing committed on any shard.
  const badBatch = await http('POST', `${b.url}/v1/docs`, [...corpus.slice(0, 5), { id: 'x', text: 42 }]);
  assert.equal(badBatch.status, 400, badBatch.text);
  assert.match(badBatch.json.error.message, /docs\[5\]\.text/);

  const w = await http('POST', `${b.url}/v1/docs`, corpus);
  assert.equal(w.status, 200, w.text);
  assert.deepEqual(
    Object.keys(w.json.commit_seqs).sort(),
    ['0', '1', '2'],
    'the corpus lands in all three shards',
  );
  for (const seq of Object.values(w.json.commit_seqs))
    assert.equal(seq, 1, 'one commit per shard, nothing before it');
  assert.equal((await http('POST', `${single.url}/v1/docs`, corpus)).status, 200);
  const token = JSON.stringify(w.json.commit_seqs);

  // Strict read with the write token, from a node that wrote none of it itself.
  const first = await search(a.url, {
    q: 'w3 w40',
    k: '10',
    mode: 'lexical',
    min_commit_seqs: token,
    timeout_ms: '20000',
  });
  assert.equal(first.status, 200, first.text);
  await waitFor(
    async () => (await http('GET', `${single.url}/v1/status`)).json.active_commit_seq_high >= 1,
    20_000,
    'single node built',
  );
  for (const q of [
    'w3 w40',
    'w0',
    'w1 w2 w5',
    'raft consensus',
    'gossip',
    'w300 w7',
    'leader election log',
  ]) {
    const one = await search(single.url, { q, k: '10', mode: 'lexical' });
    for (const n of nodes) {
      const many = await search(n.url, {
        q,
        k: '10',
        mode: 'lexical',
        min_commit_seqs: token,
        timeout_ms: '20000',
      });
      assert.equal(many.status, 200, many.text);
      assertSameRanking(many.json.hits, one.json.hits, q);
    }
  }

  // More writes through another node; the snapshot keeps answering the old view.
  const snap = JSON.stringify(first.json.snapshot);
  assert.deepEqual(Object.keys(first.json.snapshot).sort(), ['0', '1', '2']);
  const more = syntheticDocs(300, 11, 'more-').map((d) => ({ ...d, text: `${d.text} w3 w40 w3` }));
  const w2 = await http('POST', `${c.url}/v1/docs`, more);
  assert.equal(w2.status, 200, w2.text);
  const strict = await search(a.url, {
    q: 'w3 w40',
    k: '10',
    mode: 'lexical',
    min_commit_seqs: JSON.stringify(w2.json.commit_seqs),
    timeout_ms: '20000',
  });
  assert.equal(strict.status, 200, strict.text);
  assert.ok(
    strict.json.hits.some((h: { doc_id: string }) => h.doc_id.startsWith('more-')),
    'the strict read sees the new documents',
  );
  assert.notDeepEqual(strict.json.snapshot, first.json.snapshot);
  for (const n of nodes) {
    const again = await search(n.url, { q: 'w3 w40', k: '10', mode: 'lexical', snapshot: snap });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.hits, first.json.hits, 'a snapshot read returns the same hits');
    assert.deepEqual(again.json.snapshot, first.json.snapshot);
  }

  // Hybrid merges too; malformed vectors are named.
  const hybrid = await search(b.url, { q: 'raft leader', k: '5' });
  assert.equal(hybrid.status, 200, hybrid.text);
  assert.equal(hybrid.json.hits.length, 5);
  const badSnap = await search(a.url, { q: 'x', snapshot: '{"0":"gen-1"}' });
  assert.equal(badSnap.status, 400);
  assert.match(badSnap.json.error.message, /snapshot: must name a generation for each of the 3 shards/);
  const gone = await search(a.url, { q: 'x', snapshot: '{"0":"gen-1","1":"gen-1","2":"gen-999"}' });
  assert.equal(gone.status, 404, gone.text);

  // Status shows every shard with its writer; the node writes shard 0 and replicates the others.
  const st = (await http('GET', `${a.url}/v1/status`)).json;
  assert.equal(st.shard_count, 3);
  assert.equal(st.shards['0'].role, 'writer');
  assert.equal(st.shards['1'].writer, b.ready.peer_id);
  assert.equal(st.shards['2'].writer, c.ready.peer_id);
  const metrics = (await http('GET', `${a.url}/metrics`)).text;
  for (const k of ['0', '1', '2'])
    assert.match(metrics, new RegExp(`fsmesh_commit_seq_high\\{[^}]*shard="${k}"`));
  const table = cli(['status', '--http', a.url]);
  assert.equal(table.code, 0, table.stderr);
  for (const k of ['0', '1', '2']) assert.match(table.stdout, new RegExp(`^shard ${k}  writer`, 'm'));
  await checkConsole(a.url);

  // A fourth node that carries shard 0 only (--replicate-shards 0): writes for shards 1 and 2 go to
  // their writers, reads of them to members, verified against what their writers signed.
  const narrow = await startNarrowNode(procs, nodes, '0');
  const ns = await waitFor(
    async () => {
      const s = (await http('GET', `${narrow.url}/v1/status`)).json;
      return s.shards['0'].generation_id && s.shards['1'].generation_id && s.shards['2'].generation_id && s;
    },
    30_000,
    'the narrowed node follows every shard',
  );
  assert.equal(ns.shards['0'].role, 'replica');
  assert.equal(ns.shards['1'].role, 'not_carried');
  assert.equal(ns.shards['1'].writer, b.ready.peer_id);
  const w3 = await http('POST', `${narrow.url}/v1/docs`, syntheticDocs(30, 5, 'narrow-'));
  assert.equal(w3.status, 200, w3.text);
  assert.deepEqual(Object.keys(w3.json.commit_seqs).sort(), ['0', '1', '2']);
  const viaNarrow = await search(narrow.url, { q: 'w3 w40', k: '10', mode: 'lexical', snapshot: snap });
  assert.equal(viaNarrow.status, 200, viaNarrow.text);
  assert.deepEqual(
    viaNarrow.json.hits,
    first.json.hits,
    'the same snapshot read through a node that carries one shard',
  );
  const strictNarrow = await search(narrow.url, {
    q: 'w3 w40',
    k: '10',
    mode: 'lexical',
    min_commit_seqs: JSON.stringify(w3.json.commit_seqs),
    timeout_ms: '20000',
  });
  assert.equal(strictNarrow.status, 200, strictNarrow.text);
  assert.notEqual(
    strictNarrow.json.shards['1'].served_by,
    narrow.ready.peer_id,
    'shard 1 is read on a member',
  );
});

/** The console of a multi-shard node: a row per shard, and a search answer that names its snapshot. */
async function checkConsole(url: string): Promise<void> {
  if (!fs.existsSync(CHROMIUM)) return; // .ci/run installs Debian's chromium; the console test says so too
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push((e as Error).message));
    await page.goto(`${url}/ui`);
    await page.waitForFunction(() => document.querySelectorAll('#shards tbody tr').length === 3, {
      timeout: 15_000,
    });
    const roles = await page.$$eval('#shards tbody tr', (rows) => rows.map((r) => r.children[2].textContent));
    assert.deepEqual(roles, ['writer', 'replica', 'replica']);
    await page.type('#q', 'raft');
    await page.select('#mode', 'lexical');
    await page.click('#search-form button');
    await page.waitForFunction(
      () => document.querySelector('#answered-by')?.textContent?.includes('snapshot'),
      { timeout: 15_000 },
    );
    assert.ok(await page.$('#results li.hit[data-doc="raft"]'));
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
}

test('node start refuses flags that do not fit a multi-shard node, and another shard count', async () => {
  const dir = tmpDir('fsmesh-shards-flags-');
  const start = (extra: string[]) =>
    cli([
      'node',
      'start',
      '--data',
      dir,
      '--http',
      '127.0.0.1:0',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      ...extra,
    ]);
  let r = start(['--shards', '3', '--role', 'replica']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--role does not apply with --shards/);
  r = start(['--shards', '3', '--writer-of', '3']);
  assert.match(r.stderr, /--writer-of: a shard number from 0 to 2/);
  r = start(['--writer-of', '1']);
  assert.match(r.stderr, /--writer-of needs --shards/);
  r = start(['--shards', '2', '--replicate-shards', '0,5']);
  assert.match(r.stderr, /--replicate-shards: shard numbers from 0 to 1/);
  r = start(['--shards', '2', '--replicate-shards', '']);
  assert.match(r.stderr, /a node carries at least one shard/);
  // `fsmesh node id` before the first start (to plan seeds) keeps the key the node then uses.
  const planned = tmpDir('fsmesh-node-id-');
  const id = cli(['node', 'id', '--data', planned]);
  assert.equal(id.code, 0, id.stderr);
  const single = await startNodeProc([
    '--data',
    planned,
    '--http',
    `127.0.0.1:${await freePort()}`,
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
  ]);
  procs.push(single);
  assert.equal(single.ready.peer_id, id.json.peer_id);
  await single.kill();
  fs.writeFileSync(path.join(dir, 'shards.json'), '{"format":1,"shards":4}');
  // One-shard tools on a multi-shard root say where the shards are.
  r = cli(['search', '--data', dir, 'x']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /multi-shard node's data directory: each shard's data is in .*shards\/<k>/);
  r = start(['--shards', '3']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /this data dir holds a collection of 4 shards/);
});
