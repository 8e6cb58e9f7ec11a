import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { utf8, utf8ByteLength, utf8Exceeds } from '../../src/core/bytes.ts';
import { canonicalStringify } from '../../src/core/canonical-json.ts';
import {
  type CommitCapsule,
  commitIdOf,
  decodeCapsule,
  encodeCapsule,
  validateCapsule,
} from '../../src/core/capsule.ts';
import { parseDocsJsonl } from '../../src/core/docs-input.ts';
import type { FsmeshError } from '../../src/core/errors.ts';
import { objectIdOf } from '../../src/core/ids.ts';
import { decodeMarker, encodeMarker, markerIdOf } from '../../src/core/marker.ts';

const jsonValue = fc.jsonValue({ noUnicodeString: false }).filter((v) => JSON.stringify(v) !== undefined);

test('canonical JSON round-trips and is independent of key order', () => {
  fc.assert(
    fc.property(jsonValue, (v) => {
      const s = canonicalStringify(v);
      const back = JSON.parse(s);
      assert.equal(canonicalStringify(back), s);
      // Re-inserting keys in reverse order gives the same bytes.
      const shuffle = (x: unknown): unknown =>
        Array.isArray(x)
          ? x.map(shuffle)
          : x && typeof x === 'object'
            ? Object.fromEntries(
                Object.entries(x)
                  .reverse()
                  .map(([k, y]) => [k, shuffle(y)]),
              )
            : x;
      assert.equal(canonicalStringify(shuffle(back)), s);
    }),
    { numRuns: 300 },
  );
});

