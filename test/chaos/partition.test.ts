/**
 * The chaos runner's partition proxy on real loopback sockets: it names the process that dialed
 * (from /proc), refuses and resets connections that cross a cut, and lets them through once healed.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { ownerOfLoopbackClient, PartitionNet } from '../../chaos/partition.ts';
import { freeLoopbackPort } from '../../src/runtime/loopback-port.ts';

/** An echo server standing in for a node's libp2p port. */
async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Connect, send a line, and say whether it came back ('echo') or the connection died ('cut'). */
function roundTrip(port: number): Promise<{ outcome: 'echo' | 'cut'; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => resolve({ outcome: 'cut', socket }), 3000);
    socket.on('error', () => {});
    socket.once('data', () => {
      clearTimeout(t);
      resolve({ outcome: 'echo', socket });
    });
    socket.once('close', () => {
      clearTimeout(t);
      resolve({ outcome: 'cut', socket });
    });
    socket.write('ping\n');
  });
}

test('partition proxy: names the dialing process from /proc/net/tcp', async () => {
  const echo = await echoServer();
  const s = net.connect({ host: '127.0.0.1', port: echo.port });
  await new Promise<void>((r) => s.once('connect', () => r()));
  const pids = new Map([
    ['other', 1],
    ['me', process.pid],
  ]);
  assert.equal(ownerOfLoopbackClient(s.localPort!, echo.port, pids), 'me');
  assert.equal(ownerOfLoopbackClient(s.localPort!, echo.port, new Map([['other', 1]])), null);
  assert.equal(ownerOfLoopbackClient(1, 2, pids), null, 'no such connection');
  s.destroy();
  await echo.close();
});

test('partition proxy: a cut refuses new connections and resets open ones; heal lets them through', async () => {
  const echo = await echoServer();
  const proxyPort = await freeLoopbackPort();
  const partitions = new PartitionNet(() => new Map([['client', process.pid]]));
  await partitions.add('server', proxyPort, () => echo.port);
  try {
    const open = await roundTrip(proxyPort);
    assert.equal(open.outcome, 'echo', 'no cut: traffic flows through the proxy');
    const closed = new Promise<void>((r) => open.socket.once('close', () => r()));
    assert.equal(partitions.split([['client'], ['server']]), 1, 'the open connection is reset');
    await closed;
    assert.equal((await roundTrip(proxyPort)).outcome, 'cut', 'a new connection across the cut is refused');
    assert.ok(partitions.refused >= 1);
    partitions.split([['client', 'server']]);
    assert.equal((await roundTrip(proxyPort)).outcome, 'echo', 'same side of the cut: allowed');
    partitions.heal();
    const healed = await roundTrip(proxyPort);
    assert.equal(healed.outcome, 'echo', 'healed');
    healed.socket.destroy();
  } finally {
    await partitions.stop();
    await echo.close();
  }
});
