/**
 * LocalEngine: one shard's durable state on one node, composed from the storage and search
 * layers — capsule log, object store, generation store, builder, and pinned readers. The actors
 * (src/actors) and the CLI drive it; it holds no timers of its own beyond strict-mode waits.
 *
 * Length: ~460 lines because the reader cache (pin, read-time repair, eviction) and the candidate
 * build share the engine's private state; the pieces that need none of it live beside this file.
 */

import { UNSAFE } from '../core/buggify.ts';
import type { CommitCapsule, DocOp } from '../core/capsule.ts';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { ENGINE_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import type { GenerationManifest } from '../core/manifest.ts';
import { type Compute, inlineCompute, type Runtime } from '../runtime/index.ts';
import type { WindowCommit } from '../search/builder.ts';
import { GenerationReader } from '../search/generation-reader.ts';
import { PostingsCache } from '../search/lexical/postings-cache.ts';
import type { LexicalStats } from '../search/lexical/scoring.ts';
import { type ShardLists, shardLists } from '../search/multi-shard.ts';
import {
  type QualityTier,
  type SearchOptions,
  type SearchResult,
  searchTwoTier,
  validateSearchOptions,
} from '../search/searcher.ts';
import { tokenize } from '../search/text.ts';
import { type AppendAck, CapsuleLog } from '../storage/capsule-log.ts';
import { openDataDir } from '../storage/data-dir.ts';
import { type GenerationRef, GenerationStore } from '../storage/generations.ts';
import { ObjectStore } from '../storage/object-store.ts';
import { type ScrubReport, scrub } from '../storage/scrubber.ts';
import { SymbolStore } from '../storage/symbol-store.ts';
import { ActivationGate } from './activation-gate.ts';
import {
  assembleStored,
  type BuildSettings,
  type BuildSteps,
  type BuildWindow,
  buildStoredPart,
  runGenerationBuild,
} from './build-task.ts';
import type { AssembleTaskInput, PartTaskInput } from './compute-worker.ts';
import { checkEmbedderRevision } from './embedder-gate.ts';
import { defaultEngineConfig, type EngineConfig } from './engine-config.ts';
import type { ActivationSource, EngineEvent, EngineEventListener } from './engine-events.ts';
import { buildStoredGraph, type GraphBuilder } from './hnsw-graphs.ts';
import { checkStrictRead, selectAsOf, selectGeneration, waitForActivation } from './read-path.ts';
import { ReaderCache } from './reader-cache.ts';
import { protectSealedSegment, repairSealedSegments } from './sealed-segments.ts';
import { type VerifyReport, verifyObjects } from './verify.ts';

export { defaultEngineConfig, type EngineConfig };

export interface ReadOptions {
  /** Time travel (§6): newest retained generation with commit_seq_high <= this. */
  as_of_commit_seq?: number;
  /** Strict mode (§6): wait until a generation covering this commit_seq is active. */
  min_commit_seq?: number;
  timeout_ms?: number;
  /** Snapshot read (docs/sharding.md): exactly this retained generation. */
  generation_id?: string;
}

/** A shard's answer to multi-shard phase 1: which generation, and its statistics. */
export interface ShardStatsShare {
  generation_id: string;
  artifact_manifest_id: string;
  commit_seq_high: number;
  stats: LexicalStats;
}

export interface Pinned {
  reader: GenerationReader;
  release(): void;
}

export interface EngineOptions {
  /** Every typed engine event, from the first one during open (log recovery) on. */
  onEvent?: EngineEventListener;
  /** Restore an object from peers when local symbols cannot (§8.1); the node wires its services. */
  peer_repair?: (objectId: ObjectId) => Promise<boolean>;
  /**
   * Queue the active generation's missing repair symbols at open (default true). A one-shot read
   * (`fsmesh search`) says false: it would otherwise wait at close for encodings it does not need.
   */
  maintain_symbols?: boolean;
  /**
   * Load a generation's vector shards and graphs when activating it (default true: a serving node
   * answers its first vector query at full speed). A one-shot command that exits after activating
   * (`fsmesh ingest`) says false: they are verified by streamed re-hash instead, never held.
   */
  warm_vectors?: boolean;
  /**
   * Open the capsule log with the engine (default true). A one-shot read (`fsmesh search`) says
   * false: the log — the whole history, ~16 MB at 50k documents, checked record by record — is not
   * read to answer a search (issue 16); it is opened on first need (an as_of read's bound, verify),
   * and writing or building through such an engine is refused.
   */
  open_log?: boolean;
  /**
   * Load HNSW graphs for vector queries (default true). A one-shot read (`fsmesh search`) says
   * false: a vector query then scans its shards exactly (~9 ms at 50k rows) instead of loading
   * and re-hashing graphs of tens of MB to search them once.
   */
  vector_graphs?: boolean;
}

const NO_UNPIN = () => {};

export class LocalEngine {
  readonly runtime: Runtime;
  readonly config: EngineConfig;
  private openedLog: CapsuleLog | null;
  /** The log being opened on first need (open_log: false): concurrent reads share one opening. */
  private logOpening: Promise<CapsuleLog> | null = null;
  readonly objects: ObjectStore;
  readonly generations: GenerationStore;
  readonly symbols: SymbolStore;
  /** Read-time verification failures that local symbols could not repair (§8.1). */
  repair_failures_total = 0;
  repaired_objects_total = 0;
  private readonly readers: ReaderCache;
  /** Postings of ranged segments' terms, shared by every open generation (postings_cache_bytes). */
  readonly postings: PostingsCache;
  private building: Promise<unknown> = Promise.resolve();
  /** Every build under way (actors call buildCandidate directly); close() waits for them. */
  private readonly buildsInFlight = new Set<Promise<unknown>>();
  private closing = false;
  private readonly events: EngineOptions;
  /** The one path by which a generation becomes live (src/engine/activation-gate.ts). */
  readonly gate: ActivationGate;

  private constructor(
    runtime: Runtime,
    config: EngineConfig,
    log: CapsuleLog | null,
    objects: ObjectStore,
    generations: GenerationStore,
    events: EngineOptions,
  ) {
    this.runtime = runtime;
    this.config = config;
    this.openedLog = log;
    this.objects = objects;
    this.generations = generations;
    this.events = events;
    this.symbols = new SymbolStore(runtime.storage, objects, config.repair, runtime.compute);
    this.readers = new ReaderCache(config.reader_cache_bytes);
    this.postings = new PostingsCache(config.postings_cache_bytes);
    this.gate = new ActivationGate({
      clock: runtime.clock,
      active: () => this.generations.active,
      loadManifest: (id) => this.generations.loadManifest(id),
      verifyAndWarm: (id, opts) => this.verifyAndWarm(id, opts),
      flipPointer: (id, opts) => this.generations.activate(id, opts),
      rollbackTarget: () => this.generations.rollbackTarget(),
      rollbackPointer: () => this.generations.rollback(),
      afterFlip: async () => {
        // Reclaiming space is not part of the flip: a failure here is retried by the next one.
        await this.collectGarbage().catch(() => 0);
      },
      emit: (e) => this.emit(e),
    });
  }

  emit(e: EngineEvent): void {
    this.events.onEvent?.(e);
  }

  /** Protection of sealed log segments runs in the background; close() waits for it. */
  sealing: { q: Promise<unknown> } = { q: Promise.resolve() };

  /** Scrub sealed log segments too (they are protected objects). */
  async sealedSegmentIds(): Promise<ObjectId[]> {
    return this.objects.list('log_segment');
  }

  static async open(
    runtime: Runtime,
    config: EngineConfig,
    events: EngineOptions = {},
  ): Promise<LocalEngine> {
    await openDataDir(runtime.storage);
    const objects = await ObjectStore.open(runtime.storage);
    const emit = (e: EngineEvent) => events.onEvent?.(e);
    const sealing = { q: Promise.resolve() as Promise<unknown> };
    const log = events.open_log === false ? null : await openLog(runtime, config, objects, emit, sealing);
    const generations = await GenerationStore.open({
      storage: runtime.storage,
      objects,
      clock: runtime.clock,
      retention: config.retention,
    });
    const active = generations.active;
    // A writer builds generations from its own log, so its log always covers the active one.
    // A replica activates generations fetched from peers (Option B) and its log may lag: fine.
    // A node that followed a failover handover is whatever the handover says, whatever its flags:
    // the cluster service decides (and checks this for a writer) once it has read the handover.
    const followsHandover = await runtime.storage.exists(DATA_DIR.writer_handover_file);
    if (
      log &&
      config.role === 'writer' &&
      !followsHandover &&
      active &&
      active.commit_seq_high > log.commitSeqHigh
    ) {
      throw new FsmeshError(
        'corrupt_data',
        `active generation ${active.generation_id} covers commit_seq ${active.commit_seq_high} but the log ends at ${log.commitSeqHigh}`,
      );
    }
    const engine = new LocalEngine(runtime, config, log, objects, generations, events);
    engine.sealing = sealing;
    // A replica killed before its background encodings finished lacks some repair symbols.
    if (active && events.maintain_symbols !== false) {
      const m = await generations.loadManifest(active.artifact_manifest_id);
      const ids = [...m.lexical_artifacts, ...m.vector_artifacts].map((a) => a.object_id);
      engine.symbols.ensureLater('artifact', ids);
    }
    return engine;
  }

  /** The capsule log; refused on an engine opened without it (`open_log: false`). */
  get log(): CapsuleLog {
    if (!this.openedLog)
      throw new FsmeshError(
        'conflict',
        'this engine was opened for reads only (open_log: false): it has no capsule log',
      );
    return this.openedLog;
  }

  /** The log's head, opening the log first on an engine opened without it. */
  private async logHigh(): Promise<number> {
    if (!this.openedLog) {
      this.logOpening ??= openLog(
        this.runtime,
        this.config,
        this.objects,
        (e) => this.events.onEvent?.(e),
        this.sealing,
      );
      // A failed opening (a damaged log) is not kept: the next read that needs the log tries again.
      this.openedLog = await this.logOpening.finally(() => {
        this.logOpening = null;
      });
    }
    return this.openedLog.commitSeqHigh;
  }

  /** Append one capsule of ops; resolves once durable (per the log's durability policy). */
  ingest(ops: DocOp[], opts: { idempotency_key?: string } = {}): Promise<AppendAck> {
    const capsule: CommitCapsule = { format: 1, shard: this.config.shard, ops };
    if (opts.idempotency_key !== undefined) capsule.idempotency_key = opts.idempotency_key;
    return this.log.append(capsule);
  }

  /**
   * Build a generation from the commits after the active one and activate it. Builds are
   * serialized. Returns null when there is nothing new.
   */
  buildAndActivate(
    opts: { upTo?: number } = {},
  ): Promise<{ ref: GenerationRef; manifest: GenerationManifest } | null> {
    const run = this.building.then(() => this.buildOnce(opts.upTo));
    this.building = run.catch(() => {});
    return run;
  }

  private async buildOnce(upTo?: number) {
    const cand = await this.buildCandidate(upTo);
    if (!cand) return null;
    try {
      const ref = await this.gate.activate({ manifest_id: cand.manifest_id, source: 'cli_ingest' });
      return { ref, manifest: cand.manifest };
    } finally {
      cand.release();
    }
  }

  private perturb: { times: number; skip: number } | null = null;

  /**
   * A planted non-deterministic build (failpoint `build.perturb`, chaos and audit tests only): after
   * `skip` builds, the next `times` builds use the other vector quantization — a valid generation
   * whose bytes no faithful rebuild reproduces, as a node with a drifting build would produce.
   */
  perturbBuilds(times: number, skip = 0): void {
    this.perturb = { times, skip };
  }

  private perturbThisBuild(): boolean {
    const p = this.perturb;
    if (!p || p.times <= 0) return false;
    if (p.skip > 0) {
      p.skip--;
      return false;
    }
    p.times--;
    return true;
  }

  /**
   * Build (but do not activate) the next generation from the commits after the active one:
   * artifacts, symbols and manifest are stored, invisible to readers until a flip. The returned
   * lease keeps GC away from the candidate until the caller activates or abandons it.
   */
  buildCandidate(
    upTo?: number,
    /** Replay (§7.3 fallback): rebuild exactly the writer's generation — its identity and number. */
    as?: { created_by: string; generation_seq: number },
  ): Promise<{ manifest_id: ObjectId; manifest: GenerationManifest; release: () => void } | null> {
    // close() waits for every build in flight, and none starts after it: a build must not outlive
    // the log and the compute threads it uses (a stopping node hung on one).
    if (this.closing)
      return Promise.reject(new FsmeshError('unavailable', 'the engine is closing: no new build'));
    const run = this.buildCandidateNow(upTo, as);
    const tracked = run.catch(() => {});
    this.buildsInFlight.add(tracked);
    void tracked.finally(() => this.buildsInFlight.delete(tracked));
    return run;
  }

  private async buildCandidateNow(
    upTo?: number,
    as?: { created_by: string; generation_seq: number },
  ): Promise<{ manifest_id: ObjectId; manifest: GenerationManifest; release: () => void } | null> {
    const active = this.generations.active;
    const high = Math.min(upTo ?? this.log.commitSeqHigh, this.log.commitSeqHigh);
    if (active && active.commit_seq_high >= high) return null;
    const parentPin = active ? await this.pin(active.artifact_manifest_id) : null;
    try {
      const from = active ? active.commit_seq_high + 1 : 1;
      let commits: WindowCommit[] = [];
      for await (const r of this.log.range(from, high))
        commits.push({ commit_seq: r.commit_seq, marker_id: r.marker_id, capsule: r.capsule });
      const nextSeq =
        as?.generation_seq ?? Math.max(0, ...this.generations.retained.map((r) => r.generation_seq)) + 1;
      const settings: BuildSettings = {
        shard: this.config.shard,
        created_by: as?.created_by ?? this.config.created_by,
        quantization: this.perturbThisBuild()
          ? this.config.quantization === 'f16'
            ? 'f32'
            : 'f16'
          : this.config.quantization,
        repair: this.config.repair,
        max_segments: this.config.max_segments,
        segment_max_docs: this.config.segment_max_docs,
        hnsw_min_rows: this.config.hnsw_min_rows,
      };
      const window: BuildWindow = {
        parent: parentPin?.reader ?? null,
        commits,
        next_generation_seq: nextSeq,
        head_marker_id: this.log.markerIdAt(high),
        commit_seq_high: high,
        settings,
        embedder: this.config.embedder,
        quality_embedder: this.config.quality_embedder,
      };
      commits = [];
      // Objects stored before the manifest is leased are kept from GC by this set meanwhile.
      const stored = new Set<ObjectId>();
      this.buildObjects.add(stored);
      try {
        const out = await runGenerationBuild(window, this.buildSteps(window, stored));
        const manifestId = await this.generations.putManifest(out.manifest);
        const release = this.generations.lease(manifestId);
        return { manifest_id: manifestId, manifest: out.manifest, release };
      } finally {
        this.buildObjects.delete(stored);
      }
    } finally {
      parentPin?.release();
    }
  }

  /** Objects of builds in flight (not yet referenced by a leased manifest): GC leaves them. */
  private readonly buildObjects = new Set<Set<ObjectId>>();

  /**
   * How a build's steps run: parts and assembly on the compute threads when the embedders can
   * travel there (a worker rebuilds them from their specs), else here; graphs one task per shard.
   */
  private buildSteps(w: BuildWindow, stored: Set<ObjectId>): BuildSteps {
    const { parent } = w;
    const { quantization } = w.settings;
    const compute = this.runtime.compute ?? inlineCompute;
    const { embedder, quality_embedder } = this.config;
    const portable =
      embedder.spec !== undefined && (!quality_embedder || quality_embedder.spec !== undefined);
    const data_dir = this.runtime.storage.root;
    const env = { objects: this.objects, symbols: this.symbols };
    const run = <O>(task: string, input: () => unknown, inline: () => Promise<O>): Promise<O> =>
      portable ? compute.run<O>(task, input(), inline) : inline();
    return {
      part: (ops) =>
        run(
          'build_part',
          () =>
            ({
              data_dir,
              ops,
              quantization,
              repair: this.config.repair,
              embedder: embedder.spec!,
              quality_embedder: quality_embedder?.spec,
            }) satisfies PartTaskInput,
          () => buildStoredPart(ops, { embedder, quality_embedder, quantization }, env),
        ),
      // A merge reads its shards and segments from the store: one found damaged is repaired (local
      // symbols, then peers) and the assembly runs again, as a read would.
      assemble: (args) =>
        this.withReadRepair(() =>
          run(
            'assemble_generation',
            () =>
              ({
                ...args,
                data_dir,
                parent: parent && {
                  artifact_manifest_id: parent.artifact_manifest_id,
                  manifest: parent.manifest,
                },
              }) satisfies AssembleTaskInput,
            // The assembly carries the parent's vector shards by id and reads the ones it merges
            // from the store: the parent's vectors need not be in memory (a worker opens the parent
            // itself).
            () => assembleStored(args, { ...env, parent }),
          ),
        ),
      graph: this.graphBuilder(compute),
      concurrency: Math.max(1, compute.threads),
      part_concurrency: portable ? Math.max(1, compute.threads) : 1,
      onStored: (ids) => {
        for (const id of ids) stored.add(id);
      },
    };
  }

  /** Graphs on the compute threads (task build_hnsw), or here when the input cannot travel. */
  private graphBuilder(compute: Compute): GraphBuilder {
    return (shardId) =>
      compute.run(
        'build_hnsw',
        { data_dir: this.runtime.storage.root, shard_id: shardId, repair: this.config.repair },
        () =>
          buildStoredGraph(shardId, {
            storage: this.runtime.storage,
            objects: this.objects,
            symbols: this.symbols,
          }),
      );
  }

  /** Activate a stored manifest through the gate (library and CLI use: no node, no actors). */
  activateManifest(manifestId: ObjectId, source: ActivationSource = 'cli_ingest'): Promise<GenerationRef> {
    return this.gate.activate({ manifest_id: manifestId, source });
  }

  /**
   * The gate's checks, before any flip: manifest loads and validates, shard and embedder revision
   * match (§8.5), every artifact is present and re-hashed (opening the reader), and the reader is
   * warmed by a probe query. Returns the pinned reader; the caller releases it.
   */
  async verifyAndWarm(
    manifestId: ObjectId,
    opts: { hashed_ids?: ReadonlySet<ObjectId> } = {},
  ): Promise<Pinned> {
    const manifest = await this.generations.loadManifest(manifestId);
    if (manifest.shard !== this.config.shard) {
      throw new FsmeshError(
        'conflict',
        `manifest is for shard ${manifest.shard}, this node serves ${this.config.shard}`,
      );
    }
    this.checkEmbedderGate(manifest);
    const pinned = await this.pin(manifestId);
    try {
      // Activation verifies everything, vectors included: a live generation answers every mode.
      // Vectors a peer sync just hashed against their ids are verified already: they are read in
      // the background (a vector query meanwhile waits for the same load), not before the flip —
      // 150-200 ms of a 50k-document bootstrap. A failure there is the query's to repair.
      const hashed = opts.hashed_ids;
      if (hashed && manifest.vector_artifacts.every((a) => hashed.has(a.object_id))) {
        if (this.events.warm_vectors !== false) void this.vectorsOf(pinned.reader).catch(() => {});
      } else if (this.events.warm_vectors !== false) await this.vectorsOf(pinned.reader);
      else
        for (const a of manifest.vector_artifacts)
          await this.withReadRepair(() => this.objects.verify('artifact', a.object_id));
    } catch (err) {
      pinned.release();
      throw err;
    }
    // A first query warms the search code (and checks the pages of the term it reads).
    try {
      const unpin = await this.termsOf(pinned.reader, ['fsmesh']);
      try {
        pinned.reader.searchLexical(['fsmesh'], 1);
      } finally {
        unpin();
      }
    } catch (err) {
      pinned.release();
      throw err;
    }
    return pinned;
  }

  async collectGarbage(): Promise<number> {
    const building = new Set<ObjectId>();
    for (const b of this.buildObjects) for (const id of b) building.add(id);
    const n = await this.generations.collectGarbage(building, async (kind, id) => {
      this.postings.dropObject(id); // a removed segment's cached terms
      await this.symbols.remove(kind, id);
    });
    this.evictUnretained();
    return n;
  }

  /** §8.5: activation is blocked when the manifest's embedder revisions differ from this node's. */
  checkEmbedderGate(m: GenerationManifest): void {
    checkEmbedderRevision(m, this.config);
  }

  /** Pin a generation's reader for the duration of one request (§5.3). */
  async pin(manifestId: ObjectId): Promise<Pinned> {
    const entry = this.readers.acquire(manifestId, () => this.openReaderWithRepair(manifestId));
    const lease = this.generations.lease(manifestId);
    let reader: GenerationReader;
    try {
      reader = await entry.reader;
    } catch (err) {
      this.readers.release(entry);
      lease();
      throw err;
    }
    let released = false;
    return {
      reader,
      release: () => {
        if (released) return;
        released = true;
        this.readers.release(entry);
        lease();
        this.evictUnretained();
      },
    };
  }

  /**
   * Open (and so verify) a generation; an artifact that fails verification is rebuilt from the
   * node's own symbols when possible (§8.1), else the error names it for peer repair.
   */
  private async openReaderWithRepair(manifestId: ObjectId): Promise<GenerationReader> {
    const manifest = await this.generations.loadManifest(manifestId);
    return this.withReadRepair(() =>
      GenerationReader.open(this.objects, manifestId, manifest, this.config.bm25, this.runtime.storage, {
        vectors: 'lazy',
        postings_cache: this.postings,
        graphs: this.events.vector_graphs !== false,
      }),
    );
  }

  /**
   * Hold a query's terms' postings in the reader's ranged segments (read, checked and repaired as
   * needed) until the returned release is called.
   */
  termsOf(reader: GenerationReader, terms: string[]): Promise<() => void> {
    return this.withReadRepair(() => reader.pinTerms(terms));
  }

  /** The lexical terms a search reads: none for a vector query unless a reranker may read them. */
  private queryTerms(o: { q: string; mode?: string }): string[] {
    return o.mode === 'vector' && !this.config.reranker ? [] : tokenize(o.q);
  }

  /** A reader's vector shards and graphs, read (and verified, repaired) on first need. */
  vectorsOf(reader: GenerationReader): Promise<void> {
    return reader.vectors_loaded ? Promise.resolve() : this.withReadRepair(() => reader.loadVectors());
  }

  /**
   * Run a read that verifies artifacts; one that fails verification is rebuilt from the node's
   * own symbols when possible (§8.1), else from peers, else the error names it.
   */
  private async withReadRepair<T>(read: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await read();
      } catch (err) {
        const id = err instanceof FsmeshError ? (err.details.object_id as ObjectId | undefined) : undefined;
        if (
          !id ||
          attempt >= 3 ||
          !(err instanceof FsmeshError) ||
          !['corrupt_data', 'not_found'].includes(err.code)
        )
          throw err;
        this.emit({ type: 'artifact_repair_started', object_id: id, trigger: 'read' });
        const r = await this.symbols.checkAndRepairLocally('artifact', id);
        if (r.outcome === 'repaired') {
          this.repaired_objects_total++;
          this.emit({
            type: 'artifact_repair_completed',
            object_id: id,
            source: 'local_symbols',
            repaired_bytes: r.repaired_bytes,
          });
          continue;
        }
        if (this.events.peer_repair && (await this.events.peer_repair(id))) {
          this.repaired_objects_total++;
          this.emit({ type: 'artifact_repair_completed', object_id: id, source: 'peers' });
          continue;
        }
        this.repair_failures_total++;
        this.emit({ type: 'artifact_repair_failed', object_id: id, outcome: r.outcome });
        throw new FsmeshError(
          err.code,
          `${err.message}; local repair impossible (${r.outcome}): symbols from peers are needed`,
          { ...err.details, repair: r.outcome },
        );
      }
    }
  }

  /** Scrub the artifacts of every retained generation at a bounded rate; repair locally. */
  async scrub(
    opts: { bytes_per_s?: number; onProgress?: (r: ScrubReport) => void } = {},
  ): Promise<ScrubReport> {
    const { artifacts } = await this.generations.referencedObjects();
    const r = await scrub(this.objects, this.symbols, this.runtime.clock, {
      bytes_per_s: opts.bytes_per_s ?? 0,
      kinds: ['artifact', 'log_segment'],
      ids: new Map([
        ['artifact', [...artifacts].sort()],
        ['log_segment', await this.objects.list('log_segment')],
      ]),
      onProgress: opts.onProgress,
    });
    this.repaired_objects_total += r.repaired;
    this.repair_failures_total += r.unrepairable.length;
    return r;
  }

  private evictUnretained(): void {
    const keep = new Set(
      this.generations.retained.filter((r) => !r.rolled_back).map((r) => r.artifact_manifest_id),
    );
    this.readers.evict(this.generations.active?.artifact_manifest_id, keep);
  }

  /** Generations open in memory now (the active one, pinned ones, and what the budget keeps). */
  get open_generations(): number {
    return this.readers.size;
  }

  /** Choose and pin the generation a read uses: latest, time travel, or strict (waits). */
  async acquire(opts: ReadOptions = {}): Promise<Pinned> {
    const modes = [opts.as_of_commit_seq, opts.min_commit_seq, opts.generation_id].filter(
      (v) => v !== undefined,
    );
    if (modes.length > 1) {
      throw new FsmeshError(
        'invalid_input',
        'as_of_commit_seq, min_commit_seq and generation_id (a snapshot) cannot be combined',
      );
    }
    if (opts.generation_id !== undefined)
      return this.pin(selectGeneration(this.generations, opts.generation_id).artifact_manifest_id);
    if (opts.as_of_commit_seq !== undefined)
      return this.pin(
        selectAsOf(this.generations, await this.logHigh(), opts.as_of_commit_seq).artifact_manifest_id,
      );
    if (opts.min_commit_seq !== undefined) {
      const min = opts.min_commit_seq;
      checkStrictRead(min, opts.timeout_ms);
      await waitForActivation(
        this.generations,
        this.runtime.clock,
        min,
        opts.timeout_ms ?? ENGINE_DEFAULTS.strict_read_timeout_ms,
      );
    }
    // Re-read after any wait and pin immediately: one generation for the whole request.
    for (;;) {
      const active = this.generations.active;
      if (!active) throw new FsmeshError('not_found', 'no generation is active yet: ingest documents first');
      const p = await this.pin(active.artifact_manifest_id);
      if (opts.min_commit_seq === undefined || p.reader.commit_seq_high >= opts.min_commit_seq) return p;
      p.release();
    }
  }

  async search(opts: SearchOptions & ReadOptions): Promise<SearchResult> {
    validateSearchOptions(opts);
    const pinned = await this.acquire(opts);
    let unpin = NO_UNPIN;
    try {
      const o = validateSearchOptions(opts);
      if (o.mode !== 'lexical') await this.vectorsOf(pinned.reader);
      const terms = this.queryTerms(o);
      // Held at once when every term is cached already (a query's usual path: no await).
      unpin = pinned.reader.pinCachedTerms(terms) ?? (await this.termsOf(pinned.reader, terms));
      const r = searchTwoTier(
        pinned.reader,
        opts,
        this.config.embedder,
        this.qualityTier(),
        this.config.reranker,
      );
      return r.refined ?? r.initial;
    } finally {
      unpin();
      pinned.release();
    }
  }

  /**
   * Multi-shard phase 1 (docs/sharding.md): the generation the read options select, and its share
   * of the query's collection-wide BM25 statistics.
   */
  async shardStats(opts: SearchOptions & ReadOptions): Promise<ShardStatsShare> {
    const o = validateSearchOptions(opts);
    const pinned = await this.acquire(opts);
    let unpin = NO_UNPIN;
    try {
      const r = pinned.reader;
      const terms = o.mode === 'vector' ? [] : tokenize(o.q);
      unpin = r.pinCachedTerms(terms) ?? (await this.termsOf(r, terms));
      return {
        generation_id: r.generation_id,
        artifact_manifest_id: r.artifact_manifest_id,
        commit_seq_high: r.commit_seq_high,
        stats: r.lexicalStats(terms),
      };
    } finally {
      unpin();
      pinned.release();
    }
  }

  /** Multi-shard phase 2: ranked lists from exactly `generation_id`, lexical under `stats`. */
  async shardLists(
    opts: SearchOptions & { generation_id: string },
    stats: LexicalStats,
  ): Promise<ShardLists> {
    const o = validateSearchOptions(opts);
    const pinned = await this.acquire(UNSAFE.shard_lists_latest ? {} : { generation_id: opts.generation_id });
    let unpin = NO_UNPIN;
    try {
      if (o.mode !== 'lexical') await this.vectorsOf(pinned.reader);
      const terms = this.queryTerms(o);
      // Held at once when every term is cached already (a query's usual path: no await).
      unpin = pinned.reader.pinCachedTerms(terms) ?? (await this.termsOf(pinned.reader, terms));
      return shardLists(pinned.reader, opts, this.config.embedder, this.qualityTier(), stats);
    } finally {
      unpin();
      pinned.release();
    }
  }

  /** The quality tier configured for this engine, if any. */
  qualityTier(): QualityTier | undefined {
    return this.config.quality_embedder
      ? { embedder: this.config.quality_embedder, weight: this.config.quality_weight }
      : undefined;
  }

  async rollback() {
    const r = await this.gate.rollback();
    this.evictUnretained();
    return r;
  }

  /** Re-hash every stored object and check every referenced one exists; the log was verified at open. */
  async verify(): Promise<VerifyReport> {
    return verifyObjects(this.objects, this.generations, await this.logHigh());
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.building;
    await Promise.all(this.buildsInFlight);
    await this.openedLog?.close();
    await this.sealing.q;
    await this.symbols.settled();
  }
}

/**
 * Open the capsule log, first healing its sealed segments (durable objects with repair symbols,
 * §3) so a damaged one is repaired instead of failing the chain check.
 */
async function openLog(
  runtime: Runtime,
  config: EngineConfig,
  objects: ObjectStore,
  emit: (e: EngineEvent) => void,
  sealing: { q: Promise<unknown> },
): Promise<CapsuleLog> {
  const symbols = new SymbolStore(runtime.storage, objects, config.repair, runtime.compute);
  await repairSealedSegments(runtime, objects, symbols, emit);
  return CapsuleLog.open({
    storage: runtime.storage,
    clock: runtime.clock,
    durability: config.durability,
    segment_max_bytes: config.log_segment_max_bytes,
    onRecovery: emit,
    onSealed: (name) => {
      sealing.q = sealing.q
        .then(() => protectSealedSegment(runtime, objects, symbols, name))
        .catch((err) => emit({ type: 'log_segment_protect_failed', segment: name, error: String(err) }));
    },
  });
}
