/** The two kinds of shard a multi-shard node deals with (docs/sharding.md). */
import type { FsmeshNode } from '../node/index.ts';
import type { ClusterService } from '../p2p/cluster.ts';
import type { RemoteShardTrust } from '../p2p/remote-shard.ts';
import type { Transport } from '../runtime/index.ts';

/** One shard this node carries. */
export interface LocalShard {
  shard: number;
  node: FsmeshNode;
  cluster: ClusterService;
  /** The shard's view of the network host. */
  transport: Transport;
}

/**
 * A shard this node does not carry (`--replicate-shards`): written through its trusted writer, read
 * on a member whose answer names a generation that writer signed.
 */
export interface RemoteShard {
  shard: number;
  transport: Transport;
  trust: RemoteShardTrust;
}
