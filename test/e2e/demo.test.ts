import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { REPO } from '../helpers/tmp.ts';

test('npm start (the demo): 3 processes, replicas activate the writer generation, searches answer, clean stop', () => {
  const r = spawnSync(process.execPath, [path.join(REPO, 'src/cli/main.ts'), 'demo', '--exit'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const manifest = /writer activated (gen-\d+)\s+manifest ([0-9a-f]{64})/.exec(r.stdout);
  assert.ok(manifest, r.stdout);
  for (const rep of ['replica-1', 'replica-2'])
    assert.match(
      r.stdout,
      new RegExp(`${rep} fetched symbols from peers and activated ${manifest[1]}\\s+manifest ${manifest[2]}`),
    );
  assert.match(r.stdout, /search on replica-1 "majority of replicas" \[lexical\] gen-\d+: quorum/);
  assert.match(
    r.stdout,
    /time travel on replica-2: as_of_commit_seq=1 → gen-1: cat; latest gen-\d+: \(none\)/,
  );
  assert.match(r.stdout, /stopped\.\n?$/);
});
