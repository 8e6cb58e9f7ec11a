import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { CommitCapsule } from '../../src/core/capsule.ts';
import type { FsmeshError } from '../../src/core/errors.ts';
import { CapsuleLog, LOG_DIR } from '../../src/storage/capsule-log.ts';
import { runtimeAt, tmpDir } from '../helpers/tmp.ts';

const cap = (i: number, key?: string): CommitCapsule => ({
  format: 1,
  shard: 'default',
  ops: [{ op: 'upsert', doc_id: `d${i}`, text: `document number ${i} with some text` }],
  ...(key ? { idempotency_key: key } : {}),
});

async function openLog(
  dir: string,
  warnings: string[] = [],
  opts: Partial<Parameters<typeof CapsuleLog.open>[0]> = {},
) {
  const rt = runtimeAt(dir);
  return CapsuleLog.open({
    storage: rt.storage,
    clock: rt.clock,
    onRecovery: (e) => warnings.push(e.type),
    ...opts,
  });
}

function segFile(dir: string): string {
  const names = fs.readdirSync(path.join(dir, LOG_DIR));
  return path.join(dir, LOG_DIR, names[names.length - 1]);
}

test('append assigns gap-free commit_seq, chains markers and survives reopen', async () => {
  const dir = tmpDir();
  const log = await openLog(dir);
  const acks = await Promise.all([1, 2, 3, 4, 5].map((i) => log.append(cap(i))));
  assert.deepEqual(
    acks.map((a) => a.commit_seq),
    [1, 2, 3, 4, 5],
  );
  const r3 = await log.read(3);
  assert.equal(r3.marker.prev_marker_id, acks[1].marker_id);
  await log.close();
  const again = await openLog(dir);
  assert.equal(again.commitSeqHigh, 5);
  assert.equal(again.headMarker, acks[4].marker_id);
  assert.equal((await again.read(5)).capsule.ops[0].doc_id, 'd5');
  await again.close();
});

test('a torn tail at every byte offset of the last record is cut with a warning', async () => {
  const dir = tmpDir();
  const log = await openLog(dir);
  for (let i = 1; i <= 3; i++) await log.append(cap(i));
  await log.close();
  const file = segFile(dir);
  const full = fs.readFileSync(file);
  // Offset of record 3 = size after two records.
  const d2 = tmpDir();
  const l2 = await openLog(d2);
  await l2.append(cap(1));
  await l2.append(cap(2));
  await l2.close();
  const lastStart = fs.statSync(segFile(d2)).size;
  assert.ok(lastStart < full.length);
  for (let cut = lastStart + 1; cut < full.length; cut++) {
    fs.writeFileSync(file, full.subarray(0, cut));
    const warnings: string[] = [];
    const l = await openLog(dir, warnings);
    assert.equal(l.commitSeqHigh, 2, `cut at ${cut}`);
    assert.equal(warnings.length, 1);
    assert.equal(fs.statSync(file).size, lastStart);
    // The log keeps working after the cut.
    const ack = await l.append(cap(3));
    assert.equal(ack.commit_seq, 3);
    await l.close();
    assert.deepEqual(fs.readFileSync(file), full, 'reappending the same capsule restores identical bytes');
  }
});

test('garbage written over the end of the last record is a torn tail too', async () => {
  const dir = tmpDir();
  const log = await openLog(dir);
  for (let i = 1; i <= 2; i++) await log.append(cap(i));
  await log.close();
  const file = segFile(dir);
  const buf = fs.readFileSync(file);
  buf.fill(0, buf.length - 10);
  fs.writeFileSync(file, buf);
  const warnings: string[] = [];
  const l = await openLog(dir, warnings);
  assert.equal(l.commitSeqHigh, 1);
  assert.equal(warnings[0], 'log_torn_tail_cut');
  await l.close();
});

