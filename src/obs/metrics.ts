/**
 * Metrics (§9) on a per-node prom-client registry (several nodes can share a process). The spec's
 * dotted names map to Prometheus names by replacing '.' with '_' (docs/runbook.md has the table):
 *   distributed.commit.lag_ms            → distributed_commit_lag_ms (gauge) + distributed_commit_lag_ms_histogram
 *   distributed.generation.activate_ms   → distributed_generation_activate_ms (histogram)
 *   distributed.artifact.repair_ratio    → distributed_artifact_repair_ratio (gauge)
 *   distributed.snapshot.bootstrap_ms    → distributed_snapshot_bootstrap_ms (histogram)
 *   distributed.query.generation_skew    → distributed_query_generation_skew (histogram)
 *   distributed.repair.failures_total    → distributed_repair_failures_total (counter)
 * Labels are bounded: mode, state, kind — never doc ids or query text.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the postings cache metrics read (src/search/lexical/postings-cache.ts). */
export interface PostingsCacheStats {
  readonly held_bytes: number;
  readonly hits: number;
  readonly misses: number;
}

const MS_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];

export class NodeMetrics {
  readonly registry = new Registry();
  readonly commit_lag_ms: Gauge;
  readonly commit_lag_ms_histogram: Histogram;
  readonly generation_activate_ms: Histogram;
  readonly artifact_repair_ratio: Gauge;
  readonly snapshot_bootstrap_ms: Histogram;
  readonly query_generation_skew: Histogram;
  readonly repair_failures_total: Counter;
  readonly query_latency_ms: Histogram;
  readonly ingest_docs_total: Counter;
  readonly ingest_commits_total: Counter;
  readonly active_generation_seq: Gauge;
  readonly active_commit_seq_high: Gauge;
  readonly commit_seq_high: Gauge;
  readonly health_state: Gauge;
  readonly peers_connected: Gauge;
  readonly write_backpressure: Gauge;
  readonly replica_lag_commits: Gauge;
  readonly replication_mode: Gauge;
  readonly repaired_bytes_total: Counter;
  readonly busy_rejections_total: Counter;
  readonly postings_cache_bytes: Gauge;
  readonly postings_cache_reads_total: Counter;
  /** The engine's postings cache, read when metrics are scraped (observePostingsCache). */
  private postingsCache: PostingsCacheStats | null = null;
  private repairedBytes = 0;
  private checkedBytes = 0;

