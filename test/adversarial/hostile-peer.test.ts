/**
 * Hostile peers (issue: secure by default): a raw libp2p peer speaking the documented protocols
 * attacks real nodes over TCP on 127.0.0.1. Each attack used to work; the node must stay correct
 * and responsive.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FsmeshError } from '../../src/core/errors.ts';
import { jsonFrame, PROTO, parseJsonFrame, topics } from '../../src/p2p/protocols.ts';
import { encodeSignedRecord, signRecord } from '../../src/p2p/records.ts';
import { addrOf, hostilePeer, realNode, until } from '../helpers/hostile-peer.ts';

test('symbols requests cannot make a node expand huge ranges', async () => {
  const w = await realNode('writer');
  const a = await hostilePeer([addrOf(w)]);
  await a.t.start();
  try {
    await w.node.ingest([{ id: 'a', text: 'hello' }]);
    await until(
      () => w.node.status().generation_id !== null && a.t.peers().length > 0,
      10_000,
      'gen-1 and a connection',
    );
    const m = await w.node.engine.generations.loadManifest(w.node.status().artifact_manifest_id!);
    const object_id = m.lexical_artifacts[0].object_id;
    for (const ranges of [[[0, 1e7]], [[0, 1e308]], Array.from({ length: 1000 }, () => [0, 1])]) {
      await assert.rejects(
        a.t.request(
          w.cluster!.transport.peerId,
          PROTO.symbols,
          jsonFrame({ object_id, kind: 'artifact', ranges }),
          { timeout_ms: 5000 },
        ),
        (err: FsmeshError) => err.code === 'invalid_input',
      );
    }
    assert.equal((await w.node.search({ q: 'hello' })).hits.length, 1, 'still serving');
  } finally {
    await a.t.stop();
    await w.stop();
  }
});

test('quorum acks: a non-member, or a member lying about commit_seq, never acknowledges a write', async () => {
  const a = await hostilePeer();
  // The attacker answers every push with the largest commit_seq there is.
  a.t.handle(PROTO.replicate, async () => [jsonFrame({ ok: true, commit_seq: Number.MAX_SAFE_INTEGER })]);
  await a.t.start();
  for (const member_ids of [undefined, [a.peerId]]) {
    const w = await realNode('writer', {
      durability: 'quorum',
      members: 2,
      member_ids,
      quorum_timeout_ms: 1500,
      seeds: [],
    });
    try {
      await a.t.dial(addrOf(w));
      await until(() => w.cluster!.transport.peers().includes(a.peerId), 10_000, 'attacker connected');
      await assert.rejects(w.node.ingest([{ id: 'x', text: 'needs a real replica' }]), /quorum not reached/);
      await assert.rejects(w.node.ingest([{ id: 'y', text: 'still needs one' }]), /quorum not reached/);
    } finally {
      await w.stop();
    }
  }
  await a.t.stop();
});

test('trust on first use: a stranger claiming to be the writer is never pinned and cannot push commits', async () => {
  const r = await realNode('replica', { seeds: [] });
  const a = await hostilePeer([addrOf(r)]);
  const forged = await signRecord(a.key, {
    format: 1,
    cluster: 'adv',
    shard: 'default',
    generation_id: 'gen-1',
    generation_seq: 1,
    artifact_manifest_id: 'ab'.repeat(32),
    commit_seq_high: 5,
    writer: a.peerId,
  });
  a.t.handle(PROTO.head, async () => [
    jsonFrame({ commit_seq_high: 5, record: forged, writer: a.peerId, peers: [] }),
  ]);
  await a.t.start();
  try {
    await until(() => a.t.peers().length > 0, 10_000, 'connection');
    await a.publishTo(topics('adv', 'default').manifests, encodeSignedRecord(forged)).catch(() => []);
    await new Promise((res) => setTimeout(res, 1500)); // several head polls
    assert.equal(r.cluster!.status().trusted_writer, null, 'nobody pinned');
    const push = a.t.request(r.cluster!.transport.peerId, PROTO.replicate, new Uint8Array(200), {
      timeout_ms: 5000,
    });
    await assert.rejects(push, /not the trusted writer/);
    assert.equal(r.node.status().commit_seq_high, 0);
  } finally {
    await a.t.stop();
    await r.stop();
  }
});

test('forged heads on gossip are attributed to their sender and ignored', async () => {
  const w = await realNode('writer');
  const r = await realNode('replica', { seeds: [addrOf(w)] });
  const a = await hostilePeer([addrOf(r)]);
  a.t.subscribe(topics('adv', 'default').heads, () => {});
  await a.t.start();
  const events: string[] = [];
  r.node.events.on((e) => events.push(e.event));
  try {
    await w.node.ingest([{ id: 'a', text: 'hello' }]);
    await until(() => r.node.status().generation_id === 'gen-1', 15_000, 'replica gen-1');
    const forged = jsonFrame({
      commit_seq_high: Number.MAX_SAFE_INTEGER,
      writer: w.cluster!.transport.peerId,
    });
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      reached = (await a.publishTo(topics('adv', 'default').heads, forged)).includes(
        r.cluster!.transport.peerId,
      );
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(reached, 'the forged head was delivered to the replica');
    await new Promise((res) => setTimeout(res, 500));
    assert.ok((r.cluster!.status().writer_commit_seq_high as number) < 100);
    assert.ok(!events.includes('commit_lag_alert'));
  } finally {
    await a.t.stop();
    await r.stop();
    await w.stop();
  }
});

test('a hostile symbol header or a silent peer does not stop a replica from syncing', async () => {
  const w = await realNode('writer');
  const a = await hostilePeer([addrOf(w)]);
  let asked = 0;
  a.t.handle(PROTO.symbols, async (req) => {
    asked++;
    const r = parseJsonFrame<{ object_id: string }>(req, 'x');
    return [
      jsonFrame({
        length: 1 << 30,
        symbol_size: 1,
        overhead_ratio: 0,
        max_block_symbols: 1,
        min_repair_per_block: 0,
        source_symbols: 1 << 30,
        repair_symbols: 0,
        object_id: r.object_id,
      }),
    ];
  });
  a.t.handle(PROTO.head, () => new Promise(() => {})); // never answers
  a.t.handle(PROTO.manifest, () => new Promise(() => {}));
  await a.t.start();
  const r = await realNode('replica', {
    seeds: [addrOf(w), a.t.multiaddrs().map((x) => `${x}/p2p/${a.peerId}`)[0]],
  });
  try {
    // Connected to both before there is anything to fetch: the fetch asks every peer.
    await until(() => r.cluster!.transport.peers().length >= 2, 15_000, 'replica connected to both');
    await w.node.ingest(Array.from({ length: 50 }, (_, i) => ({ id: `d${i}`, text: `document ${i} words` })));
    await until(() => w.node.status().generation_id !== null, 10_000, 'writer generation');
    await until(
      () => r.node.status().artifact_manifest_id === w.node.status().artifact_manifest_id,
      30_000,
      'replica sync',
    );
    assert.ok(asked > 0, 'the replica did ask the hostile peer');
    assert.equal((await r.node.search({ q: 'document 7', mode: 'lexical' })).hits[0].doc_id, 'd7');
  } finally {
    await r.stop();
    await a.t.stop();
    await w.stop();
  }
});

test('malformed symbol run frames fail the range, which another peer then serves', async () => {
  const w = await realNode('writer');
  const a = await hostilePeer([addrOf(w)]);
  let rangesAsked = 0;
  a.t.handle(PROTO.symbols, async (req) => {
    const r = parseJsonFrame<{ ranges: [number, number][] }>(req, 'x');
    // The real header (proxied from the writer), so the replica does fetch ranges from us...
    const [header] = await a.t.request(
      w.cluster!.transport.peerId,
      PROTO.symbols,
      jsonFrame({ ...r, ranges: [] }),
    );
    if (r.ranges.length === 0) return [header];
    rangesAsked++;
    // ...then runs that are not whole symbols, and a run id past every range.
    const partial = new Uint8Array(4 + 4096 + 17).fill(0xee);
    new DataView(partial.buffer).setUint32(0, r.ranges[0][0], true);
    return [header, partial, new Uint8Array(4 + 4096).fill(0xff)];
  });
  await a.t.start();
  const r = await realNode('replica', {
    seeds: [addrOf(w), a.t.multiaddrs().map((x) => `${x}/p2p/${a.peerId}`)[0]],
  });
  try {
    await until(() => r.cluster!.transport.peers().length >= 2, 15_000, 'replica connected to both');
    await w.node.ingest(
      Array.from({ length: 3000 }, (_, i) => ({
        id: `d${i}`,
        text: `document ${i} ${'words '.repeat(i % 40)}`,
      })),
    );
    await until(() => w.node.status().generation_id !== null, 10_000, 'writer generation');
    await until(
      () => r.node.status().artifact_manifest_id === w.node.status().artifact_manifest_id,
      30_000,
      'replica sync',
    );
    assert.ok(rangesAsked > 0, 'the replica did ask the hostile peer for symbols');
    assert.equal((await r.node.search({ q: 'document 7', mode: 'lexical' })).hits[0].doc_id, 'd7');
  } finally {
    await r.stop();
    await a.t.stop();
    await w.stop();
  }
});

test('an inbound stream that never finishes its request frame is cut off', async () => {
  const w = await realNode('writer', { inbound_request_timeout_ms: 300 });
  const a = await hostilePeer([addrOf(w)]);
  await a.t.start();
  try {
    await until(() => a.t.peers().length > 0, 10_000, 'connection');
    const s = await a.rawStream(w.cluster!.transport.peerId, PROTO.head);
    const head = new Uint8Array(12);
    new DataView(head.buffer).setUint32(0, 8 << 20, true); // announces 8 MiB, sends 8 bytes
    s.send(head);
    let closed = false;
    const reading = (async () => {
      try {
        for await (const _ of s) {
        }
      } catch {}
      closed = true;
    })();
    await until(() => closed, 10_000, 'the node to cut the stream');
    await reading;
  } finally {
    await a.t.stop();
    await w.stop();
  }
});
