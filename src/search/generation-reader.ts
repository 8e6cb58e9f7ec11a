/**
 * One opened search generation: its segments, deletions and vector shards, verified on open
 * (object id re-hash + format checksums; a segment read by ranges: its head and page table by
 * their crc32s, each page of postings when a query first reads it). Immutable: every query against it sees exactly this
 * generation (§5.3). BM25 statistics are over the generation's *live* documents, so a document
 * scores the same whether it sits in one segment or many.
 *
 * Length: ~490 lines because lexical and vector queries both read the reader's per-segment state
 * (docnum bases, deletions, doc ids) and what it loads on demand (pinned terms, vector rows);
 * reading the artifacts themselves lives in generation-artifacts.ts.
 */

import { invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import type { GenerationManifest } from '../core/manifest.ts';
import type { Storage } from '../runtime/index.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { openLexical, readVectorArtifacts, readVectorShard } from './generation-artifacts.ts';
import { type DeleteBitmap, isDeletedIn } from './lexical/deletes.ts';
import { ExhaustiveScorer } from './lexical/exhaustive-top-k.ts';
import type { PostingsCache } from './lexical/postings-cache.ts';
import { type LexicalScoring, prunedTopK, type QueryTerm, worthPruning } from './lexical/pruned-top-k.ts';
import { bm25Idf, dfOf, emptyDf, type LexicalStats } from './lexical/scoring.ts';
import type { Segment } from './lexical/segment.ts';
import { TopK } from './topk.ts';
import type { VectorShard } from './vector/fsvi.ts';
import type { HnswGraph } from './vector/hnsw.ts';

export interface Bm25Params {
  k1: number;
  b: number;
  title_boost: number;
}
export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75, title_boost: 2 };

export interface ScoredDoc {
  doc_id: string;
  score: number;
}

export class GenerationReader {
  readonly manifest: GenerationManifest;
  readonly artifact_manifest_id: ObjectId;
  readonly segments: Segment[];
  readonly deletes: DeleteBitmap;
  /** Vector shard per segment index (undefined when a segment has none). */
  readonly shards: (VectorShard | undefined)[];
  /** Quality-tier shard per segment index (TwoTierSearcher), when the generation has them. */
  readonly qshards: (VectorShard | undefined)[] = [];
  /** HNSW graph per segment index, when the shard has one. */
  readonly graphs: (HnswGraph | undefined)[] = [];
  readonly bm25: Bm25Params;
  private readonly bases: number[];
  private readonly totalDocs: number;
  readonly live_docs: number;
  private readonly avgdl: number;
  /** Σ over live documents of text_len + title_boost·title_len (the numerator of avgdl). */
  private readonly lenSum: number;
  /** Norms for one collection-wide avgdl (a multi-shard query's), kept while it stays the same. */
  private globalNorm: { avgdl: number; norm: Float64Array } | null = null;
  private readonly dfCache = new Map<string, number>();
  /** Per-block BM25 bounds by segment and term (pruned-top-k.ts); fixed for this generation. */
  private readonly boundCache = new Map<string, Float64Array>();
  /** Term-at-a-time scorer with its per-document accumulators (shared: queries are synchronous). */
  private readonly exhaustive: ExhaustiveScorer;
  /** Per global docnum: the BM25 length norm k1·(1 − b + b·len/avgdl), fixed for this generation. */
  private docNorm: Float64Array;
  /** Per segment: its deletion bitmap if it has deleted rows, else null (counted once, not per query). */
  private readonly deletedBits: (Uint8Array | null)[] = [];

