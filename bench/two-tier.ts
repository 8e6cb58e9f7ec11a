/**
 * TwoTierSearcher benchmark (issue 4): initial (fast tier) and refined (quality tier) latency
 * p50/p99 on the corpus, and a small judged set of paraphrase queries whose answer shares no word
 * with the query: reciprocal rank of the answer with lexical search versus the refined answer.
 *   node bench/two-tier.ts [--docs 50000] [--queries 300]
 */
import * as path from 'node:path';
import { defaultEngineConfig, LocalEngine } from '../src/engine/local-engine.ts';
import { nodeFsStorage, seededRandom, systemClock } from '../src/runtime/index.ts';
import { searchTwoTier } from '../src/search/searcher.ts';
import { tokenize } from '../src/search/text.ts';
import { StaticEmbedder } from '../src/search/vector/static-embedder.ts';
import { loadCorpus } from './corpus.ts';
import { arg, benchDir, nowMs, report, round, summarize } from './util.ts';

const N = arg('docs', 50_000);
const Q = arg('queries', 300);
const t0 = nowMs();
const quality = await StaticEmbedder.load(nodeFsStorage(path.resolve('node_modules/.cache/fsmesh')));
const loadMs = nowMs() - t0;
const JUDGED_DOCS = [
  { doc_id: 'j-cat', text: 'The domestic cat is a small carnivorous mammal that hunts mice.' },
  { doc_id: 'j-car', text: 'The automobile needs new tires and an oil change at the garage.' },
  { doc_id: 'j-bread', text: 'Bread is baked from flour, water and yeast in an oven.' },
  { doc_id: 'j-stocks', text: 'Shares fell as investors sold equities after the earnings report.' },
  { doc_id: 'j-doctor', text: 'The physician examined the patient and prescribed antibiotics.' },
  { doc_id: 'j-rain', text: 'Heavy storms brought flooding to the valley overnight.' },
];
const JUDGED: [string, string][] = [
  ['kitten', 'j-cat'],
  ['vehicle mechanic', 'j-car'],
  ['bakery', 'j-bread'],
  ['stock market crash', 'j-stocks'],
  ['hospital nurse medicine', 'j-doctor'],
  ['weather downpour', 'j-rain'],
];
const docs = loadCorpus(N);
const e = await LocalEngine.open(
  {
    clock: systemClock,
    random: seededRandom(1),
    storage: nodeFsStorage(path.join(benchDir('two-tier'), 'd')),
  },
  defaultEngineConfig({ quality_embedder: quality, durability: { mode: 'group', group_commit_ms: 2 } }),
);
for (let i = 0; i < docs.length; i += 5000)
  await e.ingest(
    docs
      .slice(i, i + 5000)
      .map((d) => ({ op: 'upsert' as const, doc_id: d.id, title: d.title, text: d.text })),
  );
await e.ingest(JUDGED_DOCS.map((d) => ({ op: 'upsert' as const, ...d })));
const tb = nowMs();
await e.buildAndActivate();
const buildMs = nowMs() - tb;
const pin = await e.acquire();
const rng = seededRandom(9);
const queries = Array.from({ length: Q }, () =>
  docs[rng.int(docs.length)].text.split(' ').slice(2, 5).join(' '),
);
// The engine reads segments by ranges: these direct reader calls need their terms pinned.
const unpin = await pin.reader.pinTerms(
  [...queries, ...JUDGED.map(([query]) => query)].flatMap((query) => tokenize(query)),
);
const initialLat: number[] = [];
const refinedLat: number[] = [];
const q = { embedder: quality, weight: 0.6 };
let changed = 0;
for (const query of queries) {
  const t = nowMs();
  let tInitial = 0;
  const r = searchTwoTier(pin.reader, { q: query, k: 10 }, e.config.embedder, q, undefined, () => {
    tInitial = nowMs() - t;
  });
  refinedLat.push(nowMs() - t);
  initialLat.push(tInitial);
  const a = new Set(r.initial.hits.map((h) => h.doc_id));
  changed += r.refined!.hits.filter((h) => !a.has(h.doc_id)).length / 10;
}
const rr = (ids: string[], want: string) => {
  const i = ids.indexOf(want);
  return i < 0 ? 0 : 1 / (i + 1);
};
let lexMrr = 0;
let refMrr = 0;
const judged = JUDGED.map(([query, want]) => {
  const lex = pin.reader.searchLexical(query.split(' '), 10).map((h) => h.doc_id);
  const ref = searchTwoTier(pin.reader, { q: query, k: 10 }, e.config.embedder, q).refined!.hits.map(
    (h) => h.doc_id,
  );
  lexMrr += rr(lex, want);
  refMrr += rr(ref, want);
  return {
    query,
    want,
    lexical_rank: lex.indexOf(want) + 1 || null,
    refined_rank: ref.indexOf(want) + 1 || null,
  };
});
unpin();
pin.release();
await e.close();
report('two-tier', {
  corpus_docs: docs.length + JUDGED_DOCS.length,
  static_embedder: {
    vocab: quality.vocab_size,
    dims: quality.dims,
    load_ms: round(loadMs, 1),
    table_bytes: quality.vocab_size * quality.dims * 2,
  },
  build_ms_with_quality_shards: round(buildMs, 0),
  initial: summarize(initialLat),
  refined: summarize(refinedLat),
  refined_over_initial_p50: round(summarize(refinedLat).p50_ms / summarize(initialLat).p50_ms, 2),
  top10_changed_by_quality_tier: round(changed / Q, 3),
  judged_paraphrases: {
    mrr_lexical: round(lexMrr / JUDGED.length, 3),
    mrr_refined: round(refMrr / JUDGED.length, 3),
    queries: judged,
  },
});
