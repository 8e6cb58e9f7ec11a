/**
 * The chaos checker's history (Jepsen-style): every write the workload attempted, with its outcome
 * as the client saw it. Only a 200 is *acknowledged*; a timeout or a reset is *unknown* (the commit
 * may or may not have landed) and a refusal is *failed*. The checks are pure functions of this
 * history and of what the nodes answer afterwards, so they are unit-tested on their own.
 */

export type WriteOutcome = 'ok' | 'failed' | 'unknown';

export interface WriteOp {
  /** Doc ids sent in this request (each unique across the run). */
  doc_ids: string[];
  start_ms: number;
  end_ms: number;
  outcome: WriteOutcome;
  commit_seq?: number;
  /** HTTP status or the network error, for the report. */
  detail: string;
}

export interface FaultWindow {
  cycle: number;
  kind: string;
  node: string;
  start_ms: number;
  /** When the fault was healed (process back, SIGCONT, ...). */
  healed_ms: number;
  /** For a partition: the nodes cut off from the rest. */
  isolated?: string[];
}

export class History {
  readonly writes: WriteOp[] = [];
  readonly faults: FaultWindow[] = [];

  acked(): WriteOp[] {
    return this.writes.filter((w) => w.outcome === 'ok');
  }
  ackedDocIds(): string[] {
    return this.acked().flatMap((w) => w.doc_ids);
  }
}

/**
 * The longest time writes were unavailable: from the first failed attempt after a success (or the
 * start) to the next success, over the whole run. A run that ends while unavailable counts up to
 * its last attempt.
 */
export function maxUnavailableMs(writes: readonly WriteOp[]): number {
  const sorted = [...writes].sort((a, b) => a.start_ms - b.start_ms);
  let worst = 0;
  let downSince: number | null = null;
  for (const w of sorted) {
    if (w.outcome === 'ok') {
      if (downSince !== null) worst = Math.max(worst, w.end_ms - downSince);
      downSince = null;
    } else if (downSince === null) downSince = w.start_ms;
  }
  if (downSince !== null && sorted.length)
    worst = Math.max(worst, sorted[sorted.length - 1].end_ms - downSince);
  return worst;
}

/**
 * Recovery after each healed fault: the time from the heal to the first acknowledged write that
 * started after it. A fault after which no write succeeded yields Infinity.
 */
export function recoveryMs(history: History): { cycle: number; kind: string; recovery_ms: number }[] {
  const oks = history.acked().sort((a, b) => a.end_ms - b.end_ms);
  return history.faults.map((f) => {
    const next = oks.find((w) => w.start_ms >= f.healed_ms);
    return {
      cycle: f.cycle,
      kind: f.kind,
      recovery_ms: next ? next.end_ms - f.healed_ms : Number.POSITIVE_INFINITY,
    };
  });
}

/** Acknowledged doc ids a node does not have: the lost writes (must be empty). */
export function lostDocIds(acked: readonly string[], present: ReadonlySet<string>): string[] {
  return acked.filter((id) => !present.has(id));
}

/** Acknowledged commit_seqs must be unique and increase with acknowledgement order per client. */
export function duplicateCommitSeqs(writes: readonly WriteOp[]): number[] {
  const seen = new Map<number, number>();
  for (const w of writes)
    if (w.outcome === 'ok' && w.commit_seq !== undefined)
      seen.set(w.commit_seq, (seen.get(w.commit_seq) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([s]) => s);
}

/** The slowest acknowledged write (a write that waits out a partition is slow, not failed). */
export function maxAckLatencyMs(writes: readonly WriteOp[]): number {
  return Math.max(0, ...writes.filter((w) => w.outcome === 'ok').map((w) => w.end_ms - w.start_ms));
}

/**
 * Quorum safety under partitions: a write that started after the writer was cut off from every
 * other member and was acknowledged before the cut healed reached no replica, so a quorum writer
 * must never acknowledge it. Returns those writes (empty when the rule held).
 */
export function ackedWhileWriterIsolated(history: History, writer: string, members: number): WriteOp[] {
  const cuts = history.faults.filter(
    (f) =>
      f.kind === 'partition' &&
      f.isolated?.includes(writer) &&
      f.isolated.length < Math.floor(members / 2) + 1,
  );
  return history.acked().filter((w) => cuts.some((f) => w.start_ms >= f.start_ms && w.end_ms <= f.healed_ms));
}
