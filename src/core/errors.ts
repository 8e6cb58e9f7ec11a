/** Typed errors with stable codes, so the CLI and HTTP layers can map them to exit codes/statuses. */
export type ErrorCode =
  | 'invalid_input'
  | 'invalid_manifest'
  | 'corrupt_data'
  | 'unsupported_version'
  | 'not_found'
  | 'conflict'
  | 'timeout'
  | 'busy'
  /** A component is stopped for good (an actor its supervisor gave up on): fail fast, do not wait. */
  | 'unavailable'
  | 'embedder_mismatch'
  | 'retention_dropped'
  /** A multi-shard write committed on some shards only (details: commit_seqs, failed_shards). */
  | 'partial_commit'
  | 'internal';

export class FsmeshError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'FsmeshError';
    this.code = code;
    this.details = details;
  }
}

/** Production invariant check (TigerStyle): a failed assertion is a bug, never user error. */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new FsmeshError('internal', `invariant violated: ${message}`);
}