  private constructor(
    manifest: GenerationManifest,
    id: ObjectId,
    segments: Segment[],
    deletes: DeleteBitmap,
    shards: (VectorShard | undefined)[],
    bm25: Bm25Params,
  ) {
    this.manifest = manifest;
    this.artifact_manifest_id = id;
    this.segments = segments;
    this.deletes = deletes;
    this.shards = shards;
    this.bm25 = bm25;
    this.bases = [];
    let base = 0;
    let live = 0;
    let lenSum = 0;
    for (const s of segments) {
      this.bases.push(base);
      base += s.doc_count;
      const bits = deletes.bySegment.get(s.object_id)?.bits ?? null;
      const liveBefore = live;
      for (let i = 0; i < s.doc_count; i++) {
        if (isDeletedIn(bits, i)) continue;
        live++;
        lenSum += s.text_len[i] + bm25.title_boost * s.title_len[i];
      }
      this.deletedBits.push(live - liveBefore < s.doc_count ? bits : null);
    }
    this.totalDocs = base;
    this.live_docs = live;
    this.lenSum = lenSum;
    this.avgdl = live > 0 ? lenSum / live : 1;
    this.exhaustive = new ExhaustiveScorer(base);
    this.docNorm = new Float64Array(base);
    const normA = bm25.k1 * (1 - bm25.b);
    const normB = (bm25.k1 * bm25.b) / this.avgdl;
    segments.forEach((s, si) => {
      const b0 = this.bases[si];
      for (let i = 0; i < s.doc_count; i++)
        this.docNorm[b0 + i] = normA + normB * (s.text_len[i] + bm25.title_boost * s.title_len[i]);
    });
  }

  /**
   * Open a generation: the lexical artifacts (segments, deletions) are read and verified now; the
   * vector shards and graphs with `vectors: 'eager'` (default) or on the first vector query
   * (`'lazy'`: a lexical-only workload never reads them, and a restart serves sooner). With a
   * `postings_cache`, version 5 segments open by ranges: their heads now, a term's postings when a
   * query pins it (`pinTerms`), kept in that cache. `graphs: false` never loads HNSW graphs.
   */
  static async open(
    objects: ObjectStore,
    id: ObjectId,
    manifest: GenerationManifest,
    bm25: Bm25Params = DEFAULT_BM25,
    storage?: Storage,
    opts: { vectors?: 'eager' | 'lazy'; postings_cache?: PostingsCache; graphs?: boolean } = {},
  ): Promise<GenerationReader> {
    const { segments, deletes } = await openLexical(objects, manifest, opts.postings_cache);
    const reader = new GenerationReader(
      manifest,
      id,
      segments,
      deletes,
      segments.map(() => undefined),
      bm25,
    );
    // Graphs load from the stored file (storage); without it, or with graphs: false, vector
    // queries scan their shards exactly.
    reader.vectorSource = { objects, storage: opts.graphs === false ? undefined : storage };
    if (opts.vectors !== 'lazy') await reader.loadVectors();
    return reader;
  }

  private vectorSource: { objects: ObjectStore; storage?: Storage } | null = null;
  private vectorsLoading: Promise<void> | null = null;
  /** True once the vector shards (and graphs) are in memory: vector queries need them. */
  vectors_loaded = false;

  /** Read and verify the vector shards, quality shards and graphs (once; retried after a failure). */
  loadVectors(): Promise<void> {
    if (this.vectors_loaded) return Promise.resolve();
    this.vectorsLoading ??= this.readVectors().then(
      () => {
        this.vectors_loaded = true;
      },
      (err) => {
        this.vectorsLoading = null;
        throw err;
      },
    );
    return this.vectorsLoading;
  }

  private async readVectors(): Promise<void> {
    const { objects, storage } = this.vectorSource!;
    const { shards, qshards, graphs } = await readVectorArtifacts(
      objects,
      this.manifest,
      this.segments,
      storage,
    );
    // All or nothing: a failure above leaves the reader without vectors, never half of them.
    shards.forEach((x, i) => {
      this.shards[i] = x;
    });
    qshards.forEach((x, i) => {
      this.qshards[i] = x;
    });
    graphs.forEach((x, i) => {
      this.graphs[i] = x;
    });
  }

  get generation_id(): string {
    return this.manifest.generation_id;
  }
  get commit_seq_high(): number {
    return this.manifest.commit_seq_high;
  }

