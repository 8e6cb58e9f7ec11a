/**
 * The storage seam's range reads (src/runtime/storage.ts), on real files and on the simulator's
 * disk alike: a read stops at the end of the file, into the caller's buffer or into a new one
 * never larger than the file holds (a damaged length field cannot make it allocate gigabytes);
 * `exists` answers for files and directories, and false for what is not there.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimDisk } from '../../sim/disk.ts';
import { nodeFsStorage, type Storage, seededRandom } from '../../src/runtime/index.ts';
import { tmpDir } from '../helpers/tmp.ts';

const disks: [string, () => Storage][] = [
  ['files', () => nodeFsStorage(tmpDir())],
  ['simulated disk', () => new SimDisk(seededRandom(1)).mount()],
];

for (const [name, open] of disks)
  test(`range reads stop at the end of the file (${name})`, async () => {
    const s = open();
    const bytes = new Uint8Array(10_000).map((_, i) => i & 255);
    await s.mkdirp('objects');
    await s.writeFile('objects/a.bin', bytes);
    // Inside, across the end, past the end: never more than the file holds.
    assert.deepEqual(await s.readRange('objects/a.bin', 100, 50), bytes.subarray(100, 150));
    const tail = await s.readRange('objects/a.bin', 9_990, 2 ** 31);
    assert.deepEqual(tail, bytes.subarray(9_990));
    assert.equal((await s.readRange('objects/a.bin', 20_000, 10)).length, 0);
    // Into the caller's buffer: a view of it, shorter at the end of the file.
    const into = new Uint8Array(64).fill(0xee);
    const got = await s.readRange('objects/a.bin', 9_980, 64, into);
    assert.equal(got.length, 20);
    assert.deepEqual(got, bytes.subarray(9_980));
    assert.equal(into[20], 0xee, 'nothing written past what was read');
    assert.equal(await s.exists('objects/a.bin'), true);
    assert.equal(await s.exists('objects'), true);
    assert.equal(await s.exists('objects/b.bin'), false);
    await assert.rejects(s.readRange('objects/b.bin', 0, 1));
  });
