/** The local node layer: engine + actors + machines, no network. */
export { createNode, type FsmeshNode } from './create-node.ts';
export { type DocInput, docsToOps } from './doc-input.ts';
export { type NodeConfig, validateNodeConfig } from './node-config.ts';
export type { NodeComponents, NodeService, ServiceFactory } from './services.ts';
export type { NodeStatus } from './status.ts';
