/** Shared helpers for benchmarks: timing, percentiles, temp dirs, JSON output. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const created: string[] = [];
// A benchmark's data directories (~120 MB each for the 50k corpus) go when it exits, unless
// FSMESH_KEEP_TMP=1 keeps them for inspection.
process.on('exit', () => {
  if (process.env.FSMESH_KEEP_TMP) return;
  for (const d of created)
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      // A child process may still be writing; leave that one.
    }
});

export function benchDir(name: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `fsmesh-bench-${name}-`));
  created.push(d);
  return d;
}

export function nowMs(): number {
  return performance.now();
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summarize(samplesMs: number[]) {
  const s = [...samplesMs].sort((a, b) => a - b);
  return {
    n: s.length,
    p50_ms: round(percentile(s, 50)),
    p99_ms: round(percentile(s, 99)),
    mean_ms: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
  };
}

export function round(x: number, d = 4): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

export function report(name: string, result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: name, node: process.version, ...result })}\n`);
}

export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