  /**
   * Hold the postings of `terms` in every segment read by ranges until the returned release is
   * called: lexical scoring, statistics and a reranker read them synchronously meanwhile. Whole
   * segments need nothing. A page failing its checksum is corrupt_data naming the segment.
   */
  async pinTerms(terms: Iterable<string>): Promise<() => void> {
    const ranged = this.segments.filter((s) => s.is_ranged);
    if (ranged.length === 0) return NO_RELEASE;
    const list = [...new Set(terms)];
    const settled = await Promise.allSettled(ranged.map((s) => s.pin(list)));
    const releases = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      for (const r of releases) r();
      throw failed.reason;
    }
    return releaseAll(releases);
  }

  /**
   * `pinTerms` without waiting, when every segment holds the terms pinned or cached already (a
   * query's common case: no promise, no turn of the event loop); else null and nothing held.
   */
  pinCachedTerms(terms: string[]): (() => void) | null {
    const releases: (() => void)[] = [];
    for (const s of this.segments) {
      if (!s.is_ranged) continue;
      const r = s.pinCached(terms);
      if (!r) {
        for (const x of releases) x();
        return null;
      }
      releases.push(r);
    }
    return releaseAll(releases);
  }

  /** Bytes this reader keeps in memory: segments (a ranged one's head), deletions, vectors once loaded. */
  get resident_bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.resident_bytes;
    for (const a of this.manifest.lexical_artifacts) if (a.role !== 'segment') n += a.size_bytes;
    if (!this.vectors_loaded) return n;
    // A shard opened by its head holds its doc table only; the graph holds its rows instead.
    const headOnly = new Map(
      this.shards.filter((s) => s && !s.has_rows).map((s) => [s!.object_id, s!.count * 4]),
    );
    for (const a of this.manifest.vector_artifacts) n += headOnly.get(a.object_id) ?? a.size_bytes;
    return n;
  }

  /** Number of live documents containing `term` (cached per generation). */
  liveDf(term: string): number {
    const cached = this.dfCache.get(term);
    if (cached !== undefined) return cached;
    let df = 0;
    for (const [si, s] of this.segments.entries()) {
      const e = s.terms.get(term);
      if (!e) continue;
      const bits = this.deletedBits[si];
      if (bits === null) df += e.df;
      else
        s.forEachPosting(term, (d) => {
          if (!isDeletedIn(bits, d)) df++;
        });
    }
    this.dfCache.set(term, df);
    return df;
  }

  idf(term: string): number {
    return bm25Idf(this.live_docs, this.liveDf(term));
  }

  /**
   * This generation's share of collection-wide BM25 statistics for `terms` (a multi-shard query
   * sums them over shards, then scores every shard with the sums: docs/sharding.md).
   */
  lexicalStats(terms: string[]): LexicalStats {
    const df = emptyDf();
    for (const t of new Set(terms)) df[t] = this.liveDf(t);
    return { live_docs: this.live_docs, len_sum: this.lenSum, df };
  }

  /** Length norms for a collection-wide avgdl (equal to the generation's own: the cached array). */
  private normsFor(avgdl: number): Float64Array {
    if (avgdl === this.avgdl) return this.docNorm;
    if (this.globalNorm?.avgdl === avgdl) return this.globalNorm.norm;
    const { k1, b, title_boost } = this.bm25;
    const normA = k1 * (1 - b);
    const normB = (k1 * b) / avgdl;
    const norm = new Float64Array(this.totalDocs);
    this.segments.forEach((s, si) => {
      const b0 = this.bases[si];
      for (let i = 0; i < s.doc_count; i++)
        norm[b0 + i] = normA + normB * (s.text_len[i] + title_boost * s.title_len[i]);
    });
    this.globalNorm = { avgdl, norm };
    return norm;
  }

  /**
   * BM25 over title+text (title tf and length weighted by title_boost): the top k, pruned
   * (MaxScore + block-max, src/search/lexical/pruned-top-k.ts) when the query's shape gains from
   * it, else term at a time; both give the same hits and scores, bit for bit.
   */
  searchLexical(
    terms: string[],
    k: number,
    opts: { exhaustive?: boolean; stats?: LexicalStats } = {},
  ): ScoredDoc[] {
    if (k <= 0) return [];
    const { k1, b, title_boost } = this.bm25;
    const g = opts.stats;
    // Collection-wide statistics (a multi-shard query) replace this generation's own.
    const avgdl = g ? (g.live_docs > 0 ? g.len_sum / g.live_docs : 1) : this.avgdl;
    const idf = g ? (t: string) => bm25Idf(g.live_docs, dfOf(g, t)) : (t: string) => this.idf(t);
    const query: QueryTerm[] = [];
    for (const term of new Set(terms))
      if (this.liveDf(term) > 0) query.push({ term, order: query.length, idfK: idf(term) * (k1 + 1) });
    const scoring: LexicalScoring = {
      k1,
      title_boost,
      normA: k1 * (1 - b),
      normB: (k1 * b) / avgdl,
      norm: g ? this.normsFor(avgdl) : this.docNorm,
      // Bounds cached per generation assume its own idf and norms.
      bound_cache: g ? undefined : this.boundCache,
    };
    // Bounded: a generation sees many distinct query terms over its life.
    if (this.boundCache.size > 20_000) this.boundCache.clear();
    const top = new TopK<number>(k);
    const docIdAt = (g: number) => this.docIdAt(g);
    const views = this.segments.map((seg, si) => ({
      seg,
      base: this.bases[si],
      deleted: this.deletedBits[si],
    }));
    if (
      opts.exhaustive ||
      !worthPruning(
        query.map((q) => this.liveDf(q.term)),
        k,
      )
    )
      this.exhaustive.addTopK(views, query, scoring, top, docIdAt);
    else for (const v of views) prunedTopK(v.seg, v.base, v.deleted, query, scoring, top, docIdAt);
    return top.sorted().map((e) => ({ doc_id: e.key, score: e.score }));
  }

  /** Every posting scored, term at a time: the reference the pruned search must equal. */
  searchLexicalExhaustive(terms: string[], k: number): ScoredDoc[] {
    return this.searchLexical(terms, k, { exhaustive: true });
  }

  private docIdAt(g: number): string {
    let si = this.bases.length - 1;
    while (si > 0 && this.bases[si] > g) si--;
    return this.segments[si].doc_ids[g - this.bases[si]];
  }

  /** Exact cosine top-k over every shard, skipping deleted rows; merged into one top-k. */
  searchVector(query: Float32Array, k: number, opts: { exact?: boolean } = {}): ScoredDoc[] {
    invariant(this.vectors_loaded, 'vector query on a reader whose vectors are not loaded (loadVectors)');
    const top = new TopK<number>(k);
    this.segments.forEach((s, si) => {
      const shard = this.shards[si];
      if (!shard) return;
      const graph = opts.exact ? undefined : this.graphs[si];
      if (graph) {
        const bits = this.deletedBits[si];
        const live = bits !== null ? (row: number) => !isDeletedIn(bits, shard.docnums[row]) : undefined;
        try {
          for (const h of graph.search(query, Math.min(k, shard.count), live))
            top.push(h.score, s.doc_ids[shard.docnums[h.row]], h.row);
          return;
        } catch {
          // Too few live rows for the graph to fill k: fall through to the exact scan.
        }
      }
      const dead = this.deletedBits[si]; // a bitmap, not a lookup by segment id per row
      const admit = (row: number, score: number) => {
        const d = shard.docnums[row];
        if (isDeletedIn(dead, d)) return;
        if (top.admits(score)) top.push(score, s.doc_ids[d], d);
      };
      if (shard.has_rows) return shard.scan(query, admit);
      // Rows not read (the graph answers this shard): the graph's copy of them gives the same
      // scores, slowly (a native call per row); the rows are read meanwhile for the next query.
      const g = this.graphs[si];
      invariant(g, `vector shard ${shard.object_id}: neither rows nor a graph`);
      g.scan(query, admit);
      // This shard only, and once: one that fails to read (damaged) stays on the graph's points.
      if (!this.rowsFailed.has(si))
        this.loadVectorRows(si).catch(() => {
          this.rowsFailed.add(si);
        });
    });
    return top.sorted().map((e) => ({ doc_id: e.key, score: e.score }));
  }

  /** Per segment index: a read of that shard's rows in flight; those whose read failed. */
  private readonly rowsLoading = new Map<number, Promise<void>>();
  private readonly rowsFailed = new Set<number>();
  /**
   * Read the rows of the shards opened by their head (their graphs answered their queries) —
   * every one, or the one of segment index `only` — for exact scans over them. Idempotent (a read
   * in flight is joined); retried after a failure.
   */
  loadVectorRows(only?: number): Promise<void> {
    invariant(this.vectors_loaded, 'vector rows of a reader whose vectors are not loaded (loadVectors)');
    const missing = this.shards.flatMap((s, si) =>
      s && !s.has_rows && (only === undefined || si === only) ? [si] : [],
    );
    return Promise.all(missing.map((si) => this.loadRowsOf(si))).then(() => {});
  }

  private loadRowsOf(si: number): Promise<void> {
    let p = this.rowsLoading.get(si);
    if (!p) {
      const id = this.shards[si]!.object_id;
      const a = this.manifest.vector_artifacts.find((x) => x.object_id === id)!;
      p = readVectorShard(this.vectorSource!.objects, a, this.manifest)
        .then((whole) => {
          this.shards[si] = whole;
        })
        .finally(() => this.rowsLoading.delete(si));
      this.rowsLoading.set(si, p);
    }
    return p;
  }

  /** From the manifest: true before the quality shards are loaded too. */
  get has_quality_tier(): boolean {
    return this.manifest.vector_artifacts.some((a) => a.tier === 'quality');
  }

  /** Quality-tier cosine of the query with each given document (undefined when absent or deleted). */
  qualityScores(query: Float32Array, docIds: string[]): Map<string, number> {
    invariant(this.vectors_loaded, 'quality scores on a reader whose vectors are not loaded');
    const out = new Map<string, number>();
    for (const docId of docIds) {
      for (let si = 0; si < this.segments.length; si++) {
        const s = this.segments[si];
        const d = s.docnumOf(docId);
        const q = this.qshards[si];
        if (d < 0 || !q || this.deletes.isDeleted(s.object_id, d)) continue;
        let dot = 0;
        const base = d * q.dims; // quality shard rows are segment docnums in order
        // The rows as stored (f16 or f32): a few rows need no f32 copy of the whole shard.
        const v = q.rows;
        for (let j = 0; j < q.dims; j++) dot += v[base + j] * query[j];
        out.set(docId, dot);
      }
    }
    return out;
  }

  /** Quality-tier nearest neighbours (exact scan), skipping deleted rows. */
  searchQuality(query: Float32Array, k: number): ScoredDoc[] {
    invariant(this.vectors_loaded, 'quality query on a reader whose vectors are not loaded');
    const top = new TopK<number>(k);
    this.segments.forEach((s, si) => {
      const q = this.qshards[si];
      if (!q) return;
      const dead = this.deletedBits[si];
      q.scan(query, (row, score) => {
        const d = q.docnums[row];
        if (isDeletedIn(dead, d)) return;
        if (top.admits(score)) top.push(score, s.doc_ids[d], d);
      });
    });
    return top.sorted().map((e) => ({ doc_id: e.key, score: e.score }));
  }

  /** Every live document id (tests, merge and verification). */
  liveDocIds(): string[] {
    const out: string[] = [];
    for (const s of this.segments)
      s.doc_ids.forEach((d, i) => !this.deletes.isDeleted(s.object_id, i) && out.push(d));
    return out.sort();
  }

  get total_rows(): number {
    return this.totalDocs;
  }
}

const NO_RELEASE = () => {};

/** One release for several pins. */
function releaseAll(releases: (() => void)[]): () => void {
  return () => {
    for (const r of releases) r();
  };
}
