/**
 * `npm start` — the README's main job: a 3-node cluster as separate processes on 127.0.0.1
 * (one writer, two replicas, libp2p over TCP), the bundled corpus ingested through the writer's
 * HTTP API, replicas fetching and activating the same generation, searches against every node,
 * and the URLs to try by hand. Stops cleanly on Ctrl-C (without a terminal it stops by itself).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freeLoopbackPort } from '../runtime/loopback-port.ts';
import { parse } from './args.ts';
import { packageRoot } from './package-root.ts';

const BIN = path.join(packageRoot(), 'bin/fsmesh.js');
const CORPUS = path.join(packageRoot(), 'examples/corpus/distributed-systems.jsonl');

const freePort = freeLoopbackPort;

interface Proc {
  name: string;
  child: ChildProcess;
  url: string;
  ready: Record<string, unknown>;
}

function startNode(name: string, args: string[]): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, 'node', 'start', '--quiet', '--name', name, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"ready":true'));
      if (line) {
        const ready = JSON.parse(line);
        resolve({ name, child, url: ready.http, ready });
      }
    });
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready:\n${err}`)));
  });
}

async function getJson(url: string, init?: RequestInit) {
  const r = await fetch(url, init);
  return { status: r.status, json: (await r.json()) as any };
}

async function waitUntil<T>(fn: () => Promise<T | null>, ms: number, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Log = (s: string) => void;

/** One writer (quorum durability) and two replicas seeded from it, as separate processes. */
async function startDemoCluster(
  root: string,
  procs: Proc[],
  log: Log,
): Promise<{ writer: Proc; replicas: Proc[] }> {
  const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  // Secure by default: the three nodes share a cluster key (quorum acks count only key holders).
  const keyFile = path.join(root, 'swarm.key');
  const { generateKey } = await import('@libp2p/pnet');
  const key = new Uint8Array(95);
  generateKey(key);
  fs.writeFileSync(keyFile, key, { mode: 0o600 });
  const writer = await startNode('writer', [
    '--cluster-key',
    keyFile,
    '--data',
    path.join(root, 'writer'),
    '--http',
    `127.0.0.1:${ports[0]}`,
    '--listen',
    `/ip4/127.0.0.1/tcp/${ports[1]}`,
    '--role',
    'writer',
    '--members',
    '3',
    '--durability',
    'quorum',
    '--build-interval-ms',
    '50',
  ]);
  procs.push(writer);
  const seed = (writer.ready.multiaddrs as string[])[0];
  log(`  writer    ${writer.url}   peer ${writer.ready.peer_id}`);
  const replicas = await Promise.all(
    [0, 1].map((i) =>
      startNode(`replica-${i + 1}`, [
        '--cluster-key',
        keyFile,
        '--data',
        path.join(root, `replica-${i + 1}`),
        '--http',
        `127.0.0.1:${ports[2 + 2 * i]}`,
        '--listen',
        `/ip4/127.0.0.1/tcp/${ports[3 + 2 * i]}`,
        '--role',
        'replica',
        '--seed',
        seed,
      ]),
    ),
  );
  procs.push(...replicas);
  for (const r of replicas) log(`  ${r.name} ${r.url}   peer ${r.ready.peer_id}`);
  await waitUntil(
    async () => ((await getJson(`${writer.url}/v1/status`)).json.peers.length >= 2 ? true : null),
    20_000,
    'replicas to connect',
  );
  return { writer, replicas };
}

