/**
 * `fsmesh promote` against a node that answers like a candidate would (a stand-in HTTP server on
 * 127.0.0.1): a prepare refused for want of a majority is asked again with the same ticket, so the
 * new writer's epoch stays e+1; a member that promised another candidate makes it sign a new,
 * higher one. (Seen in a fresh-clone run: a replica just resumed answered the first prepare too
 * late, the command signed epoch 2, and the failover test expecting epoch 1 failed.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { CLI, tmpDir } from '../helpers/tmp.ts';

type Refusal = { status: number; code: string; message: string };

/** A candidate node: refuses the first prepares as told, then plans the epoch of the ticket. */
async function standInCandidate(refusals: Refusal[]) {
  const prepared: number[] = [];
  let promised = 0;
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : null;
      if (req.url === '/v1/status')
        return reply(200, {
          peer_id: 'candidate',
          cluster: 'c',
          shard: 'default',
          epoch: 0,
          promised_epoch: promised,
        });
      if (req.url === '/v1/admin/promote/prepare') {
        const epoch = body.ticket.ticket.epoch as number;
        prepared.push(epoch);
        promised = Math.max(promised, epoch); // the candidate promises its own ticket first
        const r = refusals.shift();
        if (r) return reply(r.status, { error: { code: r.code, message: r.message } });
        return reply(200, {
          cluster: 'c',
          shard: 'default',
          writer: 'candidate',
          epoch,
          commit_seq_high: 3,
          head_marker_id: 'ab'.repeat(32),
          members_consulted: 1,
        });
      }
      if (req.url === '/v1/admin/promote')
        return reply(200, { writer: body.handover.writer, epoch: body.handover.epoch, commit_seq_high: 3 });
      reply(404, { error: { code: 'not_found', message: req.url } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, prepared, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** `fsmesh promote` as a process (asynchronously: the stand-in answers from this one). */
async function promote(url: string): Promise<{ code: number; json: any; stderr: string }> {
  const keyFile = path.join(tmpDir(), 'admin.key');
  fs.writeFileSync(keyFile, privateKeyToProtobuf(await generateKeyPair('Ed25519')));
  const child = spawn(process.execPath, [CLI, 'promote', '--http', url, '--admin-key', keyFile]);
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  return { code, json: out ? JSON.parse(out) : null, stderr };
}

const noMajority: Refusal = {
  status: 503,
  code: 'unavailable',
  message:
    'promotion needs 1 other member(s) of 3 that promised epoch 1 and whose logs this node holds, 0 of 1 promising: a majority must confirm the history',
};

test('promote: no majority yet, the same ticket again; the epoch stays e+1', async () => {
  const c = await standInCandidate([noMajority, noMajority]);
  try {
    const done = await promote(c.url);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(c.prepared, [1, 1, 1], 'the same epoch asked three times');
    assert.equal(done.json.epoch, 1);
  } finally {
    c.server.close();
  }
});

test('promote: a member promised another candidate, a new ticket above it', async () => {
  const c = await standInCandidate([
    {
      status: 409,
      code: 'conflict',
      message: 'prepare ticket: already promised epoch 1 to someone-else',
    },
  ]);
  try {
    const done = await promote(c.url);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(c.prepared, [1, 2]);
    assert.equal(done.json.epoch, 2);
  } finally {
    c.server.close();
  }
});

test('promote: any other refusal is the answer, asked once', async () => {
  const c = await standInCandidate([
    { status: 409, code: 'conflict', message: 'this node does not know the current writer yet' },
  ]);
  try {
    const done = await promote(c.url);
    assert.notEqual(done.code, 0);
    assert.match(done.stderr, /does not know the current writer/);
    assert.deepEqual(c.prepared, [1]);
  } finally {
    c.server.close();
  }
});
