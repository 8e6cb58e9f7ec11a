/**
 * Fuzz targets: every wire decoder, every on-disk decoder and the HTTP routes, fed valid inputs
 * mutated at random (bit flips, truncation, extension, splices, overwritten length fields) or
 * arbitrary JSON. The property is the same everywhere: a decoder returns or throws an FsmeshError
 * naming the problem — never another exception (a crash), never a hang.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { generateKeyPair } from '@libp2p/crypto/keys';
import fc from 'fast-check';
import { SimDisk } from '../../sim/disk.ts';
import { DEFAULT_REPAIR } from '../../src/codec/repair-descriptor.ts';
import { toHex } from '../../src/core/bytes.ts';
import { decodeCapsule, encodeCapsule } from '../../src/core/capsule.ts';
import { FsmeshError } from '../../src/core/errors.ts';
import { decodeManifest } from '../../src/core/manifest.ts';
import { decodeMarker, encodeMarker, GENESIS_MARKER_ID } from '../../src/core/marker.ts';
import { FrameDecoder, frame } from '../../src/p2p/framing.ts';
import {
  decodePrepareTicket,
  decodeSignedHandover,
  encodePrepareTicket,
  encodeSignedHandover,
  signHandover,
  signPrepareTicket,
  verifyHandover,
  verifyPrepareTicket,
} from '../../src/p2p/handover.ts';
import {
  jsonFrame,
  parseJsonFrame,
  parseSymbolFrame,
  parseSymbolRun,
  symbolFrames,
} from '../../src/p2p/protocols.ts';
import { decodeSignedRecord, encodeSignedRecord, signRecord } from '../../src/p2p/records.ts';
import { symbolIdsOf } from '../../src/p2p/services/protocol-server.ts';
import {
  parseShardQuery,
  parseWriteRequest,
  requestShardLists,
  requestShardStats,
} from '../../src/p2p/shard-rpc.ts';
import { seededRandom, type Transport } from '../../src/runtime/index.ts';
import { DeleteBitmap } from '../../src/search/lexical/deletes.ts';
import { PostingsCache } from '../../src/search/lexical/postings-cache.ts';
import { Segment, SegmentBuilder } from '../../src/search/lexical/segment.ts';
import { VectorShard } from '../../src/search/vector/fsvi.ts';
import { decodePointer } from '../../src/storage/generations.ts';
import { scanSegment } from '../../src/storage/log-format.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { SymbolStore, symbolPath } from '../../src/storage/symbol-store.ts';
import { openEngine, tmpDir } from '../helpers/tmp.ts';

export interface FuzzTarget {
  name: string;
  arb: fc.Arbitrary<Uint8Array>;
  /** Decode; throwing an FsmeshError is a clean refusal, anything else fails the property. */
  run(input: Uint8Array): void | Promise<void>;
}

/** Valid bytes, mutated: what a damaged file or a hostile peer hands a decoder. */
export function mutated(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
    fc.record({
      kind: fc.constant('splice' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ maxLength: 16 }),
    }),
    // Length and count fields are where decoders over-trust: overwrite 4 bytes with big numbers.
    fc.record({
      kind: fc.constant('u32' as const),
      at: fc.nat(),
      v: fc.oneof(fc.constant(0xffffffff), fc.constant(0x7fffffff), fc.constant(0), fc.nat()),
    }),
  );
  return fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(op, { minLength: 1, maxLength: 4 }))
    .map(([i, ops]) => {
      let b: Uint8Array = seeds[i].slice();
      for (const o of ops) {
        const at = b.length ? (o.kind === 'extend' ? 0 : (o as { at: number }).at % b.length) : 0;
        if (o.kind === 'flip' && b.length) b[at] ^= 1 << o.bit;
        else if (o.kind === 'truncate') b = b.slice(0, at);
        else if (o.kind === 'extend') b = concat(b, o.bytes);
        else if (o.kind === 'splice')
          b = concat(concat(b.slice(0, at), o.bytes), b.slice(at + o.bytes.length));
        else if (o.kind === 'u32' && b.length >= 4)
          new DataView(b.buffer).setUint32(Math.min(at, b.length - 4), o.v, true);
      }
      return b;
    });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const json = fc.jsonValue({ maxDepth: 3 }).map((v) => new TextEncoder().encode(JSON.stringify(v)));

