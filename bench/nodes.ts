/** Real `fsmesh node start` processes for the cluster benchmarks, and small HTTP helpers. */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve('bin/fsmesh.js');
/** Every process started here (the benchmark kills them on exit). */
export const procs: ChildProcess[] = [];

export async function startNode(args: string[]): Promise<{ url: string; ready: any; child: ChildProcess }> {
  const child = spawn(process.execPath, [BIN, 'node', 'start', '--quiet', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"ready":true'));
      if (line) {
        const ready = JSON.parse(line);
        resolve({ url: ready.http, ready, child });
      }
    });
    child.on('exit', (c) => reject(new Error(`node exited ${c}`)));
  });
}

export const getJson = async (url: string, init?: RequestInit) =>
  (await (await fetch(url, init)).json()) as any;

export async function until<T>(fn: () => Promise<T | null>, ms = 300_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The HTTP load generator in its own process (bench/load/search-load.ts): `amount` sequential
 * searches (latency, after 100 untimed ones) then autocannon over 4 connections (throughput),
 * cycling through `queries`.
 */
export function searchLoad(
  url: string,
  queries: string[],
  o: { amount: number; mode?: string },
): Promise<any> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(here, 'load/search-load.ts'),
        '--url',
        url,
        '--amount',
        String(o.amount),
        '--connections',
        '4',
        ...(o.mode ? ['--mode', o.mode] : []),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    procs.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited ${code}`)),
    );
    child.stdin!.end(queries.join('\n'));
  });
}

/**
 * A process's resident memory now and its peak so far (VmRSS, VmHWM from /proc: Linux), in MB;
 * null where /proc is not there or the process is gone.
 */
export function rssOf(pid: number | undefined): { rss_mb: number; peak_rss_mb: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    const rss = kb('VmRSS');
    const peak = kb('VmHWM');
    if (!Number.isFinite(rss) || !Number.isFinite(peak)) return null;
    return { rss_mb: Math.round(rss / 102.4) / 10, peak_rss_mb: Math.round(peak / 102.4) / 10 };
  } catch {
    return null;
  }
}
