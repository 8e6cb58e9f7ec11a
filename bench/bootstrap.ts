/**
 * Cluster benchmark (issue 7), real processes on 127.0.0.1:
 *  - bootstrap of a fresh replica from 1, 2 and 4 peers for a >= 50,000-document corpus: bytes/s,
 *    as a ratio to a raw TCP transfer of the same bytes between two processes, and the speed-up
 *    from more peers;
 *  - activation (pointer flip) time for generations of 10k and 100k documents (goal: flat);
 *  - commit latency, durability `local` versus `quorum`.
 *   node bench/bootstrap.ts [--docs 50000]
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { defaultEngineConfig, LocalEngine } from '../src/engine/local-engine.ts';
import { nodeFsStorage, seededRandom, systemClock } from '../src/runtime/index.ts';
import { freeLoopbackPort } from '../src/runtime/loopback-port.ts';
import { loadCorpus } from './corpus.ts';
import { getJson, procs, rssOf, startNode, until } from './nodes.ts';
import { arg, benchDir, nowMs, report, round, summarize } from './util.ts';

const N = arg('docs', 50_000);
/** Upload cap of each serving peer in the capped runs, MB/s. */
const CAP_MB = arg('cap-mb', 8);
const start = startNode;
const freePort = freeLoopbackPort;
const j = getJson;
const metric = (text: string, name: string) =>
  Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);

/**
 * MB/s of `bytes` moved as 1 MiB symbol answers from a server process (bench/load/wire-server.ts),
 * eight requests in flight: over the bulk lane, then over libp2p streams (a client without it).
 */
async function wirePath(bytes: number): Promise<{ lane: number; streams: number }> {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const server = spawn(process.execPath, [path.join(here, 'load/wire-server.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(server);
  const info = JSON.parse(
    await new Promise<string>((resolve) => server.stdout!.once('data', (d) => resolve(String(d)))),
  );
  const { Libp2pTransport } = await import('../src/p2p/libp2p-transport.ts');
  const { generateKeyPair } = await import('@libp2p/crypto/keys');
  const { PROTO } = await import('../src/p2p/protocols.ts');
  const run = async (bulk_lane: boolean) => {
    const t = new Libp2pTransport({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      seeds: [],
      bulk_lane,
    });
    await t.start();
    await t.dial(info.addr);
    const req = new TextEncoder().encode('{}');
    const n = Math.ceil(bytes / (256 * 4104));
    let next = 0;
    await t.request(info.peer, PROTO.symbols, req); // connect (and the lane's first connection)
    const t0 = nowMs();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next++ < n) await t.request(info.peer, PROTO.symbols, req, { max_response_bytes: 4 << 20 });
      }),
    );
    const ms = nowMs() - t0;
    await t.stop();
    return (n * 256 * 4104) / 1e6 / (ms / 1000);
  };
  const lane = await run(true);
  const streams = await run(false);
  server.kill('SIGTERM');
  return { lane, streams };
}

/** `node start` arguments of a replica on fresh loopback ports. */
async function replicaArgs(dir: string, extra: string[]): Promise<string[]> {
  const http = `127.0.0.1:${await freePort()}`;
  const listen = `/ip4/127.0.0.1/tcp/${await freePort()}`;
  return ['--data', dir, '--http', http, '--listen', listen, '--role', 'replica', ...extra];
}