/** Real artifacts from a small generation, the seeds of the on-disk targets. */
async function buildSeeds() {
  const dir = tmpDir();
  const e = await openEngine(dir, { repair: { ...DEFAULT_REPAIR, symbol_size: 256 } });
  await e.ingest([
    { op: 'upsert', doc_id: 'a', text: 'fuzzing finds what tests do not think of' },
    { op: 'upsert', doc_id: 'b', text: 'hostile bytes meet careful decoders', title: 't' },
  ]);
  await e.buildAndActivate();
  await e.ingest([{ op: 'delete', doc_id: 'a' }]);
  const built = await e.buildAndActivate();
  const m = built!.manifest;
  const read = (id: string) => e.objects.get('artifact', id);
  const seg = m.lexical_artifacts.find((a) => a.role === 'segment')!.object_id;
  const del = m.lexical_artifacts.find((a) => a.role === 'deletes')!.object_id;
  const vec = m.vector_artifacts[0].object_id;
  const out = {
    manifest: await e.objects.get('manifest', built!.ref.artifact_manifest_id),
    segment: await read(seg),
    // A segment with block tables: 300 documents sharing terms (df > 128), some titles.
    segment_v2: (() => {
      const b = new SegmentBuilder();
      for (let i = 0; i < 300; i++)
        b.add({
          doc_id: `d${i}`,
          title: i % 3 ? undefined : 'shared title',
          text: `common word ${i % 7} common`,
        });
      return b.finish();
    })(),
    deletes: await read(del),
    fsvi: await read(vec),
    pointer: new Uint8Array(fs.readFileSync(path.join(dir, 'CURRENT'))),
    log: new Uint8Array(fs.readFileSync(path.join(dir, 'log', fs.readdirSync(path.join(dir, 'log'))[0]))),
    symbols: new Uint8Array(fs.readFileSync(path.join(dir, symbolPath('artifact', seg)))),
    symbols_object: await read(seg),
    symbols_id: seg,
  };
  await e.close();
  return out;
}

