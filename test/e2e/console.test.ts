/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The cluster console, end to end: a writer and a replica (real processes, an HTTP token), the
 * JSON routes behind it (`/v1/cluster`, `/v1/events`), the page itself in Debian's Chromium driven
 * by puppeteer-core (members, timeline, live events, search with time travel, the token prompt),
 * and the terminal view (`fsmesh status`).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import puppeteer, { type Browser } from 'puppeteer-core';
import { type ClusterProcs, startCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/proc.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (.ci/run installs Debian's chromium)`;

let root = '';
let token = '';
let tokenFile = '';
let c: ClusterProcs;
let browser: Browser | null = null;

/** A browser wait that names what it waited for when it times out. */
async function step<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}

const auth = () => ({ authorization: `Bearer ${token}` });
async function getJson(url: string) {
  const r = await fetch(url, { headers: auth() });
  return { status: r.status, json: (await r.json()) as any };
}
async function ingest(docs: { id: string; text: string }[]): Promise<number> {
  const r = await fetch(`${c.writer.url}/v1/docs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth() },
    body: JSON.stringify(docs),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return (JSON.parse(text) as { commit_seq: number }).commit_seq;
}
const activeAt = (url: string, seq: number) =>
  waitFor(
    async () => {
      const s = (await getJson(`${url}/v1/status`)).json;
      return s.active_commit_seq_high >= seq ? s : null;
    },
    30_000,
    `${url} active at ${seq}`,
  );

before(async () => {
  root = tmpDir();
  tokenFile = path.join(root, 'token');
  assert.equal(cli(['http-token', tokenFile]).code, 0);
  token = fs.readFileSync(tokenFile, 'utf8').trim();
  const secured = ['--http-token', tokenFile];
  c = await startCluster(root, { replicas: 2, writerArgs: secured, replicaArgs: secured });
  const first = await ingest([
    { id: 'r1', text: 'erasure coded repair symbols travel between peers' },
    { id: 'r2', text: 'a single writer per shard builds immutable generations' },
  ]);
  for (const r of c.replicas) await activeAt(r.url, first);
  const second = await ingest([{ id: 'late', text: 'time travel shows older generations of repair' }]);
  for (const r of c.replicas) await activeAt(r.url, second);
});

after(async () => {
  await browser?.close();
  await Promise.all([c?.writer, ...(c?.replicas ?? [])].map((p) => p?.kill()));
  fs.rmSync(root, { recursive: true, force: true });
});

test('GET /v1/cluster: every member with role, health, lag, generation; token required', async () => {
  assert.equal((await fetch(`${c.writer.url}/v1/cluster`)).status, 401);
  const v = await waitFor(
    async () => {
      const { json } = await getJson(`${c.writer.url}/v1/cluster`);
      return json.members.length === 3 && json.members.every((m: any) => m.generation_id) ? json : null;
    },
    20_000,
    'all three members in /v1/cluster',
  );
  const self = v.members.find((m: any) => m.self);
  assert.equal(self.role, 'writer');
  assert.equal(self.peer_id, v.writer);
  const others = v.members.filter((m: any) => !m.self);
  assert.deepEqual(others.map((m: any) => m.peer_id).sort(), c.replicas.map((r) => r.ready.peer_id).sort());
  for (const m of others) {
    assert.equal(m.role, 'replica');
    for (const k of ['health', 'lag_commits', 'generation_id', 'commit_seq_high', 'queries_per_s', 'age_ms'])
      assert.ok(k in m, `member has ${k}`);
  }
  // A replica sees the writer as writer from its side.
  const { json: r } = await waitFor(
    async () => {
      const x = await getJson(`${c.replicas[0].url}/v1/cluster`);
      return x.json.members.some((m: any) => m.role === 'writer' && !m.self) ? x : null;
    },
    20_000,
    'the writer in a replica view',
  );
  assert.equal(r.members.find((m: any) => m.role === 'writer')?.peer_id, v.writer);
});

test('GET /v1/events: Server-Sent Events, recent ones first; token required', async () => {
  assert.equal((await fetch(`${c.writer.url}/v1/events`)).status, 401);
  const ac = new AbortController();
  const r = await fetch(`${c.writer.url}/v1/events?recent=5`, { headers: auth(), signal: ac.signal });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = r.body!.getReader();
  let text = '';
  while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
  ac.abort();
  const data = JSON.parse(/^data: (.*)$/m.exec(text)![1]);
  assert.match(/^event: (.*)$/m.exec(text)![1], /^[a-z_]+$/);
  assert.equal(typeof data.ts_ms, 'number');
  assert.equal((await fetch(`${c.writer.url}/v1/events?recent=x`, { headers: auth() })).status, 400);
});

test('the console in Chromium: members, timeline, live events, search and time travel', {
  skip,
}, async () => {
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${(e as Error).message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const res = await page.goto(`${c.writer.url}/ui#token=${token}`, { waitUntil: 'domcontentloaded' });
  assert.equal(res?.status(), 200);
  assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'sha256-/);
  await page.setViewport({ width: 1200, height: 900 });
  // Members: the writer (this node) and the two replicas; the writer's row shows its generation.
  await step(
    'three member rows',
    page.waitForFunction(() => document.querySelectorAll('#members tbody tr').length === 3, {
      timeout: 15_000,
    }),
  );
  const roles = await page.$$eval('#members tbody tr', (rows) =>
    rows.map((r) => (r as HTMLElement).dataset.role).sort(),
  );
  assert.deepEqual(roles, ['replica', 'replica', 'writer']);
  const writerGen = (await getJson(`${c.writer.url}/v1/status`)).json.generation_id;
  await step(
    `the writer's row shows ${writerGen}`,
    page.waitForFunction(
      (g) =>
        [...document.querySelectorAll('#members tbody tr[data-role="writer"] td')].some(
          (td) => td.textContent === g,
        ),
      { timeout: 15_000 },
      writerGen,
    ),
  );
  // The timeline: the retained generations, the active one marked.
  await step(
    'the active generation on the timeline',
    page.waitForSelector('#timeline .gen[data-active="true"]', { timeout: 15_000 }),
  );
  const gens = await page.$$eval('#timeline .gen', (g) =>
    g.map((x) => (x as HTMLElement).dataset.generation),
  );
  assert.ok(gens.length >= 2, `timeline shows ${gens}`);
  // Events arrive live: a write now shows up as an activation on the page.
  await step('events on the page', page.waitForSelector('#events li', { timeout: 15_000 }));
  const seq = await ingest([{ id: 'live', text: 'written while the console watches' }]);
  await activeAt(c.writer.url, seq);
  await step(
    'the live activation event',
    page.waitForFunction(
      (s) => [...document.querySelectorAll('#events li')].some((li) => li.textContent?.includes(`@${s}`)),
      { timeout: 15_000 },
      seq,
    ),
  );
  // Search at the latest generation: the late document is found, the answering generation named.
  await page.type('#q', 'time travel repair');
  await page.click('#search-form button');
  await step('search hits', page.waitForSelector('#results li.hit', { timeout: 15_000 }));
  const latest = await page.$$eval('#results li.hit', (l) => l.map((x) => (x as HTMLElement).dataset.doc));
  assert.ok(latest.includes('late'), `latest hits ${latest}`);
  const answeredLatest = await page.$eval('#answered-by', (e) => e.textContent ?? '');
  assert.match(answeredLatest, /answered by gen-\d+ \(commit \d+\) on /);
  await page.screenshot({ path: path.join(root, 'console.png') });
  assert.ok(fs.statSync(path.join(root, 'console.png')).size > 10_000, 'a screenshot in the test dir');
  // Time travel to the oldest retained generation: the late document did not exist yet.
  await page.evaluate(() => {
    const s = document.querySelector('#asof') as HTMLInputElement;
    s.value = '0';
    s.dispatchEvent(new Event('input'));
  });
  const oldest = await page.$eval('#asof-label', (e) => e.textContent ?? '');
  assert.match(oldest, /^as of gen-\d+/);
  await page.click('#search-form button');
  await step(
    'the time-travel answer',
    page.waitForFunction(
      (g) => document.querySelector('#answered-by')?.textContent?.includes(g),
      { timeout: 15_000 },
      oldest.split(' ')[2],
    ),
  );
  const past = await page.$$eval('#results li.hit', (l) => l.map((x) => (x as HTMLElement).dataset.doc));
  assert.ok(!past.includes('late'), `the past does not know 'late': ${past}`);
  assert.notEqual(
    await page.$eval('#answered-by', (e) => (e as HTMLElement).dataset.generation),
    /answered by (gen-\d+)/.exec(answeredLatest)![1],
    'the slider changed the answering generation',
  );
  assert.deepEqual(problems, []);
  // Without the token the page asks for it instead of showing data.
  const anon = await browser.newPage();
  await anon.goto(`${c.writer.url}/ui`);
  await step(
    'the token prompt',
    anon.waitForFunction(() => (document.querySelector('#auth') as HTMLElement).style.display === 'block', {
      timeout: 15_000,
    }),
  );
  assert.equal(await anon.$$eval('#members tbody tr', (r) => r.length), 0);
});

test('fsmesh status --http: the cluster table, --json, and clear errors', () => {
  const table = cli(['status', '--http', c.writer.url, '--http-token', tokenFile]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /PEER\s+ROLE\s+HEALTH\s+LAG\s+GENERATION\s+COMMIT_SEQ_HIGH\s+QPS/);
  assert.match(table.stdout, /writer\s+healthy/);
  assert.equal(table.stdout.match(/replica\s+(healthy|catching_up)/g)?.length, 2, table.stdout);
  const json = cli(['status', '--http', c.writer.url, '--http-token', tokenFile, '--json']);
  assert.equal(json.json.members.length, 3);
  const denied = cli(['status', '--http', c.writer.url]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /401 missing or wrong bearer token/);
  assert.equal(cli(['status', '--http', 'localhost:1']).code, 2);
  assert.match(cli(['status', '--http', 'http://127.0.0.1:1']).stderr, /cannot reach the node/);
});
