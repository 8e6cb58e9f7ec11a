/**
 * What every simulation shares: the run's trace and violations (one report per invariant and
 * node — the first occurrence is the one to debug), draining microtasks, and awaiting a promise
 * while driving virtual time. The trace text is the run's identity: its hash must not change
 * for a given seed, so the formats here are fixed.
 */
import { blake3Hex } from '../src/core/ids.ts';
import type { NodeConfig } from '../src/node/index.ts';
import type { VirtualClock } from './clock.ts';

export interface Violation {
  kind: 'safety' | 'liveness';
  invariant: string;
  detail: string;
  at_ms: number;
}

export interface SimResult {
  seed: number;
  steps: number;
  trace_hash: string;
  violations: Violation[];
  stats: Record<string, number>;
  /** The shortest useful trace: events up to the first violation (bounded). */
  trace_excerpt?: string[];
}

/** Virtual time since the simulation's epoch, as traces print it. */
const EPOCH_MS = 1_700_000_000_000;

export const settle = async (rounds = 12) => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};

export class RunLog {
  readonly trace: string[] = [];
  readonly violations: Violation[] = [];
  private readonly clock: VirtualClock;
  private readonly seen = new Set<string>();

  constructor(clock: VirtualClock) {
    this.clock = clock;
  }

  log(s: string): void {
    this.trace.push(`${this.clock.nowMs() - EPOCH_MS} ${s}`);
    if (process.env.FSMESH_SIM_TRACE) process.stderr.write(`${this.trace[this.trace.length - 1]}\n`);
  }

  violate(kind: Violation['kind'], invariant: string, detail: string): void {
    const key = `${invariant}|${detail.split(' ')[0]}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.violations.push({ kind, invariant, detail, at_ms: this.clock.nowMs() - EPOCH_MS });
    this.log(`VIOLATION ${kind} ${invariant}: ${detail}`);
  }

  /** The run's result: its trace hash, and the trace up to the first violation. */
  result(seed: number, steps: number, stats: Record<string, number>): SimResult {
    const first = this.trace.findIndex((t) => t.includes('VIOLATION'));
    return {
      seed,
      steps,
      trace_hash: blake3Hex(new TextEncoder().encode(this.trace.join('\n'))),
      violations: this.violations,
      stats,
      ...(first >= 0 ? { trace_excerpt: this.trace.slice(Math.max(0, first - 40), first + 1) } : {}),
    };
  }
}

/** Await a promise while driving virtual time (work that needs timers cannot deadlock the run). */
export function driver(clock: VirtualClock) {
  return async function drive<T>(p: Promise<T>, limitMs = 30_000): Promise<T | undefined> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    const end = clock.nowMs() + limitMs;
    while (!done) {
      await settle();
      if (done) break;
      if (!clock.step(end)) {
        await settle();
        if (!done) return undefined;
      }
    }
    return p.catch(() => undefined);
  };
}

/**
 * Every simulated node's settings: small builds and symbols (many generations, many repairs per
 * run), no background scrub (scrubs are steps of the workload), exact vector scans (no native
 * HNSW on a simulated disk), and a health machine that never gives up (faults are the point).
 */
export const SIM_NODE: Pick<NodeConfig, 'build' | 'scrub_interval_ms' | 'health_policy' | 'engine'> = {
  build: { batch_max_commits: 8, build_interval_ms: 100 },
  scrub_interval_ms: 0,
  health_policy: { max_activation_failures: 1000, max_corruptions: 1000 },
  engine: {
    hnsw_min_rows: 1e9,
    repair: { symbol_size: 256, overhead_ratio: 0.25, max_block_symbols: 64, min_repair_per_block: 2 },
    retention: { keep_last: 4, keep_newer_than_ms: 0 },
    max_segments: 4,
  },
};
