/** Wire a node into a cluster: identity, libp2p transport, ClusterNode, bootstrap progress. */
import type { FsmeshNode } from '../node.ts';
import { ClusterNode } from './cluster.ts';
import { loadOrCreateIdentity } from './identity.ts';
import { Libp2pTransport } from './libp2p-transport.ts';

export interface StartClusterOptions {
  listen: string[];
  seeds: string[];
  cluster_key?: Uint8Array;
  cluster: string;
  role: 'writer' | 'replica';
  durability: 'local' | 'quorum';
  members: number;
  trusted_writer?: string;
  lag_alert_commits?: number;
  announce_interval_ms?: number;
  fetch_peers?: number;
  /** Print a bootstrap progress line on stderr. */
  progress?: boolean;
}

export async function startCluster(node: FsmeshNode, o: StartClusterOptions): Promise<ClusterNode> {
  const key = await loadOrCreateIdentity(node.engine.runtime.storage);
  const transport = new Libp2pTransport({
    privateKey: key,
    listen: o.listen,
    seeds: o.seeds,
    cluster_key: o.cluster_key,
  });
  const cluster = new ClusterNode(node, transport, key, {
    cluster: o.cluster,
    role: o.role,
    durability: o.durability,
    members: o.members,
    trusted_writer: o.trusted_writer,
    lag_alert_commits: o.lag_alert_commits ?? 1000,
    announce_interval_ms: o.announce_interval_ms ?? 500,
    quorum_timeout_ms: 10_000,
    fetch_peers: o.fetch_peers,
    onProgress: o.progress
      ? (p) =>
          process.stderr.write(
            `\r[fsmesh ${p.phase}] objects ${p.objects_done}/${p.objects_total}  bytes ${(p.bytes / 1048576).toFixed(1)} MiB  peers ${p.peers}${p.phase === 'done' ? '\n' : ''}`,
          )
      : undefined,
  });
  await cluster.start();
  return cluster;
}
