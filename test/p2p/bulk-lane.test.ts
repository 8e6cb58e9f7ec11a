/**
 * The bulk lane (src/p2p/bulk-lane.ts) between real libp2p nodes on 127.0.0.1: large answers
 * travel over TLS-PSK, attributed to the peer the ticket was issued to over libp2p; nothing gets
 * through the lane without a ticket, a ticket opens one connection, and a peer whose lane cannot be
 * reached is asked over libp2p streams as before. A pooled answer frame goes back to its pool once
 * the lane has written it: an object fetched from reused frames is byte for byte the same.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, test } from 'node:test';
import * as tls from 'node:tls';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { DEFAULT_REPAIR, describeRepair } from '../../src/codec/repair-descriptor.ts';
import { FsmeshError } from '../../src/core/errors.ts';
import { POOLED_FRAME_MIN_BYTES, servedFrames } from '../../src/core/frame-pool.ts';
import { objectIdOf } from '../../src/core/ids.ts';
import { BULK_LIMITS, BULK_TICKET_PROTOCOL, type BulkTicket } from '../../src/p2p/bulk-lane.ts';
import { FrameDecoder, frame } from '../../src/p2p/framing.ts';
import { Libp2pTransport, type Libp2pTransportOptions } from '../../src/p2p/libp2p-transport.ts';
import { PROTO } from '../../src/p2p/protocols.ts';
import { serveProtocols } from '../../src/p2p/services/protocol-server.ts';
import { fetchObjectFromPeers } from '../../src/p2p/symbol-fetch.ts';
import { nodeFsStorage, seededRandom, systemClock } from '../../src/runtime/index.ts';
import { freeLoopbackPort } from '../../src/runtime/loopback-port.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { SymbolStore } from '../../src/storage/symbol-store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const started: Libp2pTransport[] = [];
after(async () => {
  for (const t of started) await t.stop();
});

async function transport(o: Partial<Libp2pTransportOptions> = {}): Promise<Libp2pTransport> {
  const t = new Libp2pTransport({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    seeds: [],
    ...o,
  });
  await t.start();
  started.push(t);
  return t;
}

async function connected(server: Libp2pTransport, client: Libp2pTransport): Promise<void> {
  await client.dial(server.multiaddrs()[0]);
  const end = Date.now() + 10_000;
  while (!client.peers().includes(server.peerId)) {
    if (Date.now() > end) throw new Error('peers never connected');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** 300 frames of 4 KiB, each filled with its index: an answer of ~1.2 MB. */
const answer = Array.from({ length: 300 }, (_, i) => new Uint8Array(4096).fill(i & 255));

test('large answers travel over the bulk lane, attributed to the asking peer', async () => {
  const server = await transport();
  const client = await transport();
  const askers: string[] = [];
  server.handle(PROTO.symbols, async (req, from) => {
    askers.push(from);
    if (req[0] === 9) throw new FsmeshError('busy', 'serving too much');
    return answer;
  });
  server.handle(PROTO.head, async () => [new Uint8Array([7])]);
  await connected(server, client);

  const got = await client.request(server.peerId, PROTO.symbols, new Uint8Array([1]));
  assert.equal(got.length, answer.length);
  for (let i = 0; i < got.length; i++) assert.deepEqual(got[i], answer[i]);
  assert.deepEqual(askers, [client.peerId], 'the handler sees the peer the ticket was issued to');
  assert.equal(server.bulkStats().served, 1);
  assert.equal(client.bulkStats().requests, 1);

  // Many at once: at most connections_per_peer_max connections, the rest wait for one.
  const all = await Promise.all(
    Array.from({ length: 20 }, () => client.request(server.peerId, PROTO.symbols, new Uint8Array([1]))),
  );
  for (const a of all) assert.equal(a.length, answer.length);
  assert.equal(client.bulkStats().requests, 21);

  // A peer's error answer keeps its code; a small protocol stays on libp2p streams.
  await assert.rejects(
    client.request(server.peerId, PROTO.symbols, new Uint8Array([9])),
    (e: FsmeshError) => e.code === 'busy' && /serving too much/.test(e.message),
  );
  const head = await client.request(server.peerId, PROTO.head, new Uint8Array([0]));
  assert.deepEqual(
    head.map((f) => [...f]),
    [[7]],
  );
  assert.equal(server.bulkStats().served, 21, 'the head request did not use the lane');
  assert.equal(client.bulkStats().fallbacks, 0);
});

test('a pooled answer frame is given back once the lane has written it, and reused', async () => {
  const server = await transport();
  const client = await transport();
  // Above the lane's 1 MiB write batch, as a full symbol run is: written as it is, not copied.
  const size = (1 << 20) + 4100;
  assert.ok(size > POOLED_FRAME_MIN_BYTES);
  const lent: Uint8Array[] = [];
  server.handle(PROTO.symbols, async () => {
    const f = servedFrames.take(size);
    f.fill(lent.length + 1);
    lent.push(f);
    return [f];
  });
  await connected(server, client);
  const first = await client.request(server.peerId, PROTO.symbols, new Uint8Array([1]));
  assert.deepEqual(Buffer.from(first[0]), Buffer.alloc(size, 1));
  // The write callback may come a moment after the client has read the answer.
  const end = Date.now() + 5_000;
  while (servedFrames.stats().free_bytes < size && Date.now() < end)
    await new Promise((r) => setTimeout(r, 5));
  const second = await client.request(server.peerId, PROTO.symbols, new Uint8Array([1]));
  // Compared by identity (a failing assert.equal would print a diff of two 1 MiB arrays).
  assert.ok(lent[1] === lent[0], 'the second answer reused the first frame');
  assert.deepEqual(Buffer.from(second[0]), Buffer.alloc(size, 2), 'and carried its own bytes');
  assert.equal(server.bulkStats().served, 2);
});

