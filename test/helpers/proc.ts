/** Start real `fsmesh node start` processes on 127.0.0.1 and talk to them over HTTP. */
import { type ChildProcess, spawn } from 'node:child_process';
import { freeLoopbackPort } from '../../src/runtime/loopback-port.ts';
import { CLI } from './tmp.ts';

export const freePort = freeLoopbackPort;

export interface NodeProc {
  child: ChildProcess;
  url: string;
  ready: Record<string, unknown>;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startNodeProc(
  args: string[],
  timeoutMs = 30_000,
  env: Record<string, string> = {},
): Promise<NodeProc> {
  const child = spawn(process.execPath, [CLI, 'node', 'start', '--quiet', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`node did not become ready: ${out}\n${err}`)), timeoutMs);
    child.stdout!.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        if (line.includes('"ready":true')) {
          clearTimeout(t);
          resolve(JSON.parse(line));
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`node exited with ${code} before ready: ${out}\n${err}`));
    });
  });
  return {
    child,
    url: String(ready.http),
    ready,
    output: () => out + err,
    kill: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        // Already gone — exited, or killed by a signal (exitCode stays null then): waiting for
        // 'exit' again would hang the test's cleanup for good, hiding why it failed.
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        if (child.signalCode === null && !child.kill(signal)) resolve(null);
      }),
  };
}

export async function http(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, json, text };
}

export async function waitFor<T>(
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
