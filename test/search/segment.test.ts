/**
 * Segment building: the streaming builder (fresh documents) and the merge path (rows carried over
 * as IndexedDocs) must give byte-identical segments for the same documents, in any input order,
 * and terms must be ordered by their UTF-8 bytes (what the format promises) even for characters
 * outside the BMP, whose UTF-16 order differs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { seededRandom } from '../../src/runtime/index.ts';
import { buildSegment, compareUtf8, Segment, SegmentBuilder } from '../../src/search/lexical/segment.ts';

const WORDS = [
  'alpha',
  'beta',
  'gamma',
  'café',
  'ﬁle',
  '\u{1F600}x',
  '\uE000y',
  'z\u{10400}',
  'Δelta',
  '_id',
];

function randomDocs(seed: number, n: number) {
  const rng = seededRandom(seed);
  const pick = (k: number) => Array.from({ length: k }, () => WORDS[rng.int(WORDS.length)]).join(' ');
  return Array.from({ length: n }, (_, i) => ({
    doc_id: `doc-${(i * 7919) % n}-${WORDS[i % WORDS.length]}`,
    title: rng.int(3) === 0 ? undefined : pick(1 + rng.int(3)),
    text: pick(rng.int(40)),
  }));
}

test('streamed and carried-over documents build the same bytes, in any input order', () => {
  const docs = randomDocs(7, 3000);
  const a = new SegmentBuilder();
  for (const d of docs) a.add(d);
  const bytes = a.finish();
  const seg = Segment.open('s', bytes);
  assert.equal(seg.doc_count, 3000);
  const rows = seg.toIndexedDocs(() => true);
  assert.deepEqual(buildSegment(rows), bytes);
  assert.deepEqual(buildSegment([...rows].reverse()), bytes);
  const b = new SegmentBuilder();
  for (const d of [...docs].reverse()) b.add(d);
  assert.deepEqual(b.finish(), bytes);
  // Postings agree with a direct count.
  const i = seg.docnumOf(docs[5].doc_id);
  const seen = new Map<string, number>();
  for (const t of seg.terms.keys()) seg.forEachPosting(t, (d, tt, tx) => d === i && seen.set(t, tt + tx));
  const expected = new Map<string, number>();
  for (const t of `${docs[5].title ?? ''} ${docs[5].text}`
    .normalize('NFKC')
    .toLowerCase()
    .match(/[\p{L}\p{N}_]+/gu) ?? [])
    expected.set(t, (expected.get(t) ?? 0) + 1);
  assert.deepEqual(new Map([...seen].sort()), new Map([...expected].sort()));
});

test('a duplicate doc_id is refused; compareUtf8 orders like the UTF-8 bytes', () => {
  const b = new SegmentBuilder();
  b.add({ doc_id: 'x', text: 'one' });
  b.add({ doc_id: 'x', text: 'two' });
  assert.throws(() => b.finish(), /duplicate doc_id x/);
  const rng = seededRandom(3);
  const chars = ['a', 'z', '\u00e9', '\uD7FF', '\uE000', '\uFFFD', '\u{10000}', '\u{1F600}', '\u{10FFFF}'];
  for (let i = 0; i < 3000; i++) {
    const s = () => Array.from({ length: rng.int(4) }, () => chars[rng.int(chars.length)]).join('');
    const x = s();
    const y = s();
    assert.equal(
      Math.sign(compareUtf8(x, y)),
      Math.sign(Buffer.compare(Buffer.from(x), Buffer.from(y))),
      `${x} ${y}`,
    );
  }
});

test('the lazy term dictionary finds every term and only those, across restart points', () => {
  // Many distinct terms (several restart blocks), with shared prefixes and characters outside the BMP.
  const rng = seededRandom(11);
  const vocab = Array.from(
    { length: 700 },
    (_, i) => `${WORDS[i % WORDS.length]}${i.toString(36)}${i % 3 ? '\u{1F600}' : ''}`,
  );
  const b = new SegmentBuilder();
  for (let d = 0; d < 400; d++)
    b.add({
      doc_id: `d${d}`,
      text: Array.from({ length: 30 }, () => vocab[rng.int(vocab.length)]).join(' '),
    });
  const seg = Segment.open('s', b.finish());
  const all = [...seg.terms.entries()];
  assert.equal(all.length, seg.terms.size);
  for (let i = 1; i < all.length; i++)
    assert.ok(compareUtf8(all[i - 1][0], all[i][0]) < 0, 'terms in UTF-8 order');
  // Every term found with the entry the full walk gives; postings read through it add up to df.
  for (const [t, e] of all) {
    assert.deepEqual(seg.terms.get(t), e, t);
    let n = 0;
    seg.forEachPosting(t, () => n++);
    assert.equal(n, e.df, t);
  }
  // Absent terms: before the first, between two, after the last, a prefix of one, one longer.
  for (const t of [
    '',
    '\u0000',
    `${all[0][0]}\u0000`,
    all[5][0].slice(0, -1),
    `${all[all.length - 1][0]}z`,
    '\u{10FFFF}',
    'nope',
  ])
    if (!all.some(([x]) => x === t)) assert.equal(seg.terms.get(t), undefined, JSON.stringify(t));
});

test('a dictionary whose terms are out of order is corrupt (named by object id), found when its block is read', () => {
  const b = new SegmentBuilder();
  b.add({ doc_id: 'd1', text: 'apple banana cherry' });
  const bytes = b.finish();
  // Swap the first letters of "apple" and "banana" in the dictionary, then fix the checksum.
  const body = bytes.slice(0, bytes.length - 4);
  const at = (s: string) => Buffer.from(body).indexOf(Buffer.from(s));
  const a = at('apple');
  const bn = at('banana');
  assert.ok(a > 0 && bn > a);
  body[a] = 0x63; // "cpple": now after "banana" (its restart point, stored apart, still says "apple")
  const out = new Uint8Array(bytes.length);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), true);
  const named = (e: Error & { details?: { object_id?: string } }) =>
    /restart term differs|terms out of order/.test(e.message) && e.details?.object_id === 'seg-x';
  // Version 4 opens from its restart points; the block is checked whole before its first use.
  const seg = Segment.open('seg-x', out);
  assert.throws(() => seg.terms.get('banana'), named);
  assert.throws(() => [...seg.terms.entries()], named);
});

test('version 4 restart points: damage is found at open, or when the block it misplaces is read', () => {
  const b = new SegmentBuilder();
  const words = Array.from({ length: 200 }, (_, i) => `w${String(i).padStart(3, '0')}`);
  b.add({ doc_id: 'd1', text: words.join(' ') });
  b.add({ doc_id: 'd2', text: words.slice(0, 50).join(' ') });
  const good = b.finish();
  assert.ok(Segment.open('ok', good).version >= 4);
  // The restart points sit right before the postings: the last restart term is "w192".
  const damaged = (edit: (body: Uint8Array) => void) => {
    const body = good.slice(0, good.length - 4);
    edit(body);
    const out = new Uint8Array(good.length);
    out.set(body);
    new DataView(out.buffer).setUint32(body.length, crc32(body), true);
    return out;
  };
  const lastRestart = Buffer.from(good).lastIndexOf(Buffer.from('w192'));
  // Restart terms out of order ("w192" -> "w002", below the one before it): at open.
  assert.throws(
    () =>
      Segment.open(
        's1',
        damaged((x) => x.set(Buffer.from('w002'), lastRestart)),
      ),
    /terms out of order/,
  );
  // A restart term that still sorts but names another entry ("w192" -> "w193"): at its lookup.
  const s2 = Segment.open(
    's2',
    damaged((x) => x.set(Buffer.from('w193'), lastRestart)),
  );
  assert.equal(s2.terms.get('w010')?.df, 2, 'other blocks still answer');
  assert.throws(() => s2.terms.get('w195'), /restart term differs/);
  // A data offset moved (the varint before the term's length): the block no longer fits.
  const s3 = damaged((x) => {
    x[lastRestart - 2] ^= 0x01;
  });
  assert.throws(() => {
    const seg = Segment.open('s3', s3);
    for (const _ of seg.terms.entries());
  }, /corrupt|restart|postings|order|does not end/);
});