test('corruption in the middle is an error naming the offset; nothing is dropped', async () => {
  const dir = tmpDir();
  const log = await openLog(dir);
  for (let i = 1; i <= 3; i++) await log.append(cap(i));
  await log.close();
  const file = segFile(dir);
  const before = fs.readFileSync(file);
  const buf = Buffer.from(before);
  buf[24 + 8 + 90] ^= 0xff; // inside record 1's capsule bytes
  fs.writeFileSync(file, buf);
  await assert.rejects(openLog(dir), (e: FsmeshError) => {
    assert.equal(e.code, 'corrupt_data');
    assert.match(e.message, /offset 24/);
    assert.match(e.message, /commit_seq 1/);
    return true;
  });
  assert.equal(fs.statSync(file).size, before.length, 'the file was not truncated');
});

test('a newer log format version is refused', async () => {
  const dir = tmpDir();
  const log = await openLog(dir);
  await log.append(cap(1));
  await log.close();
  const file = segFile(dir);
  const buf = fs.readFileSync(file);
  buf.writeUInt32LE(99, 8);
  fs.writeFileSync(file, buf);
  await assert.rejects(openLog(dir), /newer fsmesh/);
});

test('idempotency key: a retried batch is acknowledged once, not applied twice', async () => {
  const dir = tmpDir();
  const log = await openLog(dir);
  const [a, b] = await Promise.all([log.append(cap(1, 'k1')), log.append(cap(1, 'k1'))]);
  assert.equal(a.commit_seq, 1);
  assert.equal(b.commit_seq, 1);
  assert.equal(b.deduplicated, true);
  await assert.rejects(log.append(cap(2, 'k1')), /already used for a different batch/);
  await log.close();
  const again = await openLog(dir);
  const c = await again.append(cap(1, 'k1'));
  assert.equal(c.commit_seq, 1);
  assert.equal(c.deduplicated, true);
  assert.equal(again.commitSeqHigh, 1);
  await again.close();
});

test('reopening finds idempotency keys without decoding every capsule, whatever else the capsules hold', async () => {
  const dir = tmpDir();
  const log = await openLog(dir);
  // A key, a user field of that name, text quoting it, a JSON escape: only commit 1 has a key.
  await log.append(cap(1, 'k1'));
  await log.append({
    format: 1,
    shard: 'default',
    ops: [{ op: 'upsert', doc_id: 'f', text: 'x', fields: { idempotency_key: 'not-a-key' } }],
  });
  await log.append({
    format: 1,
    shard: 'default',
    ops: [{ op: 'upsert', doc_id: 'q', text: 'idempotency_key": "k9"' }],
  });
  await log.append({
    format: 1,
    shard: 'default',
    ops: [{ op: 'upsert', doc_id: 'u', text: 'bell \u0007' }],
  });
  await log.append(cap(5, 'k5'));
  await log.close();
  const again = await openLog(dir);
  assert.equal(again.commitSeqHigh, 5);
  assert.equal((await again.append(cap(1, 'k1'))).deduplicated, true);
  assert.equal((await again.append(cap(5, 'k5'))).commit_seq, 5);
  // Names that only appear inside documents are not keys: these append as new commits.
  for (const k of ['not-a-key', 'k9']) assert.equal((await again.append(cap(7, k))).deduplicated, false);
  await again.close();
});

test('group commit batches appends into fewer fsyncs and acks all of them', async () => {
  const dir = tmpDir();
  const log = await openLog(dir, [], { durability: { mode: 'group', group_commit_ms: 5 } });
  const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(cap(i))));
  assert.deepEqual(
    acks.map((a) => a.commit_seq),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  await log.close();
  assert.equal((await openLog(dir)).commitSeqHigh, 50);
});