test('a symbol fetch over the lane: the server reuses its frames, the fetch stores the very same bytes', async () => {
  const stores = async () => {
    const storage = nodeFsStorage(tmpDir());
    const objects = await ObjectStore.open(storage);
    return { objects, symbols: new SymbolStore(storage, objects, DEFAULT_REPAIR) };
  };
  const held = await stores();
  // 24 MiB of 4 KiB symbols: 1 MiB run frames, more of them than requests in flight.
  const bytes = seededRandom(5).bytes(24 << 20);
  const id = objectIdOf('artifact', bytes);
  await held.objects.putVerified('artifact', id, bytes);
  const server = await transport();
  const client = await transport();
  serveProtocols({ transport: server, objects: held.objects, symbols: held.symbols } as never);
  await connected(server, client);
  const fetched = await stores();
  const served0 = servedFrames.stats().reused_total;
  await fetchObjectFromPeers(client, fetched.symbols, describeRepair(id, bytes.length, DEFAULT_REPAIR), [
    server.peerId,
  ]);
  assert.ok(Buffer.from(await fetched.objects.get('artifact', id)).equals(Buffer.from(bytes)));
  assert.ok(server.bulkStats().served > 0, 'the answers came over the lane');
  assert.ok(servedFrames.stats().reused_total > served0, 'the server reused its frames');
});

/** A raw TLS-PSK connection with `ticket`; resolves once the handshake is done (or rejects). */
function rawLane(ticket: BulkTicket, identity = ticket.identity): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: ticket.port,
      ciphers: 'PSK-AES128-GCM-SHA256',
      maxVersion: 'TLSv1.2',
      pskCallback: () => ({ psk: Buffer.from(ticket.key, 'hex'), identity }),
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the handshake finished')));
  });
}

function closed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

test('the lane answers only what a libp2p ticket granted, once, within its limits', async () => {
  // The server's clock can be moved forward: a ticket not used within its lifetime is worthless.
  let skewMs = 0;
  const server = await transport({
    clock: { ...systemClock, monotonicMs: () => systemClock.monotonicMs() + skewMs },
  });
  const client = await transport({ bulk_lane: false });
  server.handle(PROTO.symbols, async () => answer);
  server.handle(PROTO.head, async () => [new Uint8Array([7])]);
  await connected(server, client);
  const ticket = async (): Promise<BulkTicket> => {
    const [f] = await client.request(server.peerId, BULK_TICKET_PROTOCOL, new Uint8Array(0));
    return JSON.parse(new TextDecoder().decode(f));
  };

  // A made-up ticket: the handshake fails, nothing is served.
  const t0 = await ticket();
  await assert.rejects(rawLane({ ...t0, identity: 'ab'.repeat(16) }));
  await assert.rejects(rawLane({ ...t0, key: 'cd'.repeat(32) }));
  // Not TLS at all: the server closes the socket.
  const plain = net.connect(t0.port, '127.0.0.1');
  plain.on('error', () => {});
  plain.write('GET / HTTP/1.1\r\n\r\n');
  await closed(plain);

  // A ticket past its lifetime opens nothing.
  const late = await ticket();
  skewMs += BULK_LIMITS.ticket_ttl_ms + 1;
  await assert.rejects(rawLane(late));

  // A real ticket opens one connection; used again it opens nothing.
  const t1 = await ticket();
  const lane = await rawLane(t1);
  await assert.rejects(rawLane(t1));
  // A protocol the lane does not serve: an error answer naming it, and the connection stays usable.
  const dec = new FrameDecoder();
  const frames: Uint8Array[] = [];
  lane.on('data', (c: Buffer) => frames.push(...dec.push(c)));
  lane.write(frame(new TextEncoder().encode(PROTO.head)));
  lane.write(frame(new Uint8Array([0])));
  const deadline = Date.now() + 5000;
  while (frames.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(new DataView(frames[0].buffer, frames[0].byteOffset, 4).getUint32(0, true), 1);
  assert.match(new TextDecoder().decode(frames[1].subarray(2)), /not a protocol served here/);
  // A request frame over the lane's limit: the connection is cut before it is buffered.
  const huge = new Uint8Array(4);
  new DataView(huge.buffer).setUint32(0, 8 << 20, true);
  lane.write(huge);
  await closed(lane);
  assert.equal(server.bulkStats().served, 0);
});

test('a fixed lane port is the one tickets name; a port already taken is an error naming it', async () => {
  const port = await freeLoopbackPort();
  const server = await transport({ bulk_lane_port: port });
  const client = await transport();
  server.handle(PROTO.symbols, async () => answer);
  await connected(server, client);
  const [f] = await client.request(server.peerId, BULK_TICKET_PROTOCOL, new Uint8Array(0));
  assert.equal(JSON.parse(new TextDecoder().decode(f)).port, port);
  assert.equal(
    (await client.request(server.peerId, PROTO.symbols, new Uint8Array([1]))).length,
    answer.length,
  );
  await assert.rejects(
    transport({ bulk_lane_port: port }),
    new RegExp(`bulk lane: cannot listen on 127\\.0\\.0\\.1:${port}`),
  );
});

test('a peer whose lane cannot be reached is asked over libp2p streams', async () => {
  const server = await transport({ bulk_lane: false });
  const client = await transport();
  server.handle(PROTO.symbols, async () => answer);
  await connected(server, client);
  for (let i = 0; i < 3; i++) {
    const got = await client.request(server.peerId, PROTO.symbols, new Uint8Array([1]));
    assert.equal(got.length, answer.length);
  }
  // One failed ticket marks the lane down for a while: not asked again on every request.
  assert.deepEqual(client.bulkStats(), { served: 0, requests: 0, fallbacks: 1 });
});
