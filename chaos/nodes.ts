/**
 * Real `fsmesh node start` processes on 127.0.0.1 for the chaos runner: fixed ports per node so a
 * restarted node comes back at the same address, and the signals a real operator (or a real
 * failure) sends: SIGKILL, SIGSTOP/SIGCONT, SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freeLoopbackPort } from '../src/runtime/loopback-port.ts';

export const FSMESH_BIN = new URL('../bin/fsmesh.js', import.meta.url).pathname;

export const freePort = freeLoopbackPort;

export interface ChaosNodeSpec {
  name: string;
  role: 'writer' | 'replica';
  dir: string;
  http_port: number;
  p2p_port: number;
  /** When set, the node announces this port (a partition proxy, chaos/partition.ts) instead. */
  proxy_port?: number;
  args: string[];
}

export class ChaosNode {
  readonly spec: ChaosNodeSpec;
  child: ChildProcess | null = null;
  stopped = false; // SIGSTOPped
  peer_id = '';
  multiaddr = '';
  private log = '';

  constructor(spec: ChaosNodeSpec) {
    this.spec = spec;
  }
  get url(): string {
    return `http://127.0.0.1:${this.spec.http_port}`;
  }
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }
  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }
  output(): string {
    return this.log.slice(-4000);
  }

  async start(seeds: string[], timeoutMs = 30_000): Promise<void> {
    const s = this.spec;
    const child = spawn(
      process.execPath,
      [
        FSMESH_BIN,
        'node',
        'start',
        '--quiet',
        '--name',
        s.name,
        '--data',
        s.dir,
        '--http',
        `127.0.0.1:${s.http_port}`,
        '--listen',
        `/ip4/127.0.0.1/tcp/${s.p2p_port}`,
        ...(s.proxy_port ? ['--announce', `/ip4/127.0.0.1/tcp/${s.proxy_port}`] : []),
        '--role',
        s.role,
        ...seeds.flatMap((a) => ['--seed', a]),
        ...s.args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.stopped = false;
    child.stderr!.on('data', (d) => {
      this.log = (this.log + d).slice(-20_000);
    });
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let out = '';
      const t = setTimeout(
        () => reject(new Error(`${s.name} not ready in ${timeoutMs} ms: ${this.output()}`)),
        timeoutMs,
      );
      child.stdout!.on('data', (d) => {
        out += d;
        this.log = (this.log + d).slice(-20_000);
        const line = out.split('\n').find((l) => l.includes('"ready":true'));
        if (line) {
          clearTimeout(t);
          resolve(JSON.parse(line));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`${s.name} exited with ${code} before ready: ${this.output()}`));
      });
    });
    this.peer_id = String(ready.peer_id ?? '');
    this.multiaddr = ((ready.multiaddrs as string[]) ?? [])[0] ?? '';
  }

  /** Send a signal and, for the fatal ones, wait for the exit. */
  async signal(sig: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    if (sig === 'SIGSTOP' || sig === 'SIGCONT') {
      c.kill(sig);
      this.stopped = sig === 'SIGSTOP';
      return;
    }
    if (this.stopped) c.kill('SIGCONT'); // a stopped process cannot act on SIGTERM
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(sig);
    await exited;
    this.stopped = false;
  }

  /** Remove the whole data directory (the node comes back empty, with a new identity). */
  wipe(): void {
    fs.rmSync(this.spec.dir, { recursive: true, force: true });
  }

  /** Flip one byte in the middle of a random artifact file; the path, or null if there is none. */
  corruptArtifact(pick: (n: number) => number): string | null {
    const root = path.join(this.spec.dir, 'objects', 'artifact');
    if (!fs.existsSync(root)) return null;
    const files = fs
      .readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name))
      .sort();
    if (!files.length) return null;
    const f = files[pick(files.length)];
    const b = fs.readFileSync(f);
    if (b.length === 0) return null;
    b[Math.floor(b.length / 2)] ^= 0x5a;
    fs.writeFileSync(f, b);
    return f;
  }
}
