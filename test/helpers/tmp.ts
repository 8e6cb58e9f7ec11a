import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultEngineConfig, type EngineConfig, LocalEngine } from '../../src/engine/local-engine.ts';
import { nodeFsStorage, type Runtime, seededRandom, systemClock } from '../../src/runtime/index.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'bin/fsmesh.js');

const created: string[] = [];
// A test file's directories go when its process ends well; after a failure (or with
// FSMESH_KEEP_TMP=1) they stay for a post-mortem. Before this every run left hundreds behind.
process.on('exit', (code) => {
  if (code !== 0 || process.exitCode || process.env.FSMESH_KEEP_TMP) return;
  for (const d of created)
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      // A child process may still be writing; leave that one.
    }
});

export function tmpDir(prefix = 'fsmesh-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(d);
  return d;
}

export function runtimeAt(dir: string): Runtime {
  return { clock: systemClock, random: seededRandom(42), storage: nodeFsStorage(dir) };
}

export function openEngine(dir: string, over: Partial<EngineConfig> = {}): Promise<LocalEngine> {
  return LocalEngine.open(runtimeAt(dir), defaultEngineConfig(over));
}

export function cli(args: string[], opts: { input?: string } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    input: opts.input,
    timeout: 60_000,
  });
  let json: any = null;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    json = null;
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

export function writeJsonl(dir: string, name: string, docs: unknown[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, docs.map((d) => (typeof d === 'string' ? d : JSON.stringify(d))).join('\n') + '\n');
  return f;
}
