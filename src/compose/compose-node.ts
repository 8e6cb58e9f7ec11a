/**
 * The composition root: the one function that builds a node from its parts — the local node
 * (engine + actors + machines), the cluster service when the node is networked, and the HTTP API
 * when asked. The CLI, the simulator, the examples and the tests all start nodes through it.
 */
import { type HttpOptions, startHttpServer } from '../http/server.ts';
import { createNode, type FsmeshNode, type NodeConfig } from '../node/index.ts';
import { type ClusterService, type ClusterServiceConfig, clusterService } from '../p2p/cluster.ts';

export interface ComposeOptions {
  node: NodeConfig;
  /** Join a cluster (libp2p by default; the simulator injects its network and identity). */
  cluster?: ClusterServiceConfig;
  /** Serve the HTTP API (docs/http.md). */
  http?: HttpOptions;
}

export interface HttpHandle {
  url: string;
  close(): Promise<void>;
}

export interface ComposedNode {
  node: FsmeshNode;
  cluster: ClusterService | null;
  http: HttpHandle | null;
  /** HTTP first (finish in-flight requests), then the node (services, actors, engine). */
  stop(): Promise<void>;
}

export async function composeNode(o: ComposeOptions): Promise<ComposedNode> {
  const node = await createNode({
    ...o.node,
    services: [...(o.node.services ?? []), ...(o.cluster ? [clusterService(o.cluster)] : [])],
  });
  let http: HttpHandle | null = null;
  try {
    if (o.http) http = await startHttpServer(node, o.http);
  } catch (err) {
    await node.stop();
    throw err;
  }
  const cluster = (node.services.get('cluster') as ClusterService | undefined) ?? null;
  let stopping: Promise<void> | null = null;
  return {
    node,
    cluster,
    http,
    stop: () => {
      stopping ??= (async () => {
        await http?.close();
        await node.stop();
      })();
      return stopping;
    },
  };
}
