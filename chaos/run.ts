/**
 * `npm run chaos -- [--cycles N] [--nodes K] [--seed S] [--faults LIST] [--commits-replicas R] [--json]` — Jepsen-style chaos on real
 * processes (docs/runbook.md, "Chaos"): K `fsmesh node start` processes on 127.0.0.1 (one writer,
 * quorum durability, a cluster key) under a concurrent HTTP write workload, with one fault per
 * cycle — SIGKILL + restart of the writer or a replica, SIGSTOP/SIGCONT, a wiped replica data
 * directory, a corrupted artifact, a clean restart. Then the checker (chaos/history.ts) proves: no
 * acknowledged write lost on any node, every node converges to the writer's manifest, `fsmesh
 * verify` is clean on every data directory, writes resume within a bound after each fault heals.
 * Prints `{"cycles","acked","lost","converged","max_unavailable_ms",...}`; exit 1 if a check fails.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { seededRandom } from '../src/runtime/index.ts';
import {
  ackedWhileWriterIsolated,
  duplicateCommitSeqs,
  History,
  lostDocIds,
  maxAckLatencyMs,
  maxUnavailableMs,
  recoveryMs,
  type WriteOp,
} from './history.ts';
import { ChaosNode, FSMESH_BIN, freePort } from './nodes.ts';
import { PartitionNet } from './partition.ts';

const FAULT_KINDS = [
  'kill_writer',
  'kill_replica',
  'pause',
  'wipe_replica',
  'corrupt',
  'restart',
  'partition',
] as const;
/** Writes must resume this soon after a fault heals (a restarted writer redials, replicas rejoin). */
const RECOVERY_BOUND_MS = 20_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson(url: string, timeoutMs = 3000): Promise<any> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return await r.json();
  } catch {
    return null;
  }
}

async function waitUntil<T>(f: () => Promise<T | null>, timeoutMs: number): Promise<T | null> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await f();
    if (v !== null) return v;
    await sleep(250);
  }
  return null;
}

type FaultKind = (typeof FAULT_KINDS)[number];

interface Options {
  faults: FaultKind[];
  cycles: number;
  nodes: number;
  /** Replicas that rebuild from the commit stream (Option A); the last ones. */
  commitsReplicas: number;
  seed: number;
  json: boolean;
  root: string;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      cycles: { type: 'string', default: '20' },
      nodes: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      dir: { type: 'string' },
      faults: { type: 'string' },
      'commits-replicas': { type: 'string', default: '1' },
    },
  });
  const faults = (values.faults ?? FAULT_KINDS.join(',')).split(',').filter(Boolean);
  for (const f of faults)
    if (!(FAULT_KINDS as readonly string[]).includes(f))
      throw new Error(`--faults: unknown fault ${JSON.stringify(f)} (known: ${FAULT_KINDS.join(', ')})`);
  const int = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new Error(`--${name}: expected an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  return {
    cycles: int('cycles', values.cycles!, 1, 100_000),
    nodes: int('nodes', values.nodes!, 3, 5),
    commitsReplicas: int('commits-replicas', values['commits-replicas']!, 0, 4),
    seed: int('seed', values.seed!, 0, 2 ** 31),
    json: values.json!,
    faults: faults as FaultKind[],
    root: values.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fsmesh-chaos-')),
  };
}

/** Concurrent writers: each request sends 3 docs with unique ids; the outcome goes to the history. */
function startWorkload(writer: ChaosNode, history: History, clients: number) {
  let running = true;
  let n = 0;
  const loop = async (client: number) => {
    while (running) {
      const ids = [0, 1, 2].map(() => `c${client}n${n++}`);
      const body = JSON.stringify(ids.map((id) => ({ id, text: `chaos document tok${id} workload` })));
      const op: WriteOp = { doc_ids: ids, start_ms: Date.now(), end_ms: 0, outcome: 'unknown', detail: '' };
      try {
        const r = await fetch(`${writer.url}/v1/docs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(8000),
        });
        const j: any = await r.json().catch(() => null);
        op.detail = String(r.status);
        if (r.status === 200 && Number.isSafeInteger(j?.commit_seq)) {
          op.outcome = 'ok';
          op.commit_seq = j.commit_seq;
        } else op.outcome = r.status >= 500 && r.status !== 503 ? 'unknown' : 'failed';
      } catch (err) {
        const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
        op.detail = code;
        // Refused: the request never reached a process, so nothing landed.
        op.outcome = code === 'ECONNREFUSED' ? 'failed' : 'unknown';
        await sleep(100);
      }
      op.end_ms = Date.now();
      history.writes.push(op);
      if (op.outcome !== 'ok') await sleep(50);
    }
  };
  const done = Promise.all(Array.from({ length: clients }, (_, i) => loop(i)));
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

