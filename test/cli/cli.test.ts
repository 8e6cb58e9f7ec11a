import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cli, tmpDir, writeJsonl } from '../helpers/tmp.ts';

const docs = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({
    id: `doc-${from + i}`,
    title: `Title ${from + i}`,
    text: `body text number ${from + i} about ${i % 2 ? 'rivers' : 'mountains'}`,
  }));

test('fsmesh ingest / generations / search / verify / rollback contract', () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  const f1 = writeJsonl(dir, 'a.jsonl', docs(10));
  const r1 = cli(['ingest', '--data', data, f1]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.deepEqual(
    Object.keys(r1.json)
      .filter((k) => k !== 'built')
      .sort(),
    ['artifact_manifest_id', 'commit_seq_high', 'docs_ingested', 'generation_id'],
  );
  assert.equal(r1.json.docs_ingested, 10);
  assert.equal(r1.json.generation_id, 'gen-1');
  const f2 = writeJsonl(dir, 'b.jsonl', [...docs(5, 10), { id: 'doc-0', delete: true }]);
  const r2 = cli(['ingest', '--data', data, f2]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.json.generation_id, 'gen-2');

  const g = cli(['generations', '--data', data, '--json']);
  assert.equal(g.code, 0);
  assert.equal(g.json.active, 'gen-2');
  assert.deepEqual(
    g.json.generations.map((x: any) => [x.generation_id, x.active]),
    [
      ['gen-2', true],
      ['gen-1', false],
    ],
  );
  assert.equal(g.json.generations[1].commit_range.from_commit_seq, 1);

  for (const mode of ['lexical', 'vector', 'hybrid']) {
    const s = cli(['search', '--data', data, 'mountains', '--k', '3', '--mode', mode]);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(
      Object.keys(s.json).filter((k) => ['generation_id', 'commit_seq_high', 'mode', 'hits'].includes(k))
        .length,
      4,
    );
    assert.equal(s.json.mode, mode);
    assert.equal(s.json.hits.length, 3);
    assert.deepEqual(Object.keys(s.json.hits[0]).sort(), ['doc_id', 'rank', 'score']);
  }
  const tt = cli([
    'search',
    '--data',
    data,
    'number 0',
    '--mode',
    'lexical',
    '--as-of-commit-seq',
    String(r1.json.commit_seq_high),
  ]);
  assert.equal(tt.json.generation_id, 'gen-1');
  assert.ok(tt.json.hits.some((h: any) => h.doc_id === 'doc-0'));
  const now = cli(['search', '--data', data, 'number 0', '--mode', 'lexical']);
  assert.ok(
    !now.json.hits.some((h: any) => h.doc_id === 'doc-0'),
    'deleted doc is gone in the latest generation',
  );

  assert.equal(cli(['verify', '--data', data]).code, 0);
  const rb = cli(['rollback', '--data', data]);
  assert.equal(rb.code, 0, rb.stderr);
  assert.equal(rb.json.active, 'gen-1');
  assert.equal(cli(['generations', '--data', data, '--json']).json.active, 'gen-1');
});

