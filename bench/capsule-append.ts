/**
 * Capsule append throughput (issue 3): commits/s with fsync per commit and with group commit,
 * against raw fs.writeSync + fsyncSync of the same record bytes, measured in the same run.
 *   node bench/capsule-append.ts [--commits N]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type CommitCapsule, commitIdOf, encodeCapsule } from '../src/core/capsule.ts';
import { markerIdOf } from '../src/core/marker.ts';
import { nodeFsStorage, systemClock } from '../src/runtime/index.ts';
import { CapsuleLog, type DurabilityPolicy, encodeRecord } from '../src/storage/capsule-log.ts';
import { arg, benchDir, nowMs, report, round } from './util.ts';

const N = arg('commits', 2000);
const capsules: CommitCapsule[] = Array.from({ length: N }, (_, i) => ({
  format: 1,
  shard: 'default',
  ops: [
    {
      op: 'upsert',
      doc_id: `doc-${i}`,
      title: `Title ${i}`,
      text: `a short document body number ${i} with a few words in it`,
    },
  ],
}));

async function runLog(durability: DurabilityPolicy, concurrency: number): Promise<number> {
  const dir = benchDir('append');
  const log = await CapsuleLog.open({ storage: nodeFsStorage(dir), clock: systemClock, durability });
  const t0 = nowMs();
  let next = 0;
  // `concurrency` writers each awaiting their ack: what group commit is for.
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < N) await log.append(capsules[next++]);
    }),
  );
  const ms = nowMs() - t0;
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return (N / ms) * 1000;
}

function rawBaseline(): number {
  const dir = benchDir('raw');
  const fd = fs.openSync(path.join(dir, 'raw.log'), 'a');
  let prev = '0'.repeat(64);
  const records = capsules.map((c, i) => {
    const bytes = encodeCapsule(c);
    const m = { commit_seq: i + 1, commit_id: commitIdOf(bytes), prev_marker_id: prev };
    prev = markerIdOf(m);
    return encodeRecord(m, bytes);
  });
  const t0 = nowMs();
  for (const r of records) {
    fs.writeSync(fd, r);
    fs.fdatasyncSync(fd);
  }
  const ms = nowMs() - t0;
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
  return (N / ms) * 1000;
}

const raw = rawBaseline();
const fsyncEach = await runLog({ mode: 'fsync' }, 1);
const fsyncEach16 = await runLog({ mode: 'fsync' }, 16);
const group16 = await runLog({ mode: 'group', group_commit_ms: 2 }, 16);
const group64 = await runLog({ mode: 'group', group_commit_ms: 2 }, 64);
report('capsule-append', {
  commits: N,
  baseline: 'raw fs.writeSync + fdatasyncSync per record, same bytes',
  raw_commits_per_s: round(raw, 1),
  fsync_per_commit: {
    writers: 1,
    commits_per_s: round(fsyncEach, 1),
    ratio_to_raw: round(fsyncEach / raw, 3),
  },
  fsync_per_commit_16_writers: {
    writers: 16,
    commits_per_s: round(fsyncEach16, 1),
    ratio_to_raw: round(fsyncEach16 / raw, 3),
  },
  group_commit_2ms_16_writers: {
    writers: 16,
    commits_per_s: round(group16, 1),
    ratio_to_raw: round(group16 / raw, 3),
  },
  group_commit_2ms_64_writers: {
    writers: 64,
    commits_per_s: round(group64, 1),
    ratio_to_raw: round(group64 / raw, 3),
  },
});
