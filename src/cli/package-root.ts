/**
 * The fsmesh package's root folder (the one holding its package.json), found from this module:
 * the sources (`src/cli`) and the build (`dist/src/cli`) sit at different depths, and an installed
 * package lives under a host app's `node_modules`. Bundled files (the bin, the demo corpus) and the
 * cache are found from here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

export function packageRoot(): string {
  if (root !== null) return root;
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; ) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        if ((JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'fsmesh') {
          root = dir;
          return dir;
        }
      } catch {
        // an unreadable package.json on the way up: not ours, keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('fsmesh: cannot find the package root (package.json named "fsmesh")');
    dir = up;
  }
}
