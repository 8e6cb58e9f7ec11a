/**
 * End-to-end tests of the peer-to-peer cluster: real node processes, libp2p over real TCP on
 * 127.0.0.1, SIGKILL, deleted and corrupted data directories.
 */

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Segment } from '../../src/search/lexical/segment.ts';
import {
  activeAt,
  httpPortOf,
  p2pPortOf,
  restartWriter,
  startCluster,
  startReplica,
  status,
  stopAll,
  waitForManifest,
} from '../helpers/cluster.ts';
import { freePort, http, waitFor } from '../helpers/proc.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

const corpus = (n: number, tag = 'c') =>
  Array.from({ length: n }, (_, i) => ({
    id: `${tag}${i}`,
    title: `Item ${i}`,
    text: `cluster test document ${i} about ${['rivers', 'mountains', 'forests', 'deserts'][i % 4]} and topic ${i % 31}`,
  }));

async function ingest(url: string, docs: unknown[]) {
  const r = await http('POST', `${url}/v1/docs`, docs);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

test('3 nodes: replicas activate the same manifest and answer identically; node loss and corruption heal from peers', async () => {
  const root = tmpDir();
  const c = await startCluster(root);
  try {
    let last = 0;
    for (let i = 0; i < 4; i++) last = (await ingest(c.writer.url, corpus(500, `b${i}-`))).commit_seq;
    const ws = await activeAt(c.writer.url, last);
    for (const r of c.replicas) await waitForManifest(r, ws.artifact_manifest_id);
    const q = `/v1/search?q=${encodeURIComponent('mountains topic 7')}&k=10&as_of_commit_seq=${ws.active_commit_seq_high}`;
    const answers = await Promise.all(
      [c.writer, ...c.replicas].map(async (p) => (await http('GET', `${p.url}${q}`)).json),
    );
    for (const a of answers) {
      assert.equal(a.artifact_manifest_id, ws.artifact_manifest_id);
      assert.deepEqual(a.hits, answers[0].hits);
    }
    // Replicas also hold the writer's capsule log (replicated, chain-checked).
    for (const r of c.replicas) assert.equal((await status(r)).commit_seq_high, last);
    // Replicas found each other (peer exchange), so symbols can come from several peers.
    // Peer exchange runs on the head polls: it may finish after the replicas have activated.
    const rs = await waitFor(
      async () => {
        const st = await status(c.replicas[0]);
        return st.peers.length >= 2 ? st : null;
      },
      20_000,
      'replica 0 to know two peers',
    );
    assert.ok(rs.peers.length >= 2, `replica peers: ${rs.peers}`);
    assert.ok((rs.multiaddrs as string[]).every((a) => a.includes(`/p2p/${rs.peer_id}`)));
    // A fetched generation's repair symbols are encoded in the background; the status counts them down.
    for (const r of c.replicas)
      await waitFor(
        async () => ((await status(r)).repair_symbols_pending === 0 ? true : null),
        20_000,
        'background repair encoding to finish',
      );

    // Node loss (§8.2): delete a replica's data directory while it is down; it rehydrates from peers.
    await c.replicas[1].kill('SIGKILL');
    fs.rmSync(c.dirs[2], { recursive: true, force: true });
    c.replicas[1] = await startReplica(c.dirs[2], c.httpPorts[2], c.p2pPorts[2], [c.writerAddr]);
    await waitForManifest(c.replicas[1], ws.artifact_manifest_id);
    // The flip comes first, then the health machine leaves `bootstrapping`.
    await waitFor(
      async () => ((await status(c.replicas[1])).health === 'healthy' ? true : null),
      10_000,
      'rehydrated replica healthy',
    );
    assert.deepEqual((await http('GET', `${c.replicas[1].url}${q}`)).json.hits, answers[0].hits);
    // Its capsule log follows the flip (§7.2 step 5: the commit stream begins once the generation
    // is active; pushes during the fetch were deferred) and reaches the writer's head.
    await waitFor(
      async () => ((await status(c.replicas[1])).commit_seq_high === last ? true : null),
      10_000,
      'rehydrated replica log caught up with the writer',
    );

    // Corruption (§8.1): flip bytes in an artifact on a replica and remove its local symbols,
    // so local repair is impossible; after a restart the replica repairs from peers and answers correctly.
    await c.replicas[0].kill('SIGTERM');
    const manifestFile = path.join(
      c.dirs[1],
      'objects/manifest',
      ws.artifact_manifest_id.slice(0, 2),
      ws.artifact_manifest_id,
    );
    const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    // Damage a page the query reads: inside the postings of one of its terms. (Segments are read
    // by ranges: a page no query reads is found by the scrubber instead, not at start.)
    const artifactFile = (id: string) => path.join(c.dirs[1], 'objects/artifact', id.slice(0, 2), id);
    const [victim, at] = (() => {
      for (const a of m.lexical_artifacts.filter((x: any) => x.role === 'segment')) {
        const seg = Segment.open(a.object_id, new Uint8Array(fs.readFileSync(artifactFile(a.object_id))));
        const e = seg.terms.get('mountains');
        if (e) return [a.object_id as string, e.offset + Math.floor(e.length / 2)] as const;
      }
      throw new Error('no segment holds the query term');
    })();
    const f = artifactFile(victim);
    const b = fs.readFileSync(f);
    b[at] ^= 0xff;
    fs.writeFileSync(f, b);
    fs.rmSync(path.join(c.dirs[1], 'symbols/artifact', victim.slice(0, 2), victim));
    c.replicas[0] = await startReplica(c.dirs[1], c.httpPorts[1], c.p2pPorts[1], [c.writerAddr]);
    const healed = await waitFor(
      async () => {
        const r = await http('GET', `${c.replicas[0].url}${q}`);
        return r.status === 200 ? r.json : null;
      },
      30_000,
      'replica to answer after peer repair',
    );
    assert.deepEqual(healed.hits, answers[0].hits);
    await c.replicas[0].kill('SIGTERM');
    assert.equal(cli(['verify', '--data', c.dirs[1]]).code, 0);
  } finally {
    await stopAll(c);
  }
});

test('SIGKILL a replica during bootstrap: after restart it completes and matches', async () => {
  const root = tmpDir();
  const c = await startCluster(root, { replicas: 1 });
  try {
    let last = 0;
    for (let i = 0; i < 10; i++) last = (await ingest(c.writer.url, corpus(2000, `k${i}-`))).commit_seq;
    const ws = await activeAt(c.writer.url, last);
    const dir = path.join(root, 'late');
    // Fixed ports below the ephemeral range: the restart below comes back on the same address.
    let late = await startReplica(dir, await freePort(), await freePort(), [c.writerAddr]);
    const [hp, pp] = [httpPortOf(late), p2pPortOf(late)];
    await new Promise((r) => setTimeout(r, 150));
    await late.kill('SIGKILL');
    late = await startReplica(dir, hp, pp, [c.writerAddr]);
    await waitForManifest(late, ws.artifact_manifest_id, 60_000);
    await waitFor(
      async () => ((await status(late)).health === 'healthy' ? true : null),
      10_000,
      'late replica healthy',
    );
    await late.kill('SIGTERM');
    assert.equal(cli(['verify', '--data', dir]).code, 0);
  } finally {
    await stopAll(c);
  }
});

test('quorum durability: commits acknowledged before the writer is SIGKILLed are never lost', async () => {
  const root = tmpDir();
  // Quorum by count needs a cluster key (only key holders can connect, so only they can ack).
  const keyFile = path.join(root, 'swarm.key');
  assert.equal(cli(['cluster-key', keyFile]).code, 0);
  const c = await startCluster(root, {
    writerArgs: ['--durability', 'quorum', '--cluster-key', keyFile],
    replicaArgs: ['--cluster-key', keyFile],
  });
  try {
    await waitFor(
      async () => ((await status(c.writer)).peers.length >= 2 ? true : null),
      20_000,
      'writer to see both replicas',
    );
    const acked: number[] = [];
    for (let i = 0; i < 20; i++) acked.push((await ingest(c.writer.url, corpus(5, `q${i}-`))).commit_seq);
    // An acknowledged quorum commit is on a majority: at least one replica already has it.
    const replicaHighs = await Promise.all(c.replicas.map(async (r) => (await status(r)).commit_seq_high));
    assert.ok(
      Math.max(...replicaHighs) >= acked[acked.length - 1],
      `replicas ${replicaHighs} vs last ack ${acked[acked.length - 1]}`,
    );
    await c.writer.kill('SIGKILL');
    c.writer = await restartWriter(c, ['--durability', 'quorum', '--members', '3', '--cluster-key', keyFile]);
    const st = await activeAt(c.writer.url, acked[acked.length - 1]);
    assert.equal(st.commit_seq_high, acked[acked.length - 1]);
    const r = await http(
      'GET',
      `${c.writer.url}/v1/search?q=${encodeURIComponent('document 4')}&mode=lexical&k=50`,
    );
    assert.ok(r.json.hits.some((h: any) => h.doc_id === 'q19-4'));
  } finally {
    await stopAll(c);
  }
});

test('cluster key: a peer without it cannot connect; an untrusted writer key is rejected', async () => {
  const root = tmpDir();
  const keyFile = path.join(root, 'swarm.key');
  assert.equal(cli(['cluster-key', keyFile]).code, 0);
  const c = await startCluster(root, {
    replicas: 1,
    writerArgs: ['--cluster-key', keyFile],
    replicaArgs: ['--cluster-key', keyFile],
  });
  try {
    const last = (await ingest(c.writer.url, corpus(50))).commit_seq;
    const ws = await activeAt(c.writer.url, last);
    await waitForManifest(c.replicas[0], ws.artifact_manifest_id);
    // No key: the connection is refused, nothing replicates.
    const outsider = await startReplica(path.join(root, 'outsider'), 0, 0, [c.writerAddr]);
    // Right key but a different trusted writer: records are refused.
    const wrongTrust = await startReplica(
      path.join(root, 'wrong-trust'),
      0,
      0,
      [c.writerAddr],
      ['--cluster-key', keyFile, '--trusted-writer', '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'],
    );
    await new Promise((r) => setTimeout(r, 3000));
    const o = await status(outsider);
    assert.equal(o.peers.length, 0);
    assert.equal(o.generation_id, null);
    const w = await status(wrongTrust);
    assert.ok(w.peers.length >= 1, 'it can connect (it has the key)');
    assert.equal(w.generation_id, null, 'but never activates a manifest signed by an untrusted writer');
    await outsider.kill('SIGTERM');
    await wrongTrust.kill('SIGTERM');
  } finally {
    await stopAll(c);
  }
});
