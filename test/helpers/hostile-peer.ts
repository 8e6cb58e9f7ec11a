/**
 * A hostile peer: a raw libp2p node of its own (own key, real TCP on 127.0.0.1) that speaks the
 * documented fsmesh protocols (docs/protocols.md) as an attacker chooses — forged answers, lies
 * about commit_seq, hostile symbol headers, silence, half-sent frames.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { composeNode } from '../../src/compose/compose-node.ts';
import type { NodeConfig } from '../../src/node/index.ts';
import type { ClusterServiceConfig } from '../../src/p2p/cluster.ts';
import { peerIdOf } from '../../src/p2p/identity.ts';
import { Libp2pTransport } from '../../src/p2p/libp2p-transport.ts';
import { tmpDir } from './tmp.ts';

export async function hostilePeer(seeds: string[] = []) {
  const key = await generateKeyPair('Ed25519');
  const t = new Libp2pTransport({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], seeds });
  return {
    t,
    key,
    peerId: peerIdOf(key),
    /** Publish on a topic and return who it was sent to (gossipsub's own answer). */
    async publishTo(topic: string, data: Uint8Array): Promise<string[]> {
      const n = (t as unknown as { node: any }).node;
      const r = await n.services.pubsub.publish(topic, data);
      return r.recipients.map((p: { toString(): string }) => p.toString());
    },
    /** A raw stream to `peer` on `protocol`, for half-sent frames. */
    async rawStream(peer: string, protocol: string): Promise<Stream> {
      const n = (t as unknown as { node: any }).node;
      return n.dialProtocol(peerIdFromString(peer), protocol);
    },
  };
}

/** A real node (libp2p on 127.0.0.1, no HTTP) for the attacks. */
export async function realNode(
  role: 'writer' | 'replica',
  cluster: ClusterServiceConfig = {},
  node: Partial<NodeConfig> = {},
) {
  return composeNode({
    node: {
      data_dir: tmpDir(),
      node_name: role,
      role,
      build: { batch_max_commits: 1, build_interval_ms: 10 },
      ...node,
    },
    cluster: { listen: ['/ip4/127.0.0.1/tcp/0'], cluster: 'adv', announce_interval_ms: 200, ...cluster },
  });
}

export function addrOf(c: Awaited<ReturnType<typeof realNode>>): string {
  return (c.cluster!.status().multiaddrs as string[])[0];
}

export async function until(fn: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
