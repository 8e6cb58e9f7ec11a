/**
 * Every default of fsmesh in one place, with its unit in its name. Engine, node, cluster and HTTP
 * code read their defaults from here; the CLI's flags override them. Plain values only (this
 * module is at the bottom layer), so the types that use them live with their modules.
 */

export const ENGINE_DEFAULTS = {
  shard: 'default',
  created_by: 'local',
  quantization: 'f16',
  hashed_embedder_dims: 256,
  max_segments: 8,
  retention_keep_last: 8,
  retention_keep_newer_than_ms: 0,
  log_segment_max_bytes: 64 << 20,
  hnsw_min_rows: 2_048,
  /**
   * A build window with more upserts than this is cut into several segments of equal size: each
   * gets its own vector shard and HNSW graph, built in parallel on the compute threads.
   */
  segment_max_docs: 32_768,
  /** Open generations kept beyond the active and pinned ones, while they fit (bytes). */
  reader_cache_bytes: 256 << 20,
  /**
   * Postings of ranged (version 5) segments' terms kept after the queries that read them (bytes):
   * the only part of a lexical index not held for a reader's lifetime.
   */
  postings_cache_bytes: 64 << 20,
  quality_weight: 0.6,
  /** Strict reads (min_commit_seq) wait at most this long unless the request says otherwise. */
  strict_read_timeout_ms: 5000,
  /** The longest a strict read may ask to wait (`timeout_ms`); more is refused as invalid. */
  max_strict_read_timeout_ms: 60_000,
  /** Group commit window when `fsync: group` is chosen without a window. */
  group_commit_ms: 2,
} as const;

/** §7.1 repair symbols: frankensearch's defaults (4 KiB symbols, 20 % overhead, >= 2 per block). */
export const REPAIR_DEFAULTS = {
  symbol_size: 4096,
  overhead_ratio: 0.2,
  max_block_symbols: 256,
  min_repair_per_block: 2,
} as const;

export const NODE_DEFAULTS = {
  node_name: 'node',
  role: 'writer',
  mailbox_bound: 1024,
  /** Strict reads waiting for a commit (outside the query mailbox) at most; more are refused as busy. */
  max_strict_waiters: 10_000,
  batch_max_commits: 64,
  build_interval_ms: 200,
  /** Library nodes do not scrub unless asked; `fsmesh node start` scrubs every 10 minutes. */
  scrub_interval_ms: 0,
  cli_scrub_interval_ms: 600_000,
  scrub_bytes_per_s: 64 << 20,
  /**
   * A scrubbing node checks its retained generations once this soon after start: segments are read
   * by ranges (a damaged page is found when a query reads it), so this is what finds damage no
   * query reads, without competing with the start-up itself.
   */
  first_scrub_delay_ms: 30_000,
  max_activation_failures: 3,
  max_corruptions: 1,
  /** Failed builds are retried with exponential back-off between these bounds (lifecycle policy). */
  build_retry_min_ms: 250,
  build_retry_max_ms: 30_000,
  /** A degraded node probes (scrub + retry activation) this often; 0 disables probing. */
  degraded_probe_interval_ms: 30_000,
  /** Actor restarts: at most this many within the window, each after the back-off. */
  restart_max_restarts: 5,
  restart_window_ms: 60_000,
  restart_backoff_base_ms: 10,
  restart_backoff_max_ms: 2000,
} as const;

export const CLUSTER_DEFAULTS = {
  cluster: 'fsmesh',
  durability: 'local',
  lag_alert_commits: 1000,
  /** Writers re-announce and replicas poll heads this often (gossip is not persistent). */
  announce_interval_ms: 500,
  quorum_timeout_ms: 10_000,
  head_request_timeout_ms: 5000,
  /**
   * A failover-capable writer builds, announces and admits writes only while ⌊members/2⌋ members
   * following it confirmed it within this window (its lease); a promotion waits this long after
   * gathering its promises, so a paused old writer (a long GC, SIGSTOP) finds its lease expired.
   */
  writer_lease_ms: 3000,
  manifest_request_timeout_ms: 10_000,
  replicate_request_timeout_ms: 10_000,
  capsules_request_timeout_ms: 30_000,
  symbols_request_timeout_ms: 10_000,
  /** Replica sync: consecutive failures before giving up until the next announcement. */
  sync_max_failures: 5,
  /** A replica that gave up syncing tries again this often while the writer's head shows it behind. */
  sync_retry_after_give_up_ms: 5_000,
  /** Replica sync retries back off linearly by this step (200, 400, ... ms). */
  sync_retry_step_ms: 200,
  /**
   * A fresh replica fetching its first generation answers the writer's pushes `busy` for at most
   * this long after it started (§7.2 step 5: the commit stream follows activation). Bounded: a
   * quorum write may need this replica, and a slow or failing fetch must not hold writes (found
   * by the simulator: unbounded, writes stalled past its 15 s liveness bound).
   */
  bootstrap_push_defer_max_ms: 2_000,
  /** After this many failed syncs in a row, try capsule replay (§7.3 fallback). */
  sync_failures_before_replay: 2,
  /** Writer → replica pushes: attempts and capped exponential back-off. */
  push_max_attempts: 20,
  push_retry_base_ms: 50,
  push_retry_max_ms: 1000,
  /** Peer exchange: at most this many addresses per head answer. */
  peer_exchange_max_addrs: 32,
  dial_timeout_ms: 10_000,
  request_timeout_ms: 30_000,
  /** An answer larger than this is refused (callers that know the size ask for less). */
  max_response_bytes: 64 << 20,
  /** An inbound stream must deliver its request frame within this. */
  inbound_request_timeout_ms: 10_000,
  /** Peer exchange: new dials per poll round, and no new dials past this many connections. */
  peer_exchange_dials_per_round: 4,
  max_connected_peers: 64,
  /** Connections heal: every lost seed or learned peer is redialled with capped exponential back-off. */
  redial_tick_ms: 250,
  redial_base_ms: 250,
  redial_max_ms: 4000,
  /** How often connected peers' addresses are learned (and persisted for the next start). */
  learn_peers_interval_ms: 2000,
  /** Health-based routing: a replica more than this many commits behind forwards its queries. */
  route_lag_commits: 1000,
  /** Peer states (health, lag) older than this are not used to route. */
  peer_state_max_age_ms: 5000,
  /** A forwarded query gets the request's own timeout plus this. */
  route_timeout_margin_ms: 2000,
  /** Quarantined manifests kept at most (the oldest are dropped). */
  quarantine_max_files: 64,
} as const;

/** Sizes fixed by the wire protocols (docs/protocols.md). */
export const WIRE_LIMITS = {
  /** One frame on a stream, at most. */
  max_frame_bytes: 8 << 20,
  /**
   * One commit (80-byte marker + capsule) must fit in one replicate frame, or it could never
   * replicate: the log refuses larger capsules before acknowledging anything.
   */
  max_capsule_bytes: (8 << 20) - 80,
} as const;

export const HTTP_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  max_body_bytes: 16 << 20,
  request_timeout_ms: 120_000,
  /** An oversized body is read and dropped up to this much / this long before the 413 is sent. */
  drain_max_bytes: 64 << 20,
  drain_timeout_ms: 10_000,
  /** On stop, in-flight requests get this long to finish before their connections are cut. */
  shutdown_grace_ms: 5_000,
  /** Open `GET /v1/events` streams per node (each holds a connection and a listener). */
  max_event_streams: 16,
} as const;