  // table-like: one definition per metric.
  constructor(labels: { node: string; shard: string }) {
    const r = this.registry;
    r.setDefaultLabels(labels);
    this.commit_lag_ms = new Gauge({
      name: 'distributed_commit_lag_ms',
      help: 'ms between a commit becoming durable and a generation covering it being active here',
      registers: [r],
    });
    this.commit_lag_ms_histogram = new Histogram({
      name: 'distributed_commit_lag_ms_histogram',
      help: 'distribution of distributed.commit.lag_ms',
      buckets: MS_BUCKETS,
      registers: [r],
    });
    this.generation_activate_ms = new Histogram({
      name: 'distributed_generation_activate_ms',
      help: 'verify + warm + pointer flip time of a generation',
      buckets: MS_BUCKETS,
      registers: [r],
    });
    this.artifact_repair_ratio = new Gauge({
      name: 'distributed_artifact_repair_ratio',
      help: 'repaired bytes / checked artifact bytes',
      registers: [r],
    });
    this.snapshot_bootstrap_ms = new Histogram({
      name: 'distributed_snapshot_bootstrap_ms',
      help: 'time for a new or emptied node to activate its first generation from peers',
      buckets: MS_BUCKETS,
      registers: [r],
    });
    this.query_generation_skew = new Histogram({
      name: 'distributed_query_generation_skew',
      help: 'generations between the one a query used and the latest known',
      buckets: [0, 1, 2, 3, 5, 10, 20, 50],
      registers: [r],
    });
    this.repair_failures_total = new Counter({
      name: 'distributed_repair_failures_total',
      help: 'repairs that could not restore an object',
      registers: [r],
    });
    this.query_latency_ms = new Histogram({
      name: 'fsmesh_query_latency_ms',
      help: 'query latency by read mode',
      labelNames: ['mode'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000],
      registers: [r],
    });
    this.ingest_docs_total = new Counter({
      name: 'fsmesh_ingest_docs_total',
      help: 'document operations acknowledged',
      registers: [r],
    });
    this.ingest_commits_total = new Counter({
      name: 'fsmesh_ingest_commits_total',
      help: 'commits acknowledged',
      registers: [r],
    });
    this.active_generation_seq = new Gauge({
      name: 'fsmesh_active_generation_seq',
      help: 'generation_seq of the active generation',
      registers: [r],
    });
    this.active_commit_seq_high = new Gauge({
      name: 'fsmesh_active_commit_seq_high',
      help: 'commit_seq_high of the active generation',
      registers: [r],
    });
    this.commit_seq_high = new Gauge({
      name: 'fsmesh_commit_seq_high',
      help: 'highest durable commit_seq in the local log',
      registers: [r],
    });
    this.health_state = new Gauge({
      name: 'fsmesh_health_state',
      help: '1 for the current health state',
      labelNames: ['state'],
      registers: [r],
    });
    this.write_backpressure = new Gauge({
      name: 'fsmesh_write_backpressure',
      help: '1 while the writer refuses writes because the replicas it needs lag too far behind',
      registers: [r],
    });
    this.replica_lag_commits = new Gauge({
      name: 'fsmesh_replica_lag_commits',
      help: 'commits the needed replicas lag behind the writer (the largest lag among those counted)',
      registers: [r],
    });
    this.replication_mode = new Gauge({
      name: 'fsmesh_replication_mode',
      help: '1 for how this node replicates generations: artifacts (Option B) or commits (Option A)',
      labelNames: ['mode'],
      registers: [r],
    });
    this.peers_connected = new Gauge({
      name: 'fsmesh_peers_connected',
      help: 'connected peers',
      registers: [r],
    });
    this.repaired_bytes_total = new Counter({
      name: 'fsmesh_repaired_bytes_total',
      help: 'bytes restored by repair',
      registers: [r],
    });
    this.busy_rejections_total = new Counter({
      name: 'fsmesh_busy_rejections_total',
      help: 'requests refused because a mailbox was full',
      labelNames: ['actor'],
      registers: [r],
    });
    const cache = () => this.postingsCache;
    this.postings_cache_bytes = new Gauge({
      name: 'fsmesh_postings_cache_bytes',
      help: 'bytes of postings kept after the queries that read them (budget: postings_cache_bytes)',
      registers: [r],
      collect() {
        this.set(cache()?.held_bytes ?? 0);
      },
    });
    this.postings_cache_reads_total = new Counter({
      name: 'fsmesh_postings_cache_reads_total',
      help: "a query's terms found in the postings cache (hit) or read from their segment's pages (miss)",
      labelNames: ['result'],
      registers: [r],
      collect() {
        const c = cache();
        this.reset();
        this.inc({ result: 'hit' }, c?.hits ?? 0);
        this.inc({ result: 'miss' }, c?.misses ?? 0);
      },
    });
  }

  /** Report this postings cache (the engine's) from now on. */
  observePostingsCache(c: PostingsCacheStats): void {
    this.postingsCache = c;
  }

  recordRepair(repairedBytes: number, checkedBytes: number): void {
    this.repairedBytes += repairedBytes;
    this.checkedBytes += checkedBytes;
    if (repairedBytes > 0) this.repaired_bytes_total.inc(repairedBytes);
    this.artifact_repair_ratio.set(this.checkedBytes > 0 ? this.repairedBytes / this.checkedBytes : 0);
  }

  setHealth(state: string, all: readonly string[]): void {
    for (const s of all) this.health_state.set({ state: s }, s === state ? 1 : 0);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
