/**
 * A vector shard answered through its HNSW graph is opened by its head (header and doc table, read
 * by ranges after the object is re-hashed by ranges): its rows stay on disk. Exact scans and the
 * graph's fallback then score from the graph's copy of the rows — the same scores — and the rows are
 * read for the next query; loadVectorRows reads them at once. Damage and wrong sizes are corrupt_data.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { FsmeshError } from '../../src/core/errors.ts';
import { encodeFsvi, VectorShard } from '../../src/search/vector/fsvi.ts';
import { openEngine, tmpDir } from '../helpers/tmp.ts';

function shardBytes(count: number, dims: number, embedder_id = 'hashed-64'): Uint8Array {
  const rows = Array.from({ length: count }, (_, r) =>
    Float32Array.from({ length: dims }, (_, j) => Math.sin(r * 31 + j) / 4),
  );
  return encodeFsvi({
    dims,
    quantization: 'f16',
    embedder_id,
    revision_hash: 'rev',
    segment_object_id: 'ab'.repeat(32),
    docnums: rows.map((_, r) => (r * 7) % count),
    vectors: rows,
  });
}

const ranges = (b: Uint8Array) => {
  const reads: [number, number][] = [];
  return {
    reads,
    read: async (off: number, len: number) => {
      reads.push([off, len]);
      return b.slice(off, off + len);
    },
  };
};

const corrupt = (re: RegExp) => (e: FsmeshError) =>
  e instanceof FsmeshError && e.code === 'corrupt_data' && e.details?.object_id === 'v' && re.test(e.message);

test('openHead reads the header and doc table only, as open() checks them', async () => {
  const bytes = shardBytes(500, 64);
  const whole = VectorShard.open('v', bytes);
  const r = ranges(bytes);
  const head = await VectorShard.openHead('v', bytes.length, r.read);
  for (const k of [
    'dims',
    'count',
    'quantization',
    'embedder_id',
    'revision_hash',
    'segment_object_id',
  ] as const)
    assert.equal(head[k], whole[k], k);
  assert.deepEqual(head.docnums, whole.docnums);
  assert.equal(head.has_rows, false);
  assert.throws(() => head.rows, /opened by its head/);
  const read = r.reads.reduce((n, [, len]) => n + len, 0);
  assert.ok(read < bytes.length / 10, `${read} of ${bytes.length} bytes read`);
  // A header longer than the first read (a long embedder id) is read again, whole.
  const long = shardBytes(10, 8, 'e'.repeat(6000));
  const lh = await VectorShard.openHead('v', long.length, ranges(long).read);
  assert.equal(lh.embedder_id.length, 6000);
  assert.deepEqual(lh.docnums, VectorShard.open('v', long).docnums);
});

test('openHead: a damaged header, a size that does not add up, truncation', async () => {
  const bytes = shardBytes(100, 16);
  const flipped = bytes.slice();
  flipped[20] ^= 1;
  await assert.rejects(
    VectorShard.openHead('v', flipped.length, ranges(flipped).read),
    corrupt(/header checksum/),
  );
  await assert.rejects(
    VectorShard.openHead('v', bytes.length + 64, ranges(bytes).read),
    corrupt(/do not fill/),
  );
  await assert.rejects(
    VectorShard.openHead('v', bytes.length - 2, ranges(bytes).read),
    corrupt(/do not fill/),
  );
  // A file shorter than its size says: the doc table read comes back short, nothing is allocated by it.
  const cut = async (off: number, len: number) => bytes.slice(off, Math.min(off + len, 200));
  await assert.rejects(VectorShard.openHead('v', bytes.length, cut), (e: FsmeshError) =>
    /vector shard v: truncated/.test(e.message),
  );
  // A header (crc intact) claiming 2^32 − 1 rows of 0 dims and a size to match: a clean refusal,
  // from the length of the table actually read (checked before the 16 GiB it names is allocated;
  // Linux would hand that out lazily, so this test sees the refusal, not the allocation).
  const huge = shardBytes(1, 1).slice(0, 128);
  const hv = new DataView(huge.buffer);
  hv.setUint32(8, 0, true);
  hv.setUint32(12, 0xffffffff, true);
  const end = 18 + hv.getUint16(16, true) + 2 + hv.getUint16(18 + hv.getUint16(16, true), true) + 32;
  hv.setUint32(end, crc32(huge.subarray(0, end)), true);
  const claimed = Math.ceil((Math.ceil((end + 4) / 64) * 64 + 0xffffffff * 4) / 64) * 64;
  await assert.rejects(VectorShard.openHead('v', claimed, ranges(huge).read), (e: FsmeshError) =>
    /vector shard v: truncated/.test(e.message),
  );
  const short = bytes.subarray(0, 30);
  await assert.rejects(
    VectorShard.openHead('v', short.length, ranges(short).read),
    (e: FsmeshError) => e.code === 'corrupt_data' && /vector shard v: truncated/.test(e.message),
  );
});

test('a graph-answered shard holds no rows; exact scans score the same from the graph, then from the rows', async () => {
  const dir = tmpDir();
  const e = await openEngine(dir, { hnsw_min_rows: 100 });
  try {
    await e.ingest(
      Array.from({ length: 400 }, (_, i) => ({
        op: 'upsert' as const,
        doc_id: `v${i}`,
        text: `vector doc ${i} topic${i % 17} term${i % 23}`,
      })),
    );
    const g = await e.buildAndActivate();
    const pin = await e.acquire();
    try {
      const reader = pin.reader;
      assert.ok(reader.graphs[0], 'a graph answers the shard');
      assert.equal(reader.shards[0]!.has_rows, false);
      const shardEntry = g!.manifest.vector_artifacts.find((a) => a.role === 'fsvi')!;
      // Resident: the doc table instead of the shard's bytes.
      const withoutRows = reader.resident_bytes;
      const qv = e.config.embedder.embed(['topic3 term5'])[0];
      const fromGraph = reader.searchVector(qv, 10, { exact: true });
      await reader.loadVectorRows();
      assert.equal(reader.shards[0]!.has_rows, true);
      assert.equal(reader.resident_bytes - withoutRows, shardEntry.size_bytes - 400 * 4);
      assert.deepEqual(reader.searchVector(qv, 10, { exact: true }), fromGraph);
      // The graph still answers approximate queries.
      assert.equal(reader.searchVector(qv, 10).length, 10);
    } finally {
      pin.release();
    }
    // Too few live rows for the graph to fill k: the fallback scans the graph's rows, then reads the shard's.
    await e.ingest(Array.from({ length: 396 }, (_, i) => ({ op: 'delete' as const, doc_id: `v${i}` })));
    await e.buildAndActivate();
    const after = await e.acquire();
    try {
      const reader = after.reader;
      assert.ok(reader.graphs[0] && !reader.shards[0]!.has_rows, 'the same shard and graph, rows not read');
      const qv = e.config.embedder.embed(['topic3 term5'])[0];
      // The shard's file damaged after it was opened: the fallback answers from the graph, and
      // its read of the rows fails once, quietly (the scrub finds the damage).
      const id = reader.shards[0]!.object_id;
      const file = path.join(dir, 'objects/artifact', id.slice(0, 2), id);
      const good = fs.readFileSync(file);
      fs.writeFileSync(file, Buffer.alloc(good.length, 1));
      const hits = reader.searchVector(qv, 10);
      assert.deepEqual(hits.map((h) => h.doc_id).sort(), ['v396', 'v397', 'v398', 'v399']);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(reader.shards[0]!.has_rows, false);
      assert.deepEqual(reader.searchVector(qv, 10), hits);
      fs.writeFileSync(file, good);
      await reader.loadVectorRows(); // asked for, it reads again
      assert.equal(reader.shards[0]!.has_rows, true);
      assert.deepEqual(reader.searchVector(qv, 10), hits);
    } finally {
      after.release();
    }
    // A damaged shard is found when it is opened (re-hashed by ranges), not served.
    const id = g!.manifest.vector_artifacts.find((a) => a.role === 'fsvi')!.object_id;
    const file = path.join(dir, 'objects/artifact', id.slice(0, 2), id);
    const good = fs.readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 3] ^= 0xff; // a row byte: no head check sees it
    fs.writeFileSync(file, bad);
    const other = await openEngine(dir, { hnsw_min_rows: 100 });
    try {
      const r = await other.search({ q: 'topic3 term5', mode: 'hybrid', k: 3 });
      assert.equal(r.hits.length, 3);
      assert.deepEqual(fs.readFileSync(file), good, 'repaired from the node symbols before it served');
    } finally {
      await other.close();
    }
  } finally {
    await e.close();
  }
});

test('the same documents ingested again under other ids: one graph for two identical shards, the build succeeds', async () => {
  // Identical rows in identical order make byte-identical graphs, one object: a manifest lists it
  // once (the writer's builds failed for good on "listed twice" before).
  const e = await openEngine(tmpDir(), { hnsw_min_rows: 100 });
  try {
    const texts = Array.from({ length: 300 }, (_, i) => `again doc ${i} topic${i % 13} term${i % 19}`);
    await e.ingest(
      texts.map((text, i) => ({ op: 'upsert' as const, doc_id: `a${String(i).padStart(3, '0')}`, text })),
    );
    await e.buildAndActivate();
    await e.ingest(
      texts.map((text, i) => ({ op: 'upsert' as const, doc_id: `b${String(i).padStart(3, '0')}`, text })),
    );
    const g = await e.buildAndActivate();
    assert.ok(g, 'the second build activated');
    const va = g!.manifest.vector_artifacts;
    assert.equal(va.filter((a) => a.role === 'fsvi').length, 2);
    const graphs = va.filter((a) => a.role === 'hnsw');
    assert.equal(graphs.length, 1, 'one graph object, listed once');
    // Both copies answer: the graph's shard through it, the other by an exact scan.
    const r = await e.search({ q: 'topic3 term5', mode: 'vector', k: 4 });
    const ids = r.hits.map((h) => h.doc_id);
    assert.ok(ids.some((d) => d.startsWith('a')) && ids.some((d) => d.startsWith('b')), ids.join());
  } finally {
    await e.close();
  }
});

test("a fallback reads only its own shard's rows", async () => {
  const e = await openEngine(tmpDir(), { hnsw_min_rows: 100, segment_max_docs: 200 });
  try {
    await e.ingest(
      Array.from({ length: 400 }, (_, i) => ({
        op: 'upsert' as const,
        doc_id: `w${String(i).padStart(3, '0')}`,
        text: `two shards doc ${i} topic${i % 17} term${i % 23}`,
      })),
    );
    await e.buildAndActivate();
    // All but four rows of the first segment deleted: its graph cannot fill k = 10, the other's can.
    await e.ingest(
      Array.from({ length: 196 }, (_, i) => ({
        op: 'delete' as const,
        doc_id: `w${String(i).padStart(3, '0')}`,
      })),
    );
    await e.buildAndActivate();
    const pin = await e.acquire();
    try {
      const r = pin.reader;
      assert.equal(r.segments.length, 2);
      const thin = r.segments.findIndex((s) => s.docnumOf('w000') >= 0);
      const full = 1 - thin;
      assert.ok(r.graphs[thin] && r.graphs[full] && !r.shards[thin]!.has_rows && !r.shards[full]!.has_rows);
      assert.equal(r.searchVector(e.config.embedder.embed(['topic3 term5'])[0], 10).length, 10);
      await r.loadVectorRows(thin); // joins the read the fallback started
      assert.equal(r.shards[thin]!.has_rows, true);
      assert.equal(r.shards[full]!.has_rows, false, 'the shard its graph answered stays unread');
    } finally {
      pin.release();
    }
  } finally {
    await e.close();
  }
});
