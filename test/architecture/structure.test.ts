/**
 * The structure rules of docs/architecture.md, checked on every `npm test` (so CI fails on a
 * violation): imports only go down (dependency-cruiser), a planted upward import is caught, no
 * function is longer than ~80 lines unless marked table-like, long files say why.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { tmpDir } from '../helpers/tmp.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CRUISER = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs');
const PRELOAD = path.join(ROOT, 'scripts/depcruise-ts5.mjs');

function cruise(cwd: string): { status: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    ['--import', PRELOAD, CRUISER, 'src', 'sim', '--config', path.join(ROOT, '.dependency-cruiser.cjs')],
    { cwd, encoding: 'utf8', timeout: 60_000 },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('imports only go down: dependency-cruiser finds no violation in src/ and sim/', () => {
  const r = cruise(ROOT);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /no dependency violations found \((\d+) modules/);
  const modules = Number(/\((\d+) modules/.exec(r.out)?.[1]);
  assert.ok(modules > 80, `the cruise saw the TypeScript sources (${modules} modules)`);
});

test('a planted upward import (type-only, core → storage) is a violation', () => {
  const copy = tmpDir();
  fs.cpSync(path.join(ROOT, 'src'), path.join(copy, 'src'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'sim'), path.join(copy, 'sim'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'tsconfig.json'), path.join(copy, 'tsconfig.json'));
  fs.writeFileSync(
    path.join(copy, 'src/core/planted.ts'),
    "import type { ObjectStore } from '../storage/object-store.ts';\nexport type Planted = ObjectStore;\n",
  );
  const r = cruise(copy);
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /layer-core: src\/core\/planted\.ts → src\/storage\/object-store\.ts/);
});

test('no function over ~80 lines except table-like code; files over ~450 lines say why', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/long-functions.mjs'), 'src'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const walk = (d: string): string[] =>
    fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(d, e.name);
      return e.isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
    });
  for (const f of walk(path.join(ROOT, 'src'))) {
    const text = fs.readFileSync(f, 'utf8');
    const lines = text.split('\n').length;
    if (lines > 450) assert.match(text.slice(0, 1500), /Length: /, `${f} has ${lines} lines and no reason`);
  }
});