test('segments roll and the chain verifies across them', async () => {
  const dir = tmpDir();
  const log = await openLog(dir, [], { segment_max_bytes: 400 });
  for (let i = 1; i <= 12; i++) await log.append(cap(i));
  assert.ok(log.segmentNames.length > 2);
  await log.close();
  const again = await openLog(dir, [], { segment_max_bytes: 400 });
  assert.equal(again.commitSeqHigh, 12);
  assert.equal((await again.read(7)).capsule.ops[0].doc_id, 'd7');
  await again.close();
});

test('a replica accepts only records that extend its chain', async () => {
  const w = await openLog(tmpDir());
  const r = await openLog(tmpDir());
  for (let i = 1; i <= 3; i++) await w.append(cap(i));
  const rec1 = await w.read(1);
  const rec2 = await w.read(2);
  const rec3 = await w.read(3);
  await assert.rejects(r.appendReplicated(rec2.marker, rec2.capsule_bytes), /expected commit_seq 1/);
  await r.appendReplicated(rec1.marker, rec1.capsule_bytes);
  const forged = { ...rec2.marker, prev_marker_id: 'ab'.repeat(32) };
  await assert.rejects(r.appendReplicated(forged, rec2.capsule_bytes), /prev_marker_id/);
  await assert.rejects(r.appendReplicated(rec3.marker, rec2.capsule_bytes), /commit_id does not match/);
  await r.appendReplicated(rec2.marker, rec2.capsule_bytes);
  await r.appendReplicated(rec3.marker, rec3.capsule_bytes);
  assert.equal(r.headMarker, w.headMarker);
  await w.close();
  await r.close();
});

test('truncateAfter (failover) keeps exactly the prefix, across segments, durably; appends continue from it', async () => {
  const dir = tmpDir();
  const log = await openLog(dir, [], { segment_max_bytes: 300 });
  for (let i = 1; i <= 12; i++) await log.append(cap(i, `k${i}`));
  const markerAt5 = log.markerIdAt(5);
  assert.ok(
    fs.readdirSync(path.join(dir, LOG_DIR)).filter((f) => f.endsWith('.log')).length > 2,
    'several segments',
  );
  assert.equal((await log.truncateAfter(5)).removed, 7);
  assert.equal(log.commitSeqHigh, 5);
  assert.equal(log.headMarker, markerAt5);
  await assert.rejects(log.read(6), /not in the log/);
  // An idempotency key of a cut commit is free again; one of a kept commit still deduplicates.
  assert.equal((await log.append(cap(99, 'k7'))).commit_seq, 6);
  assert.equal((await log.append(cap(3, 'k3'))).deduplicated, true);
  await log.close();
  const again = await openLog(dir);
  assert.equal(again.commitSeqHigh, 6, 'the cut survives a reopen and the chain verifies');
  assert.equal(again.markerIdAt(5), markerAt5);
  assert.equal((await again.read(6)).capsule.ops[0].doc_id, 'd99');
  await again.close();
});

test('a duplicate replicated record is acknowledged only once the first copy is durable', async () => {
  const w = await openLog(tmpDir());
  await w.append(cap(1));
  const rec = await w.read(1);
  // Group commit: the first copy waits for its flush; a duplicate (a retried push) must not be
  // acknowledged before it — an ack promises the record survives a crash.
  const r = await openLog(tmpDir(), [], { durability: { mode: 'group', group_commit_ms: 60_000 } });
  const order: string[] = [];
  const first = r.appendReplicated(rec.marker, rec.capsule_bytes).then((a) => {
    order.push(`first durable=${r.commitSeqHigh}`);
    return a;
  });
  const dup = r.appendReplicated(rec.marker, rec.capsule_bytes).then((a) => {
    order.push(`dup durable=${r.commitSeqHigh}`);
    return a;
  });
  const [a, b] = await Promise.all([first, dup]);
  assert.equal(b.deduplicated, true);
  assert.equal(a.marker_id, b.marker_id);
  assert.deepEqual(order, ['first durable=1', 'dup durable=1']);
  await w.close();
  await r.close();
});
