/**
 * Self-healing degraded mode with a real process: activations fail because an artifact the next
 * generation reuses is damaged beyond local repair (and there are no peers); after the failures
 * pass the threshold the node is degraded and suspends activations. Once the artifact is sound
 * again, the node's own probe (scrub, then one activation) brings it back to healthy — no operator.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { activeAt } from '../helpers/cluster.ts';
import { http, startNodeProc, waitFor } from '../helpers/proc.ts';
import { tmpDir } from '../helpers/tmp.ts';

test('a node degraded by failed activations heals by itself once the cause is gone', async () => {
  const dir = path.join(tmpDir(), 'd');
  const n = await startNodeProc([
    '--data',
    dir,
    '--http',
    '127.0.0.1:0',
    '--batch-max-commits',
    '1',
    '--build-interval-ms',
    '5',
    '--degraded-probe-interval-ms',
    '300',
  ]);
  try {
    const first = await http('POST', `${n.url}/v1/docs`, [{ id: 'a', text: 'self healing first document' }]);
    assert.equal(first.status, 200, first.text);
    const s1 = await activeAt(n.url, first.json.commit_seq, 20_000);
    const m = (await http('GET', `${n.url}/v1/generations`)).json.generations[0];
    assert.equal(m.artifact_manifest_id, s1.artifact_manifest_id);
    // Damage the gen-1 segment (which gen-2 reuses) and remove its repair symbols.
    const segDir = path.join(dir, 'objects/artifact');
    const victims = fs
      .readdirSync(segDir)
      .flatMap((p) => fs.readdirSync(path.join(segDir, p)).map((f) => path.join(segDir, p, f)));
    const good = new Map(victims.map((f) => [f, fs.readFileSync(f)]));
    for (const f of victims) {
      const b = Buffer.from(good.get(f)!);
      b[Math.floor(b.length / 2)] ^= 0xff;
      fs.writeFileSync(f, b);
      fs.rmSync(f.replace(`${path.sep}objects${path.sep}`, `${path.sep}symbols${path.sep}`), { force: true });
    }
    // New commits: each build reuses the damaged artifacts, fails verification, and counts.
    for (let i = 0; i < 3; i++)
      await http('POST', `${n.url}/v1/docs`, [{ id: `b${i}`, text: `more text ${i}` }]);
    await waitFor(
      async () => ((await http('GET', `${n.url}/v1/status`)).json.health === 'degraded' ? true : null),
      30_000,
      'degraded',
    );
    // The cause goes away (say, a disk replaced and restored): the node heals by itself.
    for (const [f, bytes] of good) fs.writeFileSync(f, bytes);
    const healed = await waitFor(
      async () => {
        const s = (await http('GET', `${n.url}/v1/status`)).json;
        return s.health === 'healthy' && s.active_commit_seq_high === s.commit_seq_high ? s : null;
      },
      30_000,
      'the node to heal itself',
    );
    assert.ok(healed.active_commit_seq_high > first.json.commit_seq, 'the suspended commits went live');
    assert.equal((await http('GET', `${n.url}/readyz`)).status, 200);
  } finally {
    await n.kill('SIGTERM');
  }
});