/** The bundled corpus in two commits (a generation between them) and one delete. */
async function ingestCorpus(
  writer: Proc,
  log: Log,
): Promise<{ first_commit_seq: number; last_commit_seq: number }> {
  const docs = fs
    .readFileSync(CORPUS, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const half = Math.floor(docs.length / 2);
  const post = async (batch: unknown[]) =>
    (
      await getJson(`${writer.url}/v1/docs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(batch),
      })
    ).json;
  const a1 = await post(docs.slice(0, half));
  // Let a first generation go live, so time travel below has an older generation to read.
  await waitUntil(
    async () =>
      (await getJson(`${writer.url}/v1/status`)).json.active_commit_seq_high >= a1.commit_seq ? true : null,
    30_000,
    'the first generation',
  );
  const a2 = await post(docs.slice(half));
  const a3 = (await getJson(`${writer.url}/v1/docs/cat`, { method: 'DELETE' })).json;
  log(
    `ingested ${docs.length} docs + 1 delete through the writer (quorum acks: commit_seq ${a1.commit_seq}, ${a2.commit_seq}, ${a3.commit_seq})`,
  );
  return { first_commit_seq: a1.commit_seq, last_commit_seq: a3.commit_seq };
}

/** The writer activates the last commit; every replica activates the very same manifest. */
async function awaitReplication(writer: Proc, replicas: Proc[], commitSeq: number, log: Log): Promise<void> {
  const ws = await waitUntil(
    async () => {
      const s = (await getJson(`${writer.url}/v1/status`)).json;
      return s.active_commit_seq_high >= commitSeq ? s : null;
    },
    30_000,
    'the writer to activate',
  );
  log(`writer activated ${ws.generation_id}  manifest ${ws.artifact_manifest_id}`);
  for (const r of replicas) {
    const s = await waitUntil(
      async () => {
        const st = (await getJson(`${r.url}/v1/status`)).json;
        return st.artifact_manifest_id === ws.artifact_manifest_id ? st : null;
      },
      30_000,
      `${r.name} to activate`,
    );
    log(
      `${r.name} fetched symbols from peers and activated ${s.generation_id}  manifest ${s.artifact_manifest_id}  (${s.health}, lag ${s.lag_commits} commits)`,
    );
  }
}

/** One search per node in each mode, and a time-travel read on a replica. */
async function showSearches(procs: Proc[], replica: Proc, asOf: number, log: Log): Promise<void> {
  const queries: [string, string][] = [
    ['erasure coding repair symbols', 'hybrid'],
    ['majority of replicas', 'lexical'],
    ['merge immutable segments', 'vector'],
  ];
  for (const [i, [q, mode]] of queries.entries()) {
    const p = procs[i];
    const r = (await getJson(`${p.url}/v1/search?q=${encodeURIComponent(q)}&k=3&mode=${mode}`)).json;
    log(
      `search on ${p.name.padEnd(9)} ${JSON.stringify(q)} [${mode}] ${r.generation_id}: ${r.hits.map((h: any) => `${h.doc_id}(${h.score.toFixed(3)})`).join(', ')}`,
    );
  }
  const tt = (
    await getJson(`${replica.url}/v1/search?q=domestic+cat&k=3&mode=lexical&as_of_commit_seq=${asOf}`)
  ).json;
  const now = (await getJson(`${replica.url}/v1/search?q=domestic+cat&k=3&mode=lexical`)).json;
  log(
    `time travel on replica-2: as_of_commit_seq=${asOf} → ${tt.generation_id}: ${tt.hits.map((h: any) => h.doc_id).join(', ') || '(none)'}; latest ${now.generation_id}: ${now.hits.map((h: any) => h.doc_id).join(', ') || '(none)'}`,
  );
}

export async function runDemo(argv: string[]): Promise<number> {
  const a = parse(
    argv,
    { 'keep-running': { type: 'boolean' }, exit: { type: 'boolean' } },
    'fsmesh demo [--keep-running|--exit]',
  );
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fsmesh-demo-'));
  const procs: Proc[] = [];
  try {
    log(`fsmesh demo — 3 nodes on 127.0.0.1, data under ${root}`);
    const { writer, replicas } = await startDemoCluster(root, procs, log);
    const acks = await ingestCorpus(writer, log);
    await awaitReplication(writer, replicas, acks.last_commit_seq, log);
    await showSearches(procs, replicas[1], acks.first_commit_seq, log);
    log('');
    log('try by hand:');
    log(`  open ${writer.url}/ui          the live cluster console (members, generations, events, search)`);
    log(`  node bin/fsmesh.js status --http ${writer.url} --watch`);
    log(`  curl '${replicas[0].url}/v1/search?q=gossip+peers&k=5'`);
    log(
      `  curl -XPOST ${writer.url}/v1/docs -H 'content-type: application/json' -d '[{"id":"new","text":"hello fsmesh"}]'`,
    );
    log(`  curl ${replicas[1].url}/v1/status      curl ${writer.url}/metrics`);
    const keep = a.values['keep-running'] === true || (process.stdin.isTTY && a.values.exit !== true);
    if (keep) {
      log('\nrunning — press Ctrl-C to stop');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
    log('stopping the cluster…');
    return 0;
  } finally {
    await stopAll(procs);
    log('stopped.');
  }
}

async function stopAll(procs: Proc[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill('SIGTERM');
        }),
    ),
  );
}
