/**
 * A multi-shard node under a hostile peer (docs/sharding.md, docs/protocols.md): forged or
 * malformed `write` and `shard-query` requests over real libp2p are refused with a named error and
 * commit nothing; forged answers (statistics, lists) are refused by the caller before use.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { type ComposedShardedNode, composeShardedNode } from '../../src/compose/compose-sharded-node.ts';
import { throwIfError } from '../../src/p2p/framing.ts';
import { peerIdOf } from '../../src/p2p/identity.ts';
import { jsonFrame } from '../../src/p2p/protocols.ts';
import { requestShardLists, requestShardStats } from '../../src/p2p/shard-rpc.ts';
import type { Transport } from '../../src/runtime/index.ts';
import { hostilePeer } from '../helpers/hostile-peer.ts';
import { freePort } from '../helpers/proc.ts';
import { tmpDir } from '../helpers/tmp.ts';

const nodes: ComposedShardedNode[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c().catch(() => {});
  for (const n of nodes) await n.stop().catch(() => {});
});

async function ask(t: Transport, peer: string, protocol: string, body: unknown): Promise<unknown> {
  const frames = await t.request(peer, protocol, jsonFrame(body), { timeout_ms: 10_000 });
  throwIfError(frames[0]);
  return JSON.parse(new TextDecoder().decode(frames[0]));
}

test('hostile requests to a multi-shard node are refused and commit nothing', {
  timeout: 60_000,
}, async () => {
  const key = await generateKeyPair('Ed25519');
  const port = await freePort();
  const n = await composeShardedNode({
    shards: 2,
    writer_of: 0,
    node: { data_dir: tmpDir('fsmesh-adv-shards-'), node_name: 'a', build: { build_interval_ms: 20 } },
    cluster: { listen: [`/ip4/127.0.0.1/tcp/${port}`], private_key: key, cluster: 'adv' },
  });
  nodes.push(n);
  const addr = `/ip4/127.0.0.1/tcp/${port}/p2p/${peerIdOf(key)}`;
  const evil = await hostilePeer();
  await evil.t.start();
  closers.push(() => evil.t.stop());
  await evil.t.dial(addr);
  const self = n.peer_id;
  const write = '/fsmesh/shard/0/write/1.0.0';
  const query = '/fsmesh/shard/0/shard-query/1.0.0';

  await assert.rejects(ask(evil.t, self, write, { ops: 'all of them' }), /ops: must be an array/);
  await assert.rejects(ask(evil.t, self, write, { ops: [] }), /shards: the sender's shard count/);
  await assert.rejects(
    ask(evil.t, self, write, { shards: 2, ops: [{ op: 'upsert', doc_id: 'x', text: 42 }] }),
    /invalid_input|text/,
  );
  // Shard 1 is written elsewhere: this node refuses to commit it.
  await assert.rejects(
    ask(evil.t, self, '/fsmesh/shard/1/write/1.0.0', {
      shards: 2,
      ops: [{ op: 'upsert', doc_id: 'y', text: 'hi' }],
    }),
    /does not write shard 1/,
  );
  // A part split by another shard count, or holding a document of another shard ("a" is shard 1's).
  await assert.rejects(
    ask(evil.t, self, write, { shards: 3, ops: [{ op: 'upsert', doc_id: 'x', text: 'hi' }] }),
    /splits by 3 shards, this collection has 2/,
  );
  await assert.rejects(
    ask(evil.t, self, write, { shards: 2, ops: [{ op: 'upsert', doc_id: 'a', text: 'misplaced' }] }),
    /"a" does not belong to shard 0/,
  );
  // A shard the collection does not have is not even a protocol here.
  await assert.rejects(ask(evil.t, self, '/fsmesh/shard/7/write/1.0.0', { ops: [] }));
  assert.equal(n.set.shard(0).node.engine.log.commitSeqHigh, 0, 'nothing committed');

  await assert.rejects(ask(evil.t, self, query, { phase: 'everything' }), /phase: must be/);
  await assert.rejects(
    ask(evil.t, self, query, { phase: 'stats', search: { q: 'x'.repeat(5000) } }),
    /search\.q/,
  );
  const manyTerms = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`t${i}`, 1]));
  await assert.rejects(
    ask(evil.t, self, query, {
      phase: 'lists',
      search: { q: 'a' },
      generation_id: 'gen-1',
      stats: { live_docs: 10, len_sum: 10, df: manyTerms },
    }),
    /more than 1024 terms/,
  );
  await assert.rejects(
    ask(evil.t, self, query, {
      phase: 'lists',
      search: { q: 'a' },
      generation_id: 'gen-1',
      stats: { live_docs: 1, len_sum: 1, df: { a: 99 } },
    }),
    /out of range/,
  );
  // A batch whose part for one shard cannot be one commit is refused whole, before any part commits.
  const big = 'x'.repeat(1_000_000);
  const huge = Array.from({ length: 12 }, (_, i) => ({ id: `c${i}`, text: big }));
  await assert.rejects(
    n.set.ingest(huge),
    /part of the batch is ~\d+ bytes, over the \d+-byte limit of one commit; nothing committed/,
  );
  assert.equal(n.set.shard(0).node.engine.log.commitSeqHigh, 0, 'nothing committed');
  // The node still works for honest writes afterwards.
  const ack = await n.set.ingest([{ id: 'ok', text: 'still fine' }]);
  assert.ok(Object.values(ack.commit_seqs).every((s) => s === 1));
});

/** A transport whose peer answers whatever the test says (the caller's checks are under test). */
function answering(body: unknown): Transport {
  return {
    request: async () => [jsonFrame(body)],
  } as unknown as Transport;
}

test('forged shard answers are refused before use', async () => {
  const search = { q: 'a', k: 10 };
  await assert.rejects(
    requestShardStats(
      answering({ generation_id: '../etc', artifact_manifest_id: 'x', commit_seq_high: 1 }),
      'p',
      search,
      {},
      1000,
    ),
    /malformed shard statistics/,
  );
  const good = { generation_id: 'gen-1', artifact_manifest_id: 'a'.repeat(64), commit_seq_high: 3 };
  await assert.rejects(
    requestShardStats(
      answering({ ...good, stats: { live_docs: 2, len_sum: 4, df: { a: 3 } } }),
      'p',
      search,
      {},
      1000,
    ),
    /out of range/,
  );
  await assert.rejects(
    requestShardStats(
      answering({ ...good, stats: { live_docs: -1, len_sum: 4, df: {} } }),
      'p',
      search,
      {},
      1000,
    ),
    /non-negative/,
  );
  const stats = { live_docs: 1, len_sum: 1, df: {} };
  const long = Array.from({ length: 5000 }, (_, i) => ({ doc_id: `d${i}`, score: 1 }));
  await assert.rejects(
    requestShardLists(answering({ lexical: long }), 'p', search, 'gen-1', stats, 1000),
    /at most k/,
  );
  await assert.rejects(
    requestShardLists(
      answering({ vector: [{ doc_id: 'd', score: null }] }),
      'p',
      search,
      'gen-1',
      stats,
      1000,
    ),
    /\{doc_id, score\}/,
  );
  const ok = await requestShardLists(
    answering({ lexical: [{ doc_id: 'd', score: 1.5, extra: 'x' }] }),
    'p',
    search,
    'gen-1',
    stats,
    1000,
  );
  assert.deepEqual(ok.lexical, [{ doc_id: 'd', score: 1.5 }]);
});
