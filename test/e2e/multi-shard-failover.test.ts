/**
 * Failover per shard (docs/sharding.md), real processes: the writer of shard 1 is SIGKILLed; the
 * operator promotes another node for shard 1 only (`fsmesh promote --shard 1`); writes through any
 * node reach the new writer for shard 1 while shards 0 and 2 keep theirs; nothing acknowledged is
 * lost.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { http, type NodeProc, waitFor } from '../helpers/proc.ts';
import { startNarrowNode, startShardedCluster, waitShardWriters } from '../helpers/sharded-cluster.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

const procs: NodeProc[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
});

const docs = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ id: `${tag}${i}`, text: `sharded failover ${tag} document ${i}` }));

/** A write through `url`, retried while a writer is still confirming its epoch (429) or unreachable. */
async function write(url: string, batch: unknown[], key: string) {
  return waitFor(
    async () => {
      const r = await http('POST', `${url}/v1/docs`, batch, { 'idempotency-key': key });
      return r.status === 200 ? r.json : null;
    },
    30_000,
    `write ${key} through ${url}`,
  );
}

test('promote a node for one shard: its writes move, the other shards keep their writers', {
  timeout: 120_000,
}, async () => {
  const root = tmpDir('fsmesh-shard-failover-');
  const adminFile = path.join(root, 'admin.key');
  const admin = cli(['admin-key', adminFile]);
  assert.equal(admin.code, 0, admin.stderr);
  const [a, b, c] = await startShardedCluster(procs, ['--admin-pub', admin.json.public_key]);
  // A fourth node carries shard 0 only and follows shards 1 and 2 (--replicate-shards 0).
  const narrow = await startNarrowNode(procs, [a, b, c], '0', ['--admin-pub', admin.json.public_key]);
  await waitShardWriters([a, b, c]);
  const first = await write(c.url, docs(60, 'a'), 'first');
  assert.deepEqual(Object.keys(first.commit_seqs).sort(), ['0', '1', '2']);
  // Every node holds shard 1's commits before its writer dies.
  await waitFor(
    async () =>
      (await http('GET', `${a.url}/v1/status`)).json.shards['1'].commit_seq_high >= first.commit_seqs['1'],
    30_000,
    'node a holds shard 1',
  );
  await b.kill('SIGKILL');

  const noShard = cli(['promote', '--http', a.url, '--admin-key', adminFile]);
  assert.equal(noShard.code, 2);
  assert.match(noShard.stderr, /--shard K is required: the node carries 3 shards/);
  const p = cli(['promote', '--http', a.url, '--admin-key', adminFile, '--shard', '1']);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(p.json.writer, a.ready.peer_id);
  assert.equal(p.json.commit_seq_high, first.commit_seqs['1'], 'exactly the acknowledged history of shard 1');

  const st = (await http('GET', `${a.url}/v1/status`)).json;
  assert.equal(st.shards['0'].role, 'writer');
  assert.equal(st.shards['1'].role, 'writer', 'node a now writes shard 1 too');
  assert.equal(st.shards['2'].writer, c.ready.peer_id, 'shard 2 keeps its writer');
  // Through node c: its shard-1 replica follows the handover and forwards there.
  const second = await write(c.url, docs(60, 'b'), 'second');
  assert.ok(second.commit_seqs['1'] > first.commit_seqs['1']);
  // The node that only follows shard 1 forwards its part to the new writer too.
  const third = await write(narrow.url, docs(30, 'c'), 'third');
  assert.ok(third.commit_seqs['1'] > second.commit_seqs['1'], 'shard 1 committed by its new writer');
  assert.equal((await http('GET', `${narrow.url}/v1/status`)).json.shards['1'].writer, a.ready.peer_id);
  const r = await http(
    'GET',
    `${c.url}/v1/search?${new URLSearchParams({ q: 'sharded failover', k: '200', mode: 'lexical', min_commit_seqs: JSON.stringify(second.commit_seqs), timeout_ms: '20000' })}`,
  );
  assert.equal(r.status, 200, r.text);
  const ids = new Set(r.json.hits.map((h: { doc_id: string }) => h.doc_id));
  for (const d of [...docs(60, 'a'), ...docs(60, 'b')]) assert.ok(ids.has(d.id), `${d.id} is found`);
});
