/**
 * Trust on first use: a seed claiming to be the writer is trusted at once (a sync may start), and
 * `pinDurable` resolves once the pin is on disk — what activations and log appends wait for. A pin
 * whose write failed fails its waiters once; later waiters are not held by it for good.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterOptions } from '../../src/p2p/cluster-options.ts';
import { Membership } from '../../src/p2p/services/membership.ts';
import { nodeFsStorage, type Storage } from '../../src/runtime/index.ts';
import { tmpDir } from '../helpers/tmp.ts';

function membership(storage: Storage) {
  const c = { storage, transport: { peerId: 'me' } } as unknown as ConstructorParameters<
    typeof Membership
  >[0];
  return new Membership(c, clusterOptions({ role: 'replica', seed_peer_ids: ['seed-writer'] }));
}

test('the pin is trusted at once and durable when its write is done; a failed write holds no one for good', async () => {
  const disk = nodeFsStorage(tmpDir());
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let failNext = false;
  const slow: Storage = {
    ...disk,
    writeFile: async (p, data, o) => {
      await gate;
      if (failNext) throw Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' });
      return disk.writeFile(p, data, o);
    },
  };
  const m = membership(slow);
  assert.equal(await Promise.race([m.pinWriter('stranger'), Promise.resolve('pending')]), false);
  const pin = m.pinWriter('seed-writer');
  assert.equal(m.trusted, 'seed-writer', 'trusted before the write completes');
  let durable = false;
  const waiting = m.pinDurable().then(() => {
    durable = true;
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(durable, false, 'not durable while the write is held');
  release();
  assert.equal(await pin, true);
  await waiting;
  assert.equal(durable, true);
  assert.equal(new TextDecoder().decode(await disk.readFile('trusted-writer')).trim(), 'seed-writer');
  // A write that fails: its waiters see the error; the next ones are not held by it.
  const m2 = membership(slow);
  failNext = true;
  const pin2 = m2.pinWriter('seed-writer');
  const wait2 = m2.pinDurable();
  await assert.rejects(pin2, /ENOSPC/);
  await assert.rejects(wait2, /ENOSPC/);
  await m2.pinDurable();
});
