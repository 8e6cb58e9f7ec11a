#!/usr/bin/env node
// Entry point of the `fsmesh` command, whatever path or link starts it (npx, npm link, a global
// install, `node bin/fsmesh.js`): it calls main() itself.
//
// - In a checkout of the repository (src/ beside this file) it runs the TypeScript sources with
//   Node's type stripping, which needs Node >= 22.18: `npm ci` installs a pinned Node 24 (package
//   `node`), and an older system Node re-runs this file on it.
// - In an installed package (no src/) it runs the built JavaScript in dist/ on any Node >= 22.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
const built = join(root, 'dist', 'src', 'cli', 'main.js');

let entry = built;
if (existsSync(source)) {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 18)) {
    const pinned = join(root, 'node_modules', 'node', 'bin', 'node');
    if (!existsSync(pinned)) {
      process.stderr.write(
        `fsmesh needs Node >= 22.18 to run its sources (found ${process.versions.node}); run \`npm ci\` to install the pinned Node.\n`,
      );
      process.exit(2);
    }
    const r = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
      stdio: 'inherit',
    });
    process.exit(r.status ?? 1);
  }
  entry = source;
} else if (!existsSync(built)) {
  process.stderr.write(`fsmesh: ${built} is missing: the package was not built (npm run build)\n`);
  process.exit(2);
}
// `fsmesh ingest` is a batch job whose builds allocate and free tens of MB of buffers per part.
// With V8's default young generation and glibc's adaptive mmap threshold (freed large blocks raise
// it, so later ones come from a heap that is never given back) its peak RSS was ~460 MB on the
// 50,000-document corpus; with 1 MB semi-spaces and a fixed 128 KiB mmap threshold ~245 MB, at the
// same speed (docs/benchmarks.md, bench/open.ts). Both are read only at process start, so the
// command replaces itself once (execve: same process, so a SIGKILL still ends it), unless the
// V8 flag was given; without execve (Windows) it runs as it is. Other allocators ignore the
// glibc variables.
const REEXEC = {
  ingest: {
    flags: ['--max-semi-space-size=1'],
    env: { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '1048576' },
  },
};
const tuned = REEXEC[process.argv[2]];
if (
  tuned &&
  typeof process.execve === 'function' &&
  ![...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('--max-semi-space-size'))
) {
  process.execve(
    process.execPath,
    [
      process.execPath,
      ...process.execArgv,
      ...tuned.flags,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { ...tuned.env, ...process.env },
  );
}
// V8's on-disk compile cache (Node >= 22.1; in the OS temp dir, keyed by file contents, ignored if
// unwritable; NODE_DISABLE_COMPILE_CACHE=1 turns it off): after the first run, a fresh process
// skips parsing — and, for the sources, type stripping — of every module it loads. A one-shot
// `fsmesh search` on a 50,000-document index answers in ~0.18 s instead of ~0.28 s.
module.enableCompileCache?.();
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