test('canonical JSON: the fast writer gives the reference bytes, and bad values are named by path', () => {
  // The reference: keys sorted by code unit, strings and numbers as JSON.stringify writes them.
  const ref = (v: unknown): string =>
    Array.isArray(v)
      ? `[${v.map(ref).join(',')}]`
      : v && typeof v === 'object'
        ? `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${ref((v as Record<string, unknown>)[k])}`)
            .join(',')}}`
        : JSON.stringify(v);
  fc.assert(
    fc.property(jsonValue, (v) => assert.equal(canonicalStringify(v), ref(v))),
    { numRuns: 500 },
  );
  assert.equal(
    canonicalStringify({ b: 1, a: undefined, '10': [-0, 1e21], '9': 'é' }),
    '{"10":[0,1e+21],"9":"é","b":1}',
  );
  assert.throws(
    () => canonicalStringify({ a: [1, { b: Number.NaN }] }),
    /\$\.a\[1\]\.b: number must be finite/,
  );
  assert.throws(() => canonicalStringify({ f: () => 1 }), /\$\.f: function is not JSON/);
});

const docId = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s));
const upsert = fc.record(
  {
    op: fc.constant('upsert' as const),
    doc_id: docId,
    text: fc.string({ maxLength: 200 }),
    title: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
  },
  { requiredKeys: ['op', 'doc_id', 'text'] },
);
const del = fc.record({ op: fc.constant('delete' as const), doc_id: docId });
const capsuleArb = fc.record({
  format: fc.constant(1 as const),
  shard: fc.constantFrom('default', 's1', 'books-2'),
  ops: fc.array(fc.oneof(upsert, del), { minLength: 1, maxLength: 8 }),
});

test('capsule encoding is deterministic and round-trips; commit_id is content-only', () => {
  fc.assert(
    fc.property(capsuleArb, (c) => {
      const clean = JSON.parse(JSON.stringify(c)) as CommitCapsule;
      const b1 = encodeCapsule(clean);
      const b2 = encodeCapsule(JSON.parse(JSON.stringify(clean)));
      assert.deepEqual(b1, b2);
      assert.deepEqual(decodeCapsule(b1), JSON.parse(new TextDecoder().decode(b1)));
      assert.equal(commitIdOf(b1), objectIdOf('capsule', b1));
      assert.equal(commitIdOf(encodeCapsule(decodeCapsule(b1))), commitIdOf(b1));
    }),
    { numRuns: 200 },
  );
});

test('UTF-8 byte lengths without encoding match TextEncoder, lone surrogates included', () => {
  const fixed = [
    '',
    'a',
    'é',
    '€',
    '😀',
    '\ud800',
    '\udc00',
    '\ud800a',
    'a\udbff',
    '\ud83d\ude00\ud83d',
    'x'.repeat(5),
  ];
  for (const s of fixed) assert.equal(utf8ByteLength(s), utf8.encode(s).length, JSON.stringify(s));
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.nat(40), (s, limit) => {
      const n = utf8.encode(s).length;
      assert.equal(utf8ByteLength(s), n);
      assert.equal(utf8Exceeds(s, limit), n > limit);
    }),
    { numRuns: 2000 },
  );
});

test('domain separation: same bytes, different kinds, different ids', () => {
  const b = new TextEncoder().encode('x');
  assert.notEqual(objectIdOf('capsule', b), objectIdOf('manifest', b));
});

test('marker encoding round-trips and chains', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 40 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (seq, a, b) => {
        const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');
        const m = { commit_seq: seq, commit_id: hex(a), prev_marker_id: hex(b) };
        const e = encodeMarker(m);
        assert.equal(e.length, 80);
        assert.deepEqual(decodeMarker(e), m);
        assert.equal(markerIdOf(decodeMarker(e)), markerIdOf(m));
      },
    ),
  );
});

test('capsule validation names every problem with its path', () => {
  assert.throws(
    () =>
      validateCapsule({
        format: 1,
        shard: 'BAD SHARD',
        ops: [
          { op: 'upsert', doc_id: '', text: 5 },
          { op: 'zap', doc_id: 'x' },
        ],
      }),
    (e: FsmeshError) => {
      const p = e.details.problems as string[];
      assert.ok(p.some((x) => x.startsWith('$.shard')));
      assert.ok(p.some((x) => x.startsWith('$.ops[0].doc_id')));
      assert.ok(p.some((x) => x.startsWith('$.ops[0].text')));
      assert.ok(p.some((x) => x.startsWith('$.ops[1].op')));
      return true;
    },
  );
});

test('JSONL parsing reports every bad line with its number and commits nothing', () => {
  const text = [
    '{"id":"a","text":"ok"}',
    '{not json',
    '{"text":"no id"}',
    '{"id":"b","text":7}',
    '',
    '{"id":"c","delete":true}',
  ].join('\n');
  assert.throws(
    () => parseDocsJsonl(text, 'docs.jsonl'),
    (e: FsmeshError) => {
      assert.equal(e.code, 'invalid_input');
      assert.match(e.message, /docs\.jsonl:2: invalid JSON/);
      assert.match(e.message, /docs\.jsonl:3\.id/);
      assert.match(e.message, /docs\.jsonl:4\.text/);
      assert.doesNotMatch(e.message, /:6/);
      return true;
    },
  );
  assert.deepEqual(
    parseDocsJsonl('{"id":"c","delete":true}\n{"id":"d","text":"t","title":"T","fields":{"n":1}}'),
    [
      { op: 'delete', doc_id: 'c' },
      { op: 'upsert', doc_id: 'd', text: 't', title: 'T', fields: { n: 1 } },
    ],
  );
});

test('a large object is hashed as tag + bytes in place: the same id as hashing the concatenation', async () => {
  const { blake3 } = await import('@noble/hashes/blake3.js');
  const { domainTag, objectIdOf } = await import('../../src/core/ids.ts');
  const { concatBytes, toHex } = await import('../../src/core/bytes.ts');
  for (const n of [0, 100, (64 << 10) - 1, 64 << 10, 300_001]) {
    const b = new Uint8Array(n).map((_, i) => (i * 31) & 0xff);
    const want = toHex(blake3(concatBytes([domainTag('artifact'), b])));
    assert.equal(objectIdOf('artifact', b), want, `${n} bytes`);
    // The pure-JS fallback's streaming form gives the same digest.
    const h = blake3.create();
    h.update(domainTag('artifact'));
    h.update(b);
    assert.equal(toHex(h.digest()), want);
  }
});
