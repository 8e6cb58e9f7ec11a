/** The semantic quality tier for CLI commands; its converted table is cached beside the installed packages. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nodeFsStorage } from '../runtime/index.ts';
import { packageRoot } from './package-root.ts';

export async function semanticEmbedder() {
  const { StaticEmbedder } = await import('../search/vector/static-embedder.ts');
  const cacheDir = process.env.FSMESH_CACHE_DIR ?? path.join(packageRoot(), 'node_modules/.cache/fsmesh');
  fs.mkdirSync(cacheDir, { recursive: true });
  return StaticEmbedder.load(nodeFsStorage(cacheDir));
}
