#!/usr/bin/env node
// Entry point of the `fsmesh` command. The sources are TypeScript run by Node's type stripping,
// which needs Node >= 22.18. `npm ci` installs a pinned Node 24 (package `node`); when this file is
// started by an older system Node, it re-runs itself on that pinned binary.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  const here = dirname(fileURLToPath(import.meta.url));
  const pinned = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(`fsmesh needs Node >= 22.18 (found ${process.versions.node}); run \`npm ci\` to install the pinned Node.\n`);
    process.exit(2);
  }
  const r = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
await import('../src/cli/main.ts');