test('search input errors are clear', () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  cli(['ingest', '--data', data, writeJsonl(dir, 'a.jsonl', docs(3))]);
  const cases: [string[], RegExp][] = [
    [['search', '--data', data, ''], /non-empty/],
    [['search', '--data', data, 'x'.repeat(2000)], /longer than 1024/],
    [['search', '--data', data, 'q', '--mode', 'fuzzy'], /mode: must be one of/],
    [['search', '--data', data, 'q', '--k=-1'], /k: must be an integer/],
    [['search', '--data', data, 'q', '--k', '0'], /k: must be an integer/],
    [['search', '--data', data, 'q', '--as-of-commit-seq', '99'], /beyond the head/],
    [['search', '--data', data, 'q', '--min-commit-seq', '99', '--timeout-ms', '50'], /timed out/],
    [['search', '--data', data, 'q', '--bogus'], /Unknown option/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('a malformed JSONL file is reported by line and nothing from it is committed', () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  const ok = cli(['ingest', '--data', data, writeJsonl(dir, 'ok.jsonl', docs(4))]);
  assert.equal(ok.code, 0);
  const bad = writeJsonl(dir, 'bad.jsonl', [
    { id: 'new-1', text: 'fine' },
    '{"id": "x", "text": ',
    { text: 'no id' },
    { id: 'y', text: ['not', 'a', 'string'] },
  ]);
  const r = cli(['ingest', '--data', data, bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.jsonl:2: invalid JSON/);
  assert.match(r.stderr, /bad\.jsonl:3\.id/);
  assert.match(r.stderr, /bad\.jsonl:4\.text/);
  const g = cli(['generations', '--data', data, '--json']);
  assert.equal(g.json.generations.length, 1);
  assert.equal(g.json.generations[0].commit_seq_high, ok.json.commit_seq_high);
  const s = cli(['search', '--data', data, 'fine', '--mode', 'lexical']);
  assert.equal(s.json.hits.length, 0);
  assert.equal(cli(['verify', '--data', data]).code, 0);
});

test('manifest validate: exit 0 when valid, else each problem with its path', () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  const r = cli(['ingest', '--data', data, writeJsonl(dir, 'a.jsonl', docs(3))]);
  const id = r.json.artifact_manifest_id;
  const mfile = path.join(data, 'objects/manifest', id.slice(0, 2), id);
  assert.equal(cli(['manifest', 'validate', mfile]).code, 0);
  const m = JSON.parse(fs.readFileSync(mfile, 'utf8'));
  delete m.embedder.revision_hash;
  m.commit_range.from_commit_seq = 'one';
  const bad = path.join(dir, 'bad-manifest.json');
  fs.writeFileSync(bad, JSON.stringify(m));
  const v = cli(['manifest', 'validate', bad]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /\$\.embedder\.revision_hash: missing/);
  assert.match(v.stderr, /\$\.commit_range\.from_commit_seq/);
});

test('verify names each corrupt object and exits 1; usage errors exit 2', () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  cli(['ingest', '--data', data, writeJsonl(dir, 'a.jsonl', docs(5))]);
  const artDir = path.join(data, 'objects/artifact');
  const prefix = fs.readdirSync(artDir)[0];
  const victim = fs.readdirSync(path.join(artDir, prefix))[0];
  const file = path.join(artDir, prefix, victim);
  const b = fs.readFileSync(file);
  b[Math.floor(b.length / 2)] ^= 1;
  fs.writeFileSync(file, b);
  const v = cli(['verify', '--data', data]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, new RegExp(`corrupt artifact object ${victim}`));
  // Read-time verification: the corrupt artifact is rebuilt from local symbols and the answer is right.
  const s = cli(['search', '--data', data, 'rivers']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stderr, new RegExp(`artifact repaired from local symbols.*${victim}`));
  assert.equal(cli(['verify', '--data', data]).code, 0);
  // When the symbols are gone too, the query fails cleanly naming the object: never a wrong answer.
  fs.writeFileSync(file, b);
  fs.rmSync(path.join(data, 'symbols/artifact', victim.slice(0, 2), victim));
  const s2 = cli(['search', '--data', data, 'rivers']);
  assert.equal(s2.code, 1);
  assert.match(s2.stderr, new RegExp(`${victim}.*symbols from peers are needed`));
  assert.equal(cli(['ingest']).code, 2);
  assert.equal(cli(['frobnicate']).code, 2);
  assert.equal(cli(['verify', '--data', data, '--nope']).code, 2);
});

/** `node start` on a fresh data dir with loopback HTTP, plus `extra` flags (usage-error tests). */
const nodeStart = (data: string, ...extra: string[]) =>
  cli(['node', 'start', '--data', data, '--http', '127.0.0.1:0', ...extra]);

test('node start --bulk-lane-port: not a TCP port is a usage error naming it', () => {
  const data = path.join(tmpDir(), 'n');
  for (const [v, msg] of [
    ['70000', /--bulk-lane-port: a TCP port is at most 65535, got 70000/],
    ['x', /--bulk-lane-port: expected an integer, got "x"/],
  ] as const) {
    const r = nodeStart(data, '--listen', '/ip4/127.0.0.1/tcp/0', '--bulk-lane-port', v);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, msg);
  }
});

test('node start --postings-cache-mb / --reader-cache-mb: not a whole number is a usage error naming it', () => {
  const data = path.join(tmpDir(), 'n');
  for (const flag of ['--postings-cache-mb', '--reader-cache-mb'])
    for (const v of ['x', '-1', '1.5']) {
      const r = nodeStart(data, `${flag}=${v}`);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`${flag}: (expected|must be) an integer`));
    }
  assert.equal(fs.existsSync(data), false, 'nothing created for a refused command');
});

test('node start --announce: a malformed address or one without --listen is a usage error naming it', () => {
  const data = path.join(tmpDir(), 'n');
  const bad = nodeStart(data, '--listen', '/ip4/127.0.0.1/tcp/0', '--announce', 'localhost:9');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--announce: expected \/ip4\/HOST\/tcp\/PORT, got "localhost:9"/);
  const alone = nodeStart(data, '--announce', '/ip4/127.0.0.1/tcp/9');
  assert.equal(alone.code, 2);
  assert.match(alone.stderr, /--announce needs --listen/);
  assert.equal(fs.existsSync(data), false, 'nothing created for a refused command');
});
