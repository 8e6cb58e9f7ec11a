/** Options of a node's cluster membership, with defaults from src/core/defaults.ts. */
import { CLUSTER_DEFAULTS } from '../core/defaults.ts';

import type { SyncProgress } from '../node/services.ts';

/** A replica's fetch progress (bootstrap or catch-up), as its head answers and status show it. */
export type BootstrapProgress = SyncProgress;

export interface ClusterOptions {
  cluster: string;
  role: 'writer' | 'replica';
  durability: 'local' | 'quorum';
  /** Configured members of the shard, writer included (quorum = majority of these). */
  members: number;
  /**
   * The peers whose acks count toward a quorum (`--members PEER_ID,...`). Absent: any connected
   * peer — only safe with a cluster key, which keeps everyone else from connecting at all.
   */
  member_ids?: string[];
  /**
   * Write backpressure: refuse writes (busy, Retry-After) while the members the durability level
   * needs lag more than this many commits behind the writer. Absent: no backpressure.
   */
  max_replica_lag_commits?: number;
  /** The operator's admin public key (32 bytes hex): handovers it signs move the writer role. */
  admin_pub?: string;
  /** Peer ids named in the seed multiaddrs: the only peers trusted on first use as the writer. */
  seed_peer_ids?: string[];
  trusted_writer?: string;
  lag_alert_commits: number;
  announce_interval_ms: number;
  quorum_timeout_ms: number;
  /**
   * A sync fetches from at most this many peers (0 = all): the first to show they hold the
   * generation, the same ones for every object. Benchmarks compare 1, 2, 4.
   */
  fetch_peers?: number;
  /** Cap on this node's uploads to peers (symbols, capsules), bytes/s; absent = uncapped. */
  serve_rate_limit_bytes_per_s?: number;
  onProgress?: (p: BootstrapProgress) => void;
  /**
   * How a replica gets generations (docs/replication.md): `artifacts` (Option B, default) fetches
   * the writer's artifacts as repair symbols; `commits` (Option A) rebuilds them from the commit
   * stream and activates only what hashes to the writer's signed manifest id.
   */
  replication: 'artifacts' | 'commits';
  /** The collection's shard count (docs/sharding.md); 1 for a single-shard cluster. */
  shards: number;
}

export function clusterOptions(o: Partial<ClusterOptions> & Pick<ClusterOptions, 'role'>): ClusterOptions {
  return {
    cluster: CLUSTER_DEFAULTS.cluster,
    durability: CLUSTER_DEFAULTS.durability,
    members: 1,
    lag_alert_commits: CLUSTER_DEFAULTS.lag_alert_commits,
    announce_interval_ms: CLUSTER_DEFAULTS.announce_interval_ms,
    quorum_timeout_ms: CLUSTER_DEFAULTS.quorum_timeout_ms,
    replication: 'artifacts',
    shards: 1,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  } as ClusterOptions;
}
