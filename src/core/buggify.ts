/**
 * Safety checks the simulator can switch off, one at a time, to prove it finds the violation
 * (issue 8's planted-bug test, in the spirit of FoundationDB's "buggify"). Always false in
 * production; nothing but sim/ and its tests may set them.
 */
export const UNSAFE = {
  /** Accept gossiped generation records without checking signature and trusted writer. */
  skip_record_signature_check: false,
  /** Accept replicated commits without checking the marker chain (prev_marker_id, divergence). */
  skip_marker_chain_check: false,
  /** Dial each seed and learned peer once only, never again after a connection is lost. */
  skip_redial: false,
  /** Accept replication from the old writer after promising a promotion (zombie writers). */
  skip_promise_check: false,
  /** A writer builds and admits writes without a current lease (a paused writer wakes as a zombie). */
  skip_writer_lease: false,
  /** A writer believes a member's claim of a promise without the admin-signed ticket. */
  trust_claimed_promise: false,
  /** Quorum acks count from any connected peer, not only the named members. */
  count_any_ack: false,
  /** The writer lease is measured on the wall clock, which steps (NTP) — not on monotonic time. */
  lease_on_wall_clock: false,
  /** A multi-shard query scores each shard with its own BM25 statistics, not the collection's. */
  shard_local_stats: false,
  /** A shard's phase 2 reads its active generation, not the one phase 1 named (mixed views). */
  shard_lists_latest: false,
};
