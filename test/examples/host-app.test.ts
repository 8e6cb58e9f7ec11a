import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { http } from '../helpers/proc.ts';
import { REPO, tmpDir } from '../helpers/tmp.ts';

test('examples/host-app embeds the node actors in its own nact system and serves its own route', async () => {
  const child = spawn(
    process.execPath,
    [path.join(REPO, 'examples/host-app/app.ts'), '--data', path.join(tmpDir(), 'd')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /"url":"([^"]+)"/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (c) => reject(new Error(`exited ${c}`)));
    });
    const post = await http('POST', `${url}/app/notes`, [
      { id: 'n1', text: 'buy oat milk' },
      { id: 'n2', text: 'call the plumber' },
    ]);
    assert.equal(post.status, 200);
    const s = await http(
      'GET',
      `${url}/v1/search?q=milk&mode=lexical&min_commit_seq=${post.json.commit_seq}&timeout_ms=5000`,
    );
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.hits[0].doc_id, 'n1');
    const own = await http('GET', `${url}/app/notes`);
    assert.deepEqual(own.json, { notes_seen: 2, search_generation: s.json.generation_id });
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
