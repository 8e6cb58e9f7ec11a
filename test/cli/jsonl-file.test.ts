/**
 * `fsmesh ingest` reads its file as a stream, twice: lines crossing read chunks arrive whole, a bad
 * line anywhere commits nothing, and a file that changes between the check and the commit pass is
 * refused, saying how much was committed before the change was seen.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkJsonlFile, commitJsonlFile } from '../../src/cli/jsonl-file.ts';
import type { DocOp } from '../../src/core/capsule.ts';
import { cli, tmpDir } from '../helpers/tmp.ts';

const doc = (i: number) => JSON.stringify({ id: `d${i}`, text: `document ${i} ${'word '.repeat(2000)}` });

test('lines across read chunks arrive whole; the CLI ingests a multi-megabyte file streamed', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'docs.jsonl');
  // ~10 KB lines, 400 of them: several 1 MiB chunks, lines cut at every chunk edge; CRLF and blanks.
  fs.writeFileSync(file, `${Array.from({ length: 400 }, (_, i) => doc(i)).join('\r\n')}\n\n`);
  const checked = await checkJsonlFile(file, 'docs.jsonl');
  assert.equal(checked.docs, 400);
  const seen: DocOp[] = [];
  const n = await commitJsonlFile(file, 'docs.jsonl', checked, {
    batch: 33,
    inFlight: 3,
    commit: async (ops) => {
      seen.push(...ops);
    },
  });
  assert.equal(n, 400);
  assert.deepEqual(
    seen.map((o) => o.doc_id),
    Array.from({ length: 400 }, (_, i) => `d${i}`),
  );
  const r = cli(['ingest', '--data', path.join(dir, 'data'), file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.docs_ingested, 400);
  const s = cli(['search', '--data', path.join(dir, 'data'), 'document', '--mode', 'lexical', '--k', '3']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.json.hits.length, 3);
});

test('a bad line late in the file commits nothing; a file changed between passes is refused', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'docs.jsonl');
  fs.writeFileSync(file, `${Array.from({ length: 300 }, (_, i) => doc(i)).join('\n')}\n{"id": 7}\n`);
  const r = cli(['ingest', '--data', path.join(dir, 'data'), file]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /2 problem\(s\) in docs\.jsonl, nothing committed/);
  assert.match(r.stderr, /docs\.jsonl:301/);
  assert.equal(fs.existsSync(path.join(dir, 'data')), false, 'no data directory was created');

  fs.writeFileSync(file, `${Array.from({ length: 300 }, (_, i) => doc(i)).join('\n')}\n`);
  const checked = await checkJsonlFile(file, 'docs.jsonl');
  // Changed after the check: an extra valid line (bytes differ) ...
  fs.appendFileSync(file, `${doc(999)}\n`);
  let committed = 0;
  await assert.rejects(
    commitJsonlFile(file, 'docs.jsonl', checked, {
      batch: 100,
      inFlight: 2,
      commit: async (ops) => {
        committed += ops.length;
      },
    }),
    /docs\.jsonl changed while it was being ingested \(its bytes differ.*; 301 document\(s\) were committed/,
  );
  assert.equal(committed, 301);
  // ... or a line that is no longer valid: stops there.
  fs.writeFileSync(file, `${doc(1)}\nnot json\n${doc(2)}\n`);
  await assert.rejects(
    commitJsonlFile(file, 'docs.jsonl', checked, { batch: 1, inFlight: 1, commit: async () => {} }),
    /changed while it was being ingested \(docs\.jsonl:2: invalid JSON/,
  );
  await assert.rejects(checkJsonlFile(path.join(dir, 'missing.jsonl'), 'missing.jsonl'), /cannot read/);
});