export async function fuzzTargets(): Promise<FuzzTarget[]> {
  const s = await buildSeeds();
  const key = await generateKeyPair('Ed25519');
  const record = encodeSignedRecord(
    await signRecord(key, {
      format: 1,
      cluster: 'c',
      shard: 'default',
      generation_id: 'gen-1',
      generation_seq: 1,
      artifact_manifest_id: 'ab'.repeat(32),
      commit_seq_high: 3,
      writer: 'w',
    }),
  );
  const handover = encodeSignedHandover(
    await signHandover(key, {
      format: 1,
      cluster: 'c',
      shard: 'default',
      epoch: 2,
      writer: 'w',
      commit_seq_high: 9,
      head_marker_id: 'ef'.repeat(32),
    }),
  );
  const ticket = encodePrepareTicket(
    await signPrepareTicket(key, {
      format: 1,
      kind: 'prepare',
      cluster: 'c',
      shard: 'default',
      epoch: 3,
      candidate: 'w',
    }),
  );
  const capsule = encodeCapsule({
    format: 1,
    shard: 'default',
    ops: [
      { op: 'upsert', doc_id: 'x', text: 'y', fields: { n: 1 } },
      { op: 'delete', doc_id: 'z' },
    ],
    idempotency_key: 'k',
  });
  const marker = encodeMarker({
    commit_seq: 1,
    commit_id: 'cd'.repeat(32),
    prev_marker_id: GENESIS_MARKER_ID,
  });
  const statsReq = jsonFrame({
    phase: 'stats',
    search: { q: 'a b', k: 10, mode: 'lexical' },
    read: { min_commit_seq: 3 },
  });
  const listsReq = jsonFrame({
    phase: 'lists',
    search: { q: 'a b', k: 10 },
    generation_id: 'gen-2',
    stats: { live_docs: 10, len_sum: 40, df: { a: 2, b: 5 } },
  });
  const writeReq = jsonFrame({
    shards: 3,
    ops: [{ op: 'upsert', doc_id: 'x', text: 'y' }],
    idempotency_key: 'k',
  });
  const statsAnswer = jsonFrame({
    generation_id: 'gen-2',
    artifact_manifest_id: 'ab'.repeat(32),
    commit_seq_high: 7,
    stats: { live_docs: 10, len_sum: 40, df: { a: 2 } },
    record: JSON.parse(new TextDecoder().decode(record)),
  });
  const listsAnswer = jsonFrame({
    lexical: [{ doc_id: 'd1', score: 1.5 }],
    vector: [{ doc_id: 'd2', score: 0.5 }],
  });
  const symbolsReq = jsonFrame({
    object_id: 'ab'.repeat(32),
    kind: 'artifact',
    ranges: [
      [0, 10],
      [20, 30],
    ],
  });
  // The symbol file is read through the store, from a simulated disk holding the mutated bytes.
  const disk = new SimDisk(seededRandom(1)).mount();
  const objects = await ObjectStore.open(disk);
  await objects.putVerified('artifact', s.symbols_id, s.symbols_object);
  const symbols = new SymbolStore(disk, objects, { ...DEFAULT_REPAIR, symbol_size: 256 });
  return [
    {
      name: 'wire: frame decoder',
      arb: mutated([frame(capsule), concat(frame(marker), frame(record))]),
      run: (b) => void new FrameDecoder().push(b),
    },
    {
      name: 'wire: JSON request frame',
      arb: fc.oneof(json, mutated([symbolsReq])),
      run: (b) => void parseJsonFrame(b, 'fuzz'),
    },
    {
      name: 'wire: symbols request ranges',
      arb: fc.oneof(json, mutated([symbolsReq])),
      run: (b) => {
        const ids = symbolIdsOf(parseJsonFrame(b, 'symbols request'));
        if (ids.length > 1024) throw new Error(`expanded ${ids.length} ids`);
      },
    },
    {
      name: 'wire: symbol frame',
      arb: mutated(symbolFrames(new Map([[7, new Uint8Array(64)]]))),
      run: (b) => void parseSymbolFrame(b),
    },
    {
      name: 'wire: symbol run frame',
      arb: mutated([new Uint8Array(4 + 3 * 64).fill(5)]),
      run: (b) => {
        const r = parseSymbolRun(b, 64);
        // Whatever it accepts is whole symbols, and says how many.
        if (r.data.length !== r.count * 64 || r.count < 1) throw new Error('a partial run was accepted');
      },
    },
    {
      name: 'wire: multi-shard requests (shard-query, write)',
      arb: fc.oneof(json, mutated([statsReq, listsReq, writeReq])),
      run: (b) => {
        try {
          parseShardQuery(b);
        } finally {
          parseWriteRequest(b);
        }
      },
    },
    {
      name: 'wire: multi-shard answers (statistics, ranked lists)',
      arb: fc.oneof(json, mutated([statsAnswer, listsAnswer])),
      run: async (b) => {
        const peer = { request: async () => [b] } as unknown as Transport;
        const stats = { live_docs: 1, len_sum: 1, df: {} };
        try {
          await requestShardStats(peer, 'p', { q: 'a', k: 10 }, {}, 1000);
        } finally {
          await requestShardLists(peer, 'p', { q: 'a', k: 10 }, 'gen-1', stats, 1000);
        }
      },
    },
    {
      name: 'wire: signed record',
      arb: fc.oneof(json, mutated([record])),
      run: (b) => void decodeSignedRecord(b),
    },
    {
      name: 'wire+disk: writer handover',
      arb: fc.oneof(json, mutated([handover])),
      run: async (b) => {
        const s = decodeSignedHandover(b);
        // A mutated record must never pass as signed by the key.
        if (
          (await verifyHandover(s, toHex(key.publicKey.raw))) &&
          !bytesEq(encodeSignedHandover(s), handover)
        )
          throw new Error('a mutated handover verified');
      },
    },
    {
      name: 'wire+disk: prepare ticket (failover promise)',
      arb: fc.oneof(json, mutated([ticket])),
      run: async (b) => {
        const s = decodePrepareTicket(b);
        if (
          (await verifyPrepareTicket(s, toHex(key.publicKey.raw))) &&
          !bytesEq(encodePrepareTicket(s), ticket)
        )
          throw new Error('a mutated prepare ticket verified');
      },
    },
    { name: 'wire+disk: commit marker', arb: mutated([marker]), run: (b) => void decodeMarker(b) },
    { name: 'wire+disk: capsule', arb: mutated([capsule]), run: (b) => void decodeCapsule(b) },
    { name: 'disk: manifest', arb: mutated([s.manifest]), run: (b) => void decodeManifest(b) },
    {
      name: 'disk: activation pointer (CURRENT)',
      arb: mutated([s.pointer]),
      run: (b) => void decodePointer(b),
    },
    {
      name: 'disk: capsule log segment',
      arb: mutated([s.log]),
      run: (b) => void scanSegment(b, 'log/fuzz.log', true, 1, GENESIS_MARKER_ID),
    },
    { name: 'disk: lexical segment', arb: mutated([s.segment]), run: (b) => void Segment.open('s', b) },
    {
      // Past the checksum (recomputed after mutating): block tables and postings of every term.
      name: 'disk: lexical segment internals (the version written)',
      arb: mutated([s.segment_v2]),
      run: (b) => {
        const fixed = new Uint8Array(Math.max(b.length, 4));
        fixed.set(b);
        new DataView(fixed.buffer).setUint32(
          fixed.length - 4,
          crc32(fixed.subarray(0, fixed.length - 4)),
          true,
        );
        const seg = Segment.open('s', fixed);
        for (const [t, e] of seg.terms) {
          // The entry itself: a damaged term's bytes may not decode to a string a lookup finds.
          seg.blockTable({ e, bytes: seg.bytes, key: e.offset });
          let n = 0;
          seg.forEachPosting(t, () => {
            if (++n > e.length * 2 + 8) throw new Error(`postings of ${t} never end`);
          });
        }
      },
    },
    {
      // Read by ranges, every crc recomputed after mutating (so the parser sees the damage): the
      // head at open, then every term's pages, table and postings.
      name: 'disk: lexical segment by ranges (page table resealed)',
      arb: mutated([s.segment_v2]),
      run: async (b) => {
        const fixed = resealV5(b);
        const read = async (o: number, l: number) => fixed.slice(o, Math.min(fixed.length, o + l));
        try {
          const seg = await Segment.openRanged('s', fixed.length, read, new PostingsCache(1 << 16));
          if (!seg) return;
          for (const [t, e] of seg.terms) {
            const release = await seg.pin([t]);
            const tp = seg.postings(t);
            // A damaged term's bytes may not decode to a string a lookup finds: nothing pinned.
            if (!tp) {
              release();
              continue;
            }
            seg.blockTable(tp);
            let n = 0;
            seg.forEachPosting(t, () => {
              if (++n > e.length * 2 + 8) throw new Error(`postings of ${t} never end`);
            });
            release();
          }
        } catch (err) {
          // Damage is corrupt_data (or an unsupported version), never an internal invariant.
          if (err instanceof FsmeshError && err.code === 'internal') throw new Error(err.message);
          throw err;
        }
      },
    },
    { name: 'disk: deletes bitmap', arb: mutated([s.deletes]), run: (b) => void DeleteBitmap.decode('d', b) },
    { name: 'disk: FSVI vector shard', arb: mutated([s.fsvi]), run: (b) => void VectorShard.open('v', b) },
    {
      // The head alone, by ranges (a graph-answered shard): header crc resealed so the sizes and
      // the doc table are reached too; the rows are never read.
      name: 'disk: FSVI vector shard, head by ranges',
      arb: mutated([s.fsvi]),
      run: async (b) => {
        const fixed = resealFsviHeader(b);
        const shard = await VectorShard.openHead('v', fixed.length, async (off, len) =>
          fixed.slice(off, off + len),
        );
        if (shard.has_rows) throw new Error('a head-only shard holds rows');
      },
    },
    {
      name: 'disk: symbol file',
      arb: mutated([s.symbols]),
      run: async (b) => {
        await disk.writeFile(symbolPath('artifact', s.symbols_id), b);
        await symbols.verifyFile('artifact', s.symbols_id);
        await symbols.getSymbols('artifact', s.symbols_id, [0, 1]).catch((err) => {
          if (!(err instanceof FsmeshError)) throw err;
        });
      },
    },
  ];
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** An FSVI shard's header crc32 recomputed when its two id lengths fit the bytes. */
function resealFsviHeader(b: Uint8Array): Uint8Array {
  const out = b.slice();
  const v = new DataView(out.buffer);
  if (out.length < 18) return out;
  const idLen = v.getUint16(16, true);
  if (18 + idLen + 2 > out.length) return out;
  const end = 18 + idLen + 2 + v.getUint16(18 + idLen, true) + 32;
  if (end + 4 <= out.length) v.setUint32(end, crc32(out.subarray(0, end)), true);
  return out;
}

/**
 * A version 5 segment's checksums recomputed for its (possibly mutated) bytes, when its header's
 * sizes still describe the file; otherwise the bytes as they are.
 */
export function resealV5(b: Uint8Array): Uint8Array {
  const out = b.slice();
  if (out.length < 60) return out;
  const v = new DataView(out.buffer);
  const head = v.getUint32(36, true);
  const postings = v.getUint32(40, true);
  const page = v.getUint32(44, true);
  if (page < 512 || page > 1 << 20 || (page & (page - 1)) !== 0) return out;
  const pages = Math.ceil(postings / page);
  const tableAt = head + postings;
  if (tableAt + 4 * pages + 12 !== out.length) return out;
  for (let p = 0; p < pages; p++)
    v.setUint32(
      tableAt + 4 * p,
      crc32(out.subarray(head + p * page, Math.min(tableAt, head + (p + 1) * page))),
      true,
    );
  const tail = tableAt + 4 * pages;
  v.setUint32(tail, crc32(out.subarray(0, head)), true);
  v.setUint32(tail + 4, crc32(out.subarray(tableAt, tail)), true);
  v.setUint32(tail + 8, crc32(out.subarray(0, tail + 8)), true);
  return out;
}
