/** `npm run bench`: every benchmark in turn, each printing one JSON line. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const BENCHES = [
  'capsule-append.ts',
  'search.ts',
  'codec.ts',
  'http.ts',
  'bootstrap.ts',
  'obs.ts',
  'two-tier.ts',
  'replication.ts',
  'open.ts',
];
for (const b of BENCHES) {
  if (only.length && !only.some((o) => b.startsWith(o))) continue;
  const r = spawnSync(process.execPath, [path.join(here, b)], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = 1;
}
