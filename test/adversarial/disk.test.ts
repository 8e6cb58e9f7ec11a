/**
 * Damaged disks: `verify` is read-only (it reports a torn tail, it does not cut it) and checks
 * symbol files too; a symbol file whose header claims huge counts is refused cleanly — by verify,
 * by the node's repair path and by a peer asking for symbols — never a crash.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { createNode } from '../../src/node/index.ts';
import { cli, tmpDir, writeJsonl } from '../helpers/tmp.ts';

function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      h.update(p);
      if (e.isDirectory()) walk(p);
      else h.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

const docs = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `d${i}`, text: `disk document ${i} words` }));

test('verify is read-only: a torn tail is reported, not cut; --fix cuts it', () => {
  const dir = tmpDir();
  const data = path.join(dir, 'data');
  assert.equal(cli(['ingest', '--data', data, writeJsonl(dir, 'a.jsonl', docs(5))]).code, 0);
  const logDir = path.join(data, 'log');
  const seg = path.join(logDir, fs.readdirSync(logDir).filter((f) => f.endsWith('.log'))[0]);
  fs.appendFileSync(seg, Buffer.from([9, 0, 0, 0, 1, 2]));
  const before = treeHash(data);
  const v = cli(['verify', '--data', data]);
  assert.equal(v.code, 1);
  assert.equal(v.json.log_ok, false);
  assert.match(v.stderr, /torn tail .* `fsmesh verify --fix` or starting the node cuts it/);
  assert.equal(treeHash(data), before, 'verify changed nothing');
  const f = cli(['verify', '--data', data, '--fix']);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.json.log_ok, true);
  assert.notEqual(treeHash(data), before, '--fix did repair');
  assert.equal(cli(['verify', '--data', path.join(dir, 'nope')]).code, 2);
});

test('a symbol file claiming huge counts is refused cleanly by verify, repair and peers', async () => {
  const dir = tmpDir();
  const node = await createNode({
    data_dir: dir,
    build: { batch_max_commits: 1000, build_interval_ms: 60_000 },
  });
  await node.ingest(docs(30));
  await node.buildNow();
  const m = await node.engine.generations.loadManifest(node.status().artifact_manifest_id!);
  const seg = m.lexical_artifacts.find((a) => a.role === 'segment')!.object_id;
  await node.stop();
  const symFile = path.join(dir, 'symbols/artifact', seg.slice(0, 2), seg);
  const b = fs.readFileSync(symFile);
  b.writeUInt32LE(0x7fffffff, 24); // source symbol count
  b.writeUInt32LE(0x7fffffff, 28); // repair symbol count
  fs.writeFileSync(symFile, b);
  const v = cli(['verify', '--data', dir]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, new RegExp(`symbol file: symbols of ${seg}: implausible header`));
  assert.equal(v.json.symbol_problems.length, 1);
  // The node opens, serves, and its repair path regenerates the symbol file from the intact object.
  const again = await createNode({ data_dir: dir });
  await assert.rejects(again.engine.symbols.getSymbols('artifact', seg, [0]), /implausible header/);
  assert.equal(await again.requestRepair(seg), 'ok');
  assert.equal((await again.engine.symbols.getSymbols('artifact', seg, [0])).size, 1);
  assert.equal((await again.search({ q: 'document 3', mode: 'lexical' })).hits[0].doc_id, 'd3');
  await again.stop();
  assert.equal(cli(['verify', '--data', dir]).code, 0);
});
