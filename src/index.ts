/**
 * The fsmesh package entry: compose a node (local, clustered, with HTTP), or create the local node
 * alone and embed its actors in a host application.
 */
export { type ComposedNode, type ComposeOptions, composeNode } from './compose/compose-node.ts';
export { createHttpHandler, startHttpServer } from './http/server.ts';
export {
  createNode,
  type DocInput,
  docsToOps,
  type FsmeshNode,
  type NodeComponents,
  type NodeConfig,
  type NodeService,
  type NodeStatus,
  type ServiceFactory,
  validateNodeConfig,
} from './node/index.ts';
export { type ClusterServiceConfig, clusterService } from './p2p/cluster.ts';