async function main(): Promise<number> {
  const o = options(process.argv.slice(2));
  const rng = seededRandom(o.seed);
  const t0 = Date.now();
  const say = (s: string) => {
    if (!o.json) process.stderr.write(`[chaos ${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);
  };
  const key = path.join(o.root, 'cluster.key');
  const mk = spawnSync(process.execPath, [FSMESH_BIN, 'cluster-key', key], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`cluster-key: ${mk.stderr}`);
  const common = [
    '--cluster-key',
    key,
    '--scrub-interval-ms',
    '1000',
    '--degraded-probe-interval-ms',
    '1000',
  ];
  const nodes: ChaosNode[] = [];
  for (let i = 0; i < o.nodes; i++)
    nodes.push(
      new ChaosNode({
        name: i === 0 ? 'writer' : `replica-${i}`,
        role: i === 0 ? 'writer' : 'replica',
        dir: path.join(o.root, `node-${i}`),
        http_port: await freePort(),
        p2p_port: await freePort(),
        proxy_port: await freePort(),
        args:
          i === 0
            ? [...common, '--durability', 'quorum', '--members', String(o.nodes), '--build-interval-ms', '50']
            : i >= o.nodes - o.commitsReplicas
              ? [...common, '--replication', 'commits']
              : common,
      }),
    );
  const [writer, ...replicas] = nodes;
  const partitions = new PartitionNet(
    () => new Map(nodes.flatMap((n) => (n.pid === undefined ? [] : [[n.spec.name, n.pid] as const]))),
  );
  for (const n of nodes) await partitions.add(n.spec.name, n.spec.proxy_port!, () => n.spec.p2p_port);
  await writer.start([]);
  const seeds = [writer.multiaddr];
  await Promise.all(replicas.map((r) => r.start(seeds)));
  say(`cluster of ${o.nodes} up in ${o.root}`);
  await waitUntil(
    async () => ((await getJson(`${writer.url}/v1/status`))?.peers?.length >= o.nodes - 1 ? true : null),
    30_000,
  );

  const history = new History();
  const workload = startWorkload(writer, history, 2);
  const counts: Record<string, number> = {};
  try {
    for (let cycle = 1; cycle <= o.cycles; cycle++) {
      await sleep(500 + rng.int(1000));
      const kind = o.faults[rng.int(o.faults.length)];
      const target =
        kind === 'kill_writer'
          ? writer
          : kind === 'pause' || kind === 'corrupt' || kind === 'restart' || kind === 'partition'
            ? nodes[rng.int(nodes.length)]
            : replicas[rng.int(replicas.length)];
      const holdMs = 500 + rng.int(2000);
      let start_ms = Date.now();
      let isolated: string[] | undefined;
      let split_ms = 0;
      say(`cycle ${cycle}: ${kind} ${target.spec.name} for ${holdMs} ms`);
      switch (kind) {
        case 'kill_writer':
        case 'kill_replica':
          await target.signal('SIGKILL');
          await sleep(holdMs);
          await target.start(seeds);
          break;
        case 'restart':
          await target.signal('SIGTERM');
          await target.start(seeds);
          break;
        case 'pause':
          await target.signal('SIGSTOP');
          await sleep(holdMs);
          await target.signal('SIGCONT');
          break;
        case 'wipe_replica':
          await target.signal('SIGKILL');
          target.wipe();
          await sleep(holdMs);
          await target.start(seeds);
          break;
        case 'partition': {
          // A minority (one node, or two of five) cut off from the rest, both directions.
          const names = nodes.map((n) => n.spec.name);
          const minority = [target.spec.name];
          while (minority.length < Math.floor((names.length - 1) / 2) && rng.int(2) === 1) {
            const other = names.filter((x) => !minority.includes(x));
            minority.push(other[rng.int(other.length)]);
          }
          isolated = minority;
          split_ms = Date.now();
          const reset = partitions.split([minority, names.filter((x) => !minority.includes(x))]);
          say(`  isolated ${minority.join('+')} (${reset} connections reset)`);
          await sleep(holdMs + 1000);
          partitions.heal();
          break;
        }
        case 'corrupt':
          say(`  corrupted ${target.corruptArtifact((n) => rng.int(n)) ?? '(no artifact yet)'}`);
          await sleep(holdMs);
          break;
      }
      counts[kind] = (counts[kind] ?? 0) + 1;
      if (isolated) start_ms = split_ms;
      history.faults.push({ cycle, kind, node: target.spec.name, start_ms, healed_ms: Date.now(), isolated });
    }
    await sleep(2000);
  } finally {
    await workload.stop();
  }
  partitions.heal();
  try {
    return await check(o, nodes, history, counts, say, t0, partitions.refused);
  } finally {
    await partitions.stop();
  }
}

async function check(
  o: Options,
  nodes: ChaosNode[],
  history: History,
  counts: Record<string, number>,
  say: (s: string) => void,
  t0: number,
  refusedConnections: number,
): Promise<number> {
  const [writer] = nodes;
  for (const n of nodes) if (n.stopped) await n.signal('SIGCONT');
  // A last write, acknowledged by a quorum, marks the end of the history.
  const fence = await waitUntil(async () => {
    try {
      const r = await fetch(`${writer.url}/v1/docs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ id: 'fence', text: 'chaos fence tokfence' }]),
        signal: AbortSignal.timeout(8000),
      });
      return r.status === 200 ? ((await r.json()) as { commit_seq: number }) : null;
    } catch {
      return null;
    }
  }, 60_000);
  say(`fence write ${fence ? `acknowledged at commit_seq ${fence.commit_seq}` : 'FAILED'}`);
  // Convergence: the writer built everything, and every node serves the writer's manifest.
  const converged = await waitUntil(async () => {
    const ws = await getJson(`${writer.url}/v1/status`);
    if (!ws || !fence || ws.active_commit_seq_high < fence.commit_seq) return null;
    const all = await Promise.all(nodes.map((n) => getJson(`${n.url}/v1/status`)));
    return all.every((s) => s?.artifact_manifest_id === ws.artifact_manifest_id) ? ws : null;
  }, 90_000);
  say(converged ? `converged on ${converged.generation_id}` : 'NOT converged');
  const acked = history.ackedDocIds();
  const lostByNode: Record<string, string[]> = {};
  for (const n of nodes) {
    const present = new Set<string>();
    const queue = [...acked];
    const probe = async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
        const r = await getJson(`${n.url}/v1/search?q=tok${id}&mode=lexical&k=3&route=local`, 10_000);
        if (r?.hits?.some((h: { doc_id: string }) => h.doc_id === id)) present.add(id);
      }
    };
    await Promise.all(Array.from({ length: 8 }, probe));
    lostByNode[n.spec.name] = lostDocIds(acked, present);
  }
  await Promise.all(nodes.map((n) => n.signal('SIGTERM')));
  const verify: Record<string, number | null> = {};
  for (const n of nodes) {
    const v = spawnSync(process.execPath, [FSMESH_BIN, 'verify', '--data', n.spec.dir], { encoding: 'utf8' });
    verify[n.spec.name] = v.status;
    if (v.status !== 0) say(`verify ${n.spec.name}: ${v.stdout}${v.stderr}`.slice(0, 2000));
  }
  const recoveries = recoveryMs(history);
  const maxRecovery = Math.max(0, ...recoveries.map((r) => r.recovery_ms));
  const lost = new Set(Object.values(lostByNode).flat()).size;
  const unsafeAcks = ackedWhileWriterIsolated(history, writer.spec.name, o.nodes);
  const report = {
    cycles: o.cycles,
    acked: acked.length,
    lost,
    converged: converged !== null,
    max_unavailable_ms: maxUnavailableMs(history.writes),
    max_ack_latency_ms: maxAckLatencyMs(history.writes),
    acked_while_writer_isolated: unsafeAcks.length,
    max_recovery_ms: Number.isFinite(maxRecovery) ? maxRecovery : null,
    recovery_bound_ms: RECOVERY_BOUND_MS,
    unknown: history.writes.filter((w) => w.outcome === 'unknown').length * 3,
    failed: history.writes.filter((w) => w.outcome === 'failed').length * 3,
    duplicate_commit_seqs: duplicateCommitSeqs(history.writes),
    verify_clean: Object.values(verify).every((s) => s === 0),
    verify,
    faults: counts,
    partition_refused_connections: refusedConnections,
    lost_by_node: Object.fromEntries(Object.entries(lostByNode).map(([k, v]) => [k, v.slice(0, 20)])),
    nodes: o.nodes,
    commits_replicas: Math.min(o.commitsReplicas, o.nodes - 1),
    seed: o.seed,
    wall_s: Math.round((Date.now() - t0) / 100) / 10,
    data: o.root,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  const ok =
    fence !== null &&
    lost === 0 &&
    report.converged &&
    report.verify_clean &&
    report.duplicate_commit_seqs.length === 0 &&
    unsafeAcks.length === 0 &&
    maxRecovery <= RECOVERY_BOUND_MS;
  if (ok) fs.rmSync(o.root, { recursive: true, force: true });
  else
    say(
      `FAILED — data kept in ${o.root}; node logs:\n${nodes.map((n) => `--- ${n.spec.name}\n${n.output()}`).join('\n')}`,
    );
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
    process.exit(2);
  },
);
