/**
 * The wire path alone, for bench/bootstrap.ts: a libp2p node (noise, yamux; the cluster key when
 * given) answering `/fsmesh/symbols/1.0.0` with 1 MiB of symbol-sized frames per request, served
 * over the bulk lane and over libp2p streams alike. Prints its first multiaddr and peer id as JSON.
 *   node bench/load/wire-server.ts [KEY_FILE]
 */
import * as fs from 'node:fs';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { Libp2pTransport } from '../../src/p2p/libp2p-transport.ts';
import { PROTO } from '../../src/p2p/protocols.ts';

/** 256 frames of 4 KiB + a 4-byte id: what a symbols answer of 256 symbols carries. */
export const WIRE_ANSWER = Array.from({ length: 256 }, (_, i) => new Uint8Array(4100).fill(i & 255));

const keyFile = process.argv[2];
const t = new Libp2pTransport({
  privateKey: await generateKeyPair('Ed25519'),
  listen: ['/ip4/127.0.0.1/tcp/0'],
  seeds: [],
  ...(keyFile ? { cluster_key: new Uint8Array(fs.readFileSync(keyFile)) } : {}),
});
t.handle(PROTO.symbols, async () => WIRE_ANSWER);
await t.start();
process.stdout.write(`${JSON.stringify({ addr: t.multiaddrs()[0], peer: t.peerId })}\n`);
process.on('SIGTERM', () => void t.stop().then(() => process.exit(0)));