try {
  const root = benchDir('bootstrap');
  const docs = loadCorpus(N);
  // 1. Writer + 3 replicas: 4 peers hold the generation.
  const wp = [await freePort(), await freePort()];
  const writerArgs = [
    '--data',
    path.join(root, 'w'),
    '--http',
    `127.0.0.1:${wp[0]}`,
    '--listen',
    `/ip4/127.0.0.1/tcp/${wp[1]}`,
    '--role',
    'writer',
    '--members',
    '1',
    '--build-interval-ms',
    '1000000',
  ];
  // One build once everything is in (the corpus arrives in batches of 5,000).
  const writer = await start([...writerArgs, '--batch-max-commits', String(Math.ceil(docs.length / 5000))]);
  const seed = writer.ready.multiaddrs[0];
  const holders = [writer];
  const holderArgs: string[][] = [writerArgs];
  for (let i = 0; i < 3; i++) {
    const args = await replicaArgs(path.join(root, `h${i}`), ['--seed', seed]);
    holderArgs.push(args);
    holders.push(await start(args));
  }
  for (let i = 0; i < docs.length; i += 5000)
    await j(`${writer.url}/v1/docs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(docs.slice(i, i + 5000)),
    });
  // Build one generation over everything (the build trigger is set far away above).
  const { spawnSync: _s } = await import('node:child_process');
  void _s;
  const ws = await until(async () => {
    const s = await j(`${writer.url}/v1/status`);
    return s.active_commit_seq_high >= Math.ceil(docs.length / 5000) ? s : null;
  }).catch(async () => null);
  let manifestId = ws?.artifact_manifest_id as string | undefined;
  if (!manifestId) throw new Error('writer did not build');
  for (const h of holders.slice(1))
    await until(async () =>
      (await j(`${h.url}/v1/status`)).artifact_manifest_id === manifestId ? true : null,
    );
  const mf = JSON.parse(
    fs.readFileSync(path.join(root, 'w/objects/manifest', manifestId.slice(0, 2), manifestId), 'utf8'),
  );
  const totalBytes = [...mf.lexical_artifacts, ...mf.vector_artifacts].reduce(
    (n: number, a: any) => n + a.size_bytes,
    0,
  );
  // 2. Fresh replicas bootstrapping from 1, 2, 4 peers (uncapped), then from 1 and 4 peers whose
  //    uploads are capped (--serve-rate-limit): a WAN-like link, where more peers should add up.
  const bootstrapFrom = async (k: number, tag: string) => {
    // Holders that just fetched a generation encode its repair symbols in the background; a
    // bootstrap measured meanwhile measures that encoding on the same two cores.
    for (const h of holders)
      await until(async () => ((await j(`${h.url}/v1/status`)).repair_symbols_pending === 0 ? true : null));
    const t0 = nowMs();
    const r = await start(
      await replicaArgs(path.join(root, `boot-${tag}-${k}`), [
        '--fetch-peers',
        String(k),
        ...holders.flatMap((h) => ['--seed', h.ready.multiaddrs[0]]),
      ]),
    );
    await until(async () =>
      (await j(`${r.url}/v1/status`)).artifact_manifest_id === manifestId ? true : null,
    );
    const wall = nowMs() - t0;
    // The replica records a bootstrap just after the flip (the status shows the new generation a
    // moment before, while the flip's garbage collection runs): give it up to 2 s. If its commit
    // replay (§7.3, running beside the fetch) got there first, there is no fetch time to report.
    let m = '';
    for (let i = 0; i < 40; i++) {
      m = await (await fetch(`${r.url}/metrics`)).text();
      if (metric(m, 'distributed_snapshot_bootstrap_ms_count') > 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const fetched = metric(m, 'distributed_snapshot_bootstrap_ms_count') > 0;
    const ms = fetched ? metric(m, 'distributed_snapshot_bootstrap_ms_sum') : Number.NaN;
    // The replica's memory once serving (/proc VmRSS) and its peak during the bootstrap (VmHWM).
    const mem = rssOf(r.child.pid);
    r.child.kill('SIGTERM');
    return {
      peers: k,
      via: fetched ? 'symbols fetched' : 'commit replay finished first',
      bootstrap_ms: round(ms, 1),
      wall_ms_including_process_start: round(wall, 0),
      mb_per_s: round(totalBytes / 1e6 / (ms / 1000), 1),
      replica_rss_mb: mem?.rss_mb ?? null,
      replica_peak_rss_mb: mem?.peak_rss_mb ?? null,
    };
  };
  const runs: any[] = [];
  for (const k of [1, 2, 4]) runs.push(await bootstrapFrom(k, 'open'));
  // Restart the four holders with an upload cap (same data, same identities, same ports).
  for (const h of holders) {
    h.child.kill('SIGTERM');
    await new Promise((r) => h.child.once('exit', r));
  }
  const capped: any[] = [];
  const restarted = [];
  for (const args of holderArgs) restarted.push(await start([...args, '--serve-rate-limit', String(CAP_MB)]));
  for (const h of restarted.slice(1))
    await until(async () => ((await j(`${h.url}/v1/status`)).peers.length >= 1 ? true : null));
  holders.splice(0, holders.length, ...restarted);
  for (const k of [1, 4]) capped.push(await bootstrapFrom(k, 'capped'));
  // 3. Raw TCP baseline: the same number of bytes between two processes on loopback.
  const rawServer = spawn(
    process.execPath,
    [
      '-e',
      `const n=require('net');const b=Buffer.alloc(${totalBytes},7);n.createServer(s=>{s.end(b)}).listen(0,'127.0.0.1',function(){console.log(this.address().port)})`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  procs.push(rawServer);
  const rawPort = await new Promise<number>((resolve) =>
    rawServer.stdout!.once('data', (d) => resolve(Number(String(d).trim()))),
  );
  // Best of three transfers: one transfer of ~90 MB measured 326-1,200 MB/s across runs on this
  // machine, and the fastest is the baseline that is hardest to come near.
  const rawRuns: number[] = [];
  for (let i = 0; i < 3; i++)
    rawRuns.push(
      await new Promise<number>((resolve) => {
        const t0 = nowMs();
        net
          .connect(rawPort, '127.0.0.1')
          .on('data', () => {})
          .on('end', () => resolve(nowMs() - t0));
      }),
    );
  const rawMs = Math.min(...rawRuns);
  const rawMbps = totalBytes / 1e6 / (rawMs / 1000);
  const wire = await wirePath(totalBytes);
  // 4. Commit latency: quorum (writer + 2 replicas) versus local. Quorum by count needs a cluster
  //    key (only key holders can connect, so only they can acknowledge).
  const keyFile = path.join(root, 'cluster.key');
  if (!fs.existsSync(keyFile))
    spawnSync(process.execPath, [path.resolve('bin/fsmesh.js'), 'cluster-key', keyFile], { stdio: 'ignore' });
  const keyed = ['--cluster-key', keyFile];
  const lat = async (durability: 'local' | 'quorum') => {
    const p = [await freePort(), await freePort()];
    const w = await start([
      '--data',
      path.join(root, `lat-${durability}`),
      '--http',
      `127.0.0.1:${p[0]}`,
      '--listen',
      `/ip4/127.0.0.1/tcp/${p[1]}`,
      '--role',
      'writer',
      '--members',
      '3',
      '--durability',
      durability,
      ...keyed,
    ]);
    const reps = [];
    for (let i = 0; i < 2; i++)
      reps.push(
        await start([
          '--data',
          path.join(root, `lat-${durability}-r${i}`),
          '--http',
          `127.0.0.1:${await freePort()}`,
          '--listen',
          `/ip4/127.0.0.1/tcp/${await freePort()}`,
          '--role',
          'replica',
          '--seed',
          w.ready.multiaddrs[0],
          ...keyed,
        ]),
      );
    await until(async () => ((await j(`${w.url}/v1/status`)).peers.length >= 2 ? true : null));
    const samples: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = nowMs();
      await j(`${w.url}/v1/docs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ id: `l${i}`, text: 'latency probe' }]),
      });
      samples.push(nowMs() - t0);
    }
    for (const x of [w, ...reps]) x.child.kill('SIGTERM');
    return summarize(samples);
  };
  const local = await lat('local');
  const quorum = await lat('quorum');
  // 5. Activation (pointer flip) at 10k and 100k documents, in process.
  const flip = async (n: number) => {
    const e = await LocalEngine.open(
      { clock: systemClock, random: seededRandom(1), storage: nodeFsStorage(benchDir(`flip-${n}`)) },
      defaultEngineConfig({ hnsw_min_rows: 1e9 }),
    );
    for (let i = 0; i < n; i += 10_000)
      await e.ingest(
        Array.from({ length: Math.min(10_000, n - i) }, (_, k) => ({
          op: 'upsert' as const,
          doc_id: `f${i + k}`,
          text: docs[(i + k) % docs.length].text,
        })),
      );
    const a = (await e.buildCandidate())!;
    await e.generations.activate(a.manifest_id);
    await e.ingest([{ op: 'upsert', doc_id: 'one-more', text: docs[0].text }]);
    const b = (await e.buildCandidate())!;
    const warm = await e.verifyAndWarm(b.manifest_id);
    // Flip between the two generations (forward, then back as a rollback) many times: one flip
    // takes about a millisecond (an fsync of the pointer), so a single one measures the machine (a
    // GC pause, a slow fsync) more than it; the median of 7 still moved 0.73–1.1 ms between runs.
    const times: number[] = [];
    for (let i = 0; i < 31; i++) {
      const t0 = nowMs();
      await e.generations.activate(i % 2 === 0 ? b.manifest_id : a.manifest_id, { allowOlder: true });
      times.push(nowMs() - t0);
    }
    warm.release();
    a.release();
    b.release();
    await e.close();
    return times.sort((x, y) => x - y)[15];
  };
  const flip10k = await flip(10_000);
  const flip100k = await flip(100_000);
  report('bootstrap', {
    corpus_docs: docs.length,
    generation_bytes: totalBytes,
    raw_tcp_mb_per_s: round(rawMbps, 1),
    raw_tcp_runs_mb_per_s: rawRuns.map((ms) => round(totalBytes / 1e6 / (ms / 1000), 1)),
    // The wire path alone (no disk, no verify, no activation): the same bytes as 1 MiB symbol
    // answers between two processes, over the bulk lane and over libp2p streams.
    wire: {
      bulk_lane_mb_per_s: round(wire.lane, 1),
      libp2p_streams_mb_per_s: round(wire.streams, 1),
      bulk_lane_ratio_to_raw_tcp: round(wire.lane / rawMbps, 3),
      libp2p_streams_ratio_to_raw_tcp: round(wire.streams / rawMbps, 3),
    },
    bootstrap: runs.map((r) => ({ ...r, ratio_to_raw_tcp: round(r.mb_per_s / rawMbps, 3) })),
    speedup_2_peers: round(runs[0].bootstrap_ms / runs[1].bootstrap_ms, 2),
    speedup_4_peers: round(runs[0].bootstrap_ms / runs[2].bootstrap_ms, 2),
    capped_upload_mb_per_s_per_peer: CAP_MB,
    capped: capped,
    capped_speedup_4_peers: round(capped[0].bootstrap_ms / capped[1].bootstrap_ms, 2),
    commit_latency: { local, quorum, quorum_over_local_p50: round(quorum.p50_ms / local.p50_ms, 2) },
    activation_flip_ms: {
      docs_10k: round(flip10k, 2),
      docs_100k: round(flip100k, 2),
      ratio: round(flip100k / flip10k, 2),
    },
  });
  manifestId = undefined;
} finally {
  for (const p of procs) p.kill('SIGTERM');
}
void spawnSync;
