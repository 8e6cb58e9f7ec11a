/**
 * Cluster membership of one node (§4 Option B, §6, §7, §8.2, §8.4): serves the fsmesh protocols,
 * gossips signed generation records and commit heads, replicates capsules writer → replicas
 * (quorum durability), and on replicas bootstraps, catches up and repairs from peers.
 */
import type { PrivateKey } from '@libp2p/interface';
import { UNSAFE } from '../core/buggify.ts';
import { toHex } from '../core/bytes.ts';
import { FsmeshError } from '../core/errors.ts';
import { decodeManifest, manifestIdOf } from '../core/manifest.ts';
import { decodeMarker, encodeMarker, MARKER_BYTES } from '../core/marker.ts';
import { type GenerationLifecycle, startGenerationLifecycle } from '../fsm/generation-lifecycle.ts';
import type { FsmeshNode } from '../node.ts';
import { LifecycleTrace } from '../obs/tracing.ts';
import { isNotFound, type Transport, writeFileAtomic } from '../runtime/index.ts';
import type { AppendAck } from '../storage/capsule-log.ts';
import type { GenerationRef } from '../storage/generations.ts';
import {
  jsonFrame,
  MAX_CAPSULES_PER_REQUEST,
  MAX_SYMBOLS_PER_REQUEST,
  PROTO,
  parseJsonFrame,
  symbolFrame,
  topics,
} from './protocols.ts';
import {
  decodeSignedRecord,
  encodeSignedRecord,
  type SignedRecord,
  signRecord,
  verifyRecordSignature,
} from './records.ts';
import { type FetchProgress, fetchObjectFromPeers } from './symbol-fetch.ts';

export interface ClusterOptions {
  cluster: string;
  role: 'writer' | 'replica';
  durability: 'local' | 'quorum';
  /** Configured members of the shard, writer included (quorum = majority of these). */
  members: number;
  trusted_writer?: string;
  lag_alert_commits: number;
  announce_interval_ms: number;
  quorum_timeout_ms: number;
  /** Use at most this many peers for symbol fetches (0 = all); benchmarks compare 1, 2, 4. */
  fetch_peers?: number;
  onProgress?: (p: {
    phase: string;
    objects_done: number;
    objects_total: number;
    bytes: number;
    peers: number;
  }) => void;
}

const TRUST_FILE = 'trusted-writer';

export class ClusterNode {
  readonly node: FsmeshNode;
  readonly transport: Transport;
  private readonly key: PrivateKey;
  readonly opts: ClusterOptions;
  private readonly t: { manifests: string; heads: string };
  private trusted: string | null = null;
  private latest: SignedRecord | null = null;
  private readonly seen = new Map<string, string>(); // generation_id -> manifest id (trusted records)
  private syncing = false;
  private stopped = false;
  private timer: { cancel(): void } | null = null;
  writer_head = 0;
  private lagAlerted = false;
  private readonly acks = new Map<number, { need: number; have: number; done: () => void }>();
  private readonly replicaChains = new Map<string, Promise<void>>();
  private readonly replicaHigh = new Map<string, number>();
  private bootstrapStartMs: number | null = null;
  private readonly warnedWriters = new Set<string>();

  constructor(node: FsmeshNode, transport: Transport, key: PrivateKey, opts: ClusterOptions) {
    this.node = node;
    this.transport = transport;
    this.key = key;
    this.opts = opts;
    this.t = topics(opts.cluster, node.engine.config.shard);
  }

  private get engine() {
    return this.node.engine;
  }
  private get clock() {
    return this.engine.runtime.clock;
  }

  async start(): Promise<void> {
    const storage = this.engine.runtime.storage;
    if (this.opts.role === 'writer') this.trusted = this.transport.peerId;
    else if (this.opts.trusted_writer) this.trusted = this.opts.trusted_writer;
    else {
      try {
        this.trusted = new TextDecoder().decode(await storage.readFile(TRUST_FILE)).trim() || null;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    this.serve();
    this.transport.subscribe(
      this.t.manifests,
      (m) => void this.acceptRecord(m.data, m.from).catch(() => {}),
      async (m) => ((await this.checkRecord(m.data)) ? 'accept' : 'reject'),
    );
    this.transport.subscribe(
      this.t.heads,
      (m) => this.onHead(m.data),
      (m) => (m.data.length <= 512 ? 'accept' : 'reject'),
    );
    await this.transport.start();
    if (this.opts.role === 'writer') {
      this.node.hooks.afterLocalCommit = (ack) => this.replicate(ack);
      this.node.events.on((e) => {
        if (e.event === 'generation_activation_succeeded') void this.announce();
      });
    } else {
      if (!this.engine.generations.active) this.bootstrapStartMs = this.clock.monotonicMs();
    }
    // Any node, writer included, can rebuild a damaged artifact from its peers' symbols.
    this.node.hooks.fetchFromPeers = (id) => this.repairFromPeers(id);
    this.engine.peer_repair = (id) => this.repairFromPeers(id);
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.transport.stop();
  }

  /** Periodic anti-entropy: writers re-announce, replicas poll heads (gossip is not persistent). */
  private tick(): void {
    if (this.stopped) return;
    const run = this.opts.role === 'writer' ? this.announce() : this.pollHeads();
    void run
      .catch(() => {})
      .finally(() => {
        if (!this.stopped)
          this.timer = this.clock.setTimeout(() => this.tick(), this.opts.announce_interval_ms);
      });
  }

  // ---------- serving ----------
  private serve(): void {
    this.transport.handle(PROTO.head, async () => [
      jsonFrame({
        commit_seq_high: this.engine.log.commitSeqHigh,
        head_marker_id: this.engine.log.headMarker,
        record: this.currentRecord(),
        // The shard writer says so; the stream is authenticated, so `writer === peer` cannot be forged.
        writer: this.opts.role === 'writer' ? this.transport.peerId : this.trusted,
        // Peer exchange: replicas learn each other, so symbols can come from several peers.
        peers: (await this.transport.peerAddrs()).filter((a) => a.startsWith('/ip')).slice(0, 32),
      }),
    ]);
    this.transport.handle(PROTO.manifest, async (req) => {
      const { artifact_manifest_id } = parseJsonFrame<{ artifact_manifest_id: string }>(
        req,
        'manifest request',
      );
      return [await this.engine.objects.get('manifest', artifact_manifest_id)];
    });
    this.transport.handle(PROTO.symbols, async (req) => {
      const r = parseJsonFrame<{ object_id: string; kind: string; ranges: [number, number][] }>(
        req,
        'symbols request',
      );
      if (r.kind !== 'artifact' || !Array.isArray(r.ranges))
        throw new FsmeshError(
          'invalid_input',
          'symbols request: kind must be "artifact" and ranges an array',
        );
      const ids: number[] = [];
      for (const rg of r.ranges) {
        if (
          !Array.isArray(rg) ||
          rg.length !== 2 ||
          !Number.isInteger(rg[0]) ||
          !Number.isInteger(rg[1]) ||
          rg[0] < 0 ||
          rg[1] < rg[0]
        ) {
          throw new FsmeshError('invalid_input', `symbols request: bad range ${JSON.stringify(rg)}`);
        }
        for (let i = rg[0]; i < rg[1]; i++) ids.push(i);
        if (ids.length > MAX_SYMBOLS_PER_REQUEST)
          throw new FsmeshError(
            'invalid_input',
            `symbols request: more than ${MAX_SYMBOLS_PER_REQUEST} symbols`,
          );
      }
      if (!(await this.engine.objects.has('artifact', r.object_id)))
        throw new FsmeshError('not_found', `object ${r.object_id} not held here`);
      await this.engine.symbols.ensure('artifact', r.object_id);
      const layout = await this.engine.symbols.layout('artifact', r.object_id);
      const p = this.engine.symbols.params;
      const header = jsonFrame({
        length: layout.length,
        symbol_size: layout.symbol_size,
        overhead_ratio: p.overhead_ratio,
        max_block_symbols: p.max_block_symbols,
        min_repair_per_block: p.min_repair_per_block,
        source_symbols: layout.source_symbols,
        repair_symbols: layout.repair_symbols,
      });
      const syms = ids.length
        ? await this.engine.symbols.getSymbols('artifact', r.object_id, ids)
        : new Map();
      return [header, ...[...syms.entries()].map(([id, d]) => symbolFrame(id, d))];
    });
    this.transport.handle(PROTO.capsules, async (req) => {
      const r = parseJsonFrame<{ from: number; to: number }>(req, 'capsules request');
      if (!Number.isSafeInteger(r.from) || !Number.isSafeInteger(r.to) || r.from < 1 || r.to < r.from)
        throw new FsmeshError('invalid_input', 'capsules request: bad range');
      const out: Uint8Array[] = [];
      for await (const rec of this.engine.log.range(
        r.from,
        Math.min(r.to, r.from + MAX_CAPSULES_PER_REQUEST - 1),
      ))
        out.push(recordBytes(encodeMarker(rec.marker), rec.capsule_bytes));
      return out;
    });
    this.transport.handle(PROTO.replicate, async (req, from) => {
      if (this.opts.role !== 'replica') throw new FsmeshError('conflict', 'not a replica');
      // Only the shard's trusted writer may extend our log (found by the simulator: an empty
      // replica would otherwise accept a rogue writer's chain starting at genesis).
      if ((!this.trusted || from !== this.trusted) && !UNSAFE.skip_marker_chain_check) {
        throw new FsmeshError('conflict', `replicate refused: ${from} is not the trusted writer`);
      }
      if (req.length <= MARKER_BYTES) throw new FsmeshError('invalid_input', 'replicate: frame too short');
      const marker = decodeMarker(req.subarray(0, MARKER_BYTES));
      const head = this.engine.log.commitSeqHigh;
      if (marker.commit_seq > head + 1) return [jsonFrame({ gap: head })];
      // appendReplicated refuses anything that does not extend our chain exactly.
      const ack = await this.engine.log.appendReplicated(marker, req.slice(MARKER_BYTES));
      this.node.metrics.commit_seq_high.set(this.engine.log.commitSeqHigh);
      return [jsonFrame({ ok: true, commit_seq: ack.commit_seq })];
    });
  }

  private currentRecord(): SignedRecord | null {
    return (
      this.latestOwnRecord ??
      (this.latest &&
      this.latest.record.artifact_manifest_id === this.engine.generations.active?.artifact_manifest_id
        ? this.latest
        : this.latest)
    );
  }
  private latestOwnRecord: SignedRecord | null = null;

  // ---------- writer ----------
  private async announce(): Promise<void> {
    const a = this.engine.generations.active;
    if (a) {
      if (
        !this.latestOwnRecord ||
        this.latestOwnRecord.record.artifact_manifest_id !== a.artifact_manifest_id
      ) {
        this.latestOwnRecord = await signRecord(this.key, {
          format: 1,
          cluster: this.opts.cluster,
          shard: this.engine.config.shard,
          generation_id: a.generation_id,
          generation_seq: a.generation_seq,
          artifact_manifest_id: a.artifact_manifest_id,
          commit_seq_high: a.commit_seq_high,
          writer: this.transport.peerId,
        });
      }
      await this.transport
        .publish(this.t.manifests, encodeSignedRecord(this.latestOwnRecord))
        .catch(() => {});
    }
    await this.transport
      .publish(
        this.t.heads,
        jsonFrame({ commit_seq_high: this.engine.log.commitSeqHigh, writer: this.transport.peerId }),
      )
      .catch(() => {});
    this.node.metrics.peers_connected.set(this.transport.peers().length);
  }

  /** §6: ship the commit to every connected replica, in order; resolve per durability mode. */
  private replicate(ack: AppendAck): Promise<void> {
    const peers = this.transport.peers();
    for (const p of peers) this.enqueueReplica(p, ack.commit_seq);
    if (this.opts.durability === 'local') return Promise.resolve();
    const need = Math.floor(this.opts.members / 2) + 1 - 1; // replicas needed besides ourselves
    if (need <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const entry = { need, have: 0, done: resolve };
      this.acks.set(ack.commit_seq, entry);
      for (const [, high] of this.replicaHigh) if (high >= ack.commit_seq) entry.have++;
      if (entry.have >= need) {
        this.acks.delete(ack.commit_seq);
        return resolve();
      }
      const t = this.clock.setTimeout(() => {
        if (!this.acks.has(ack.commit_seq)) return;
        this.acks.delete(ack.commit_seq);
        reject(
          new FsmeshError(
            'timeout',
            `quorum not reached for commit_seq ${ack.commit_seq} within ${this.opts.quorum_timeout_ms} ms (${entry.have}/${need} replicas); the commit is durable on the writer but not acknowledged`,
          ),
        );
      }, this.opts.quorum_timeout_ms);
      entry.done = () => {
        t.cancel();
        resolve();
      };
    });
  }

  private enqueueReplica(peer: string, upTo: number): void {
    const prev = this.replicaChains.get(peer) ?? Promise.resolve();
    // A refused or lost push (e.g. the replica has not pinned its trusted writer yet) is retried
    // with back-off while the peer is connected; the replica also pulls missed commits itself.
    const attempt = async (): Promise<void> => {
      for (let i = 0; i < 20 && !this.stopped; i++) {
        try {
          return await this.sendTo(peer, upTo);
        } catch {
          if (!this.transport.peers().includes(peer)) return;
          await this.clock.sleep(Math.min(2000, 50 * 2 ** i));
        }
      }
    };
    const next = prev.then(attempt).catch(() => {});
    this.replicaChains.set(peer, next);
  }

  private async sendTo(peer: string, upTo: number): Promise<void> {
    let from = (this.replicaHigh.get(peer) ?? -1) + 1;
    if (from === 0) from = upTo; // first contact: try the newest; a gap answer tells us where to start
    for (let seq = from; seq <= upTo && !this.stopped; seq++) {
      const rec = await this.engine.log.read(seq);
      const frames = await this.transport.request(
        peer,
        PROTO.replicate,
        recordBytes(encodeMarker(rec.marker), rec.capsule_bytes),
        { timeout_ms: 10_000 },
      );
      const r = parseJsonFrame<{ ok?: boolean; commit_seq?: number; gap?: number }>(
        frames[0],
        'replicate response',
      );
      if (r.gap !== undefined) {
        this.replicaHigh.set(peer, r.gap);
        seq = r.gap; // loop continues at gap + 1
        continue;
      }
      this.noteReplicaAck(peer, r.commit_seq ?? seq);
    }
  }

  private noteReplicaAck(peer: string, seq: number): void {
    const before = this.replicaHigh.get(peer) ?? 0;
    if (seq <= before) return;
    this.replicaHigh.set(peer, seq);
    for (const [s, e] of this.acks) {
      if (s > before && s <= seq) {
        e.have++;
        if (e.have >= e.need) {
          this.acks.delete(s);
          e.done();
        }
      }
    }
  }

  // ---------- replica ----------
  private onHead(data: Uint8Array): void {
    try {
      const h = parseJsonFrame<{ commit_seq_high: number; writer: string }>(data, 'head');
      if (this.trusted && h.writer !== this.trusted) return;
      this.noteWriterHead(h.commit_seq_high);
    } catch {
      // malformed heads are dropped (and rejected by the validator)
    }
  }

  private noteWriterHead(high: number): void {
    if (!Number.isSafeInteger(high)) return;
    this.writer_head = Math.max(this.writer_head, high);
    const activeHigh = this.engine.generations.active?.commit_seq_high ?? 0;
    const lag = this.writer_head - activeHigh;
    if (lag > this.opts.lag_alert_commits && !this.lagAlerted) {
      this.lagAlerted = true;
      this.node.events.emit('commit_lag_alert', {
        generation_id: this.engine.generations.active?.generation_id,
        commit_seq: activeHigh,
        lag_commits: lag,
        threshold_commits: this.opts.lag_alert_commits,
      });
    } else if (lag <= this.opts.lag_alert_commits) this.lagAlerted = false;
  }

  private async pollHeads(): Promise<void> {
    this.node.metrics.peers_connected.set(this.transport.peers().length);
    for (const p of this.transport.peers()) {
      try {
        const [f] = await this.transport.request(p, PROTO.head, jsonFrame({}), { timeout_ms: 5000 });
        const h = parseJsonFrame<{
          commit_seq_high: number;
          record: SignedRecord | null;
          peers?: string[];
          writer?: string | null;
        }>(f, 'head response');
        if (!this.trusted && h.writer === p) await this.pinWriter(p);
        const known = new Set([...this.transport.peers(), this.transport.peerId]);
        for (const a of (h.peers ?? []).slice(0, 32)) {
          const id = a.split('/p2p/')[1];
          if (id && !known.has(id)) void this.transport.dial(a).catch(() => {});
        }
        if (h.record) await this.acceptRecord(encodeSignedRecord(h.record), p);
        if (h.record && h.record.record.writer === this.trusted && p === this.trusted) {
          this.noteWriterHead(h.commit_seq_high);
          await this.pullCapsules(p, h.commit_seq_high);
        }
      } catch {
        // peer without the protocol or unreachable: try the next
      }
    }
  }

  /** Catch the local capsule log up with the writer's (fallback when pushes were missed). */
  private async pullCapsules(peer: string, upTo: number): Promise<void> {
    while (this.engine.log.commitSeqHigh < upTo && !this.stopped) {
      const from = this.engine.log.commitSeqHigh + 1;
      const frames = await this.transport.request(peer, PROTO.capsules, jsonFrame({ from, to: upTo }), {
        timeout_ms: 30_000,
      });
      if (frames.length === 0) return;
      for (const f of frames)
        await this.engine.log.appendReplicated(
          decodeMarker(f.subarray(0, MARKER_BYTES)),
          f.slice(MARKER_BYTES),
        );
    }
  }

  /** Gossip validator: structure, size, trusted writer signature. Divergence is checked on accept. */
  private async checkRecord(data: Uint8Array): Promise<boolean> {
    let s: SignedRecord;
    try {
      s = decodeSignedRecord(data);
    } catch {
      return false;
    }
    if (s.record.cluster !== this.opts.cluster || s.record.shard !== this.engine.config.shard) return false;
    if (UNSAFE.skip_record_signature_check) return true; // planted bug (simulator only)
    if (!(await verifyRecordSignature(s))) return false;
    if (this.trusted && s.record.writer !== this.trusted) {
      if (!this.warnedWriters.has(s.record.writer)) {
        this.warnedWriters.add(s.record.writer);
        this.node.events.emit('writer_key_changed', {
          generation_id: s.record.generation_id,
          commit_seq: s.record.commit_seq_high,
          trusted_writer: this.trusted,
          offered_writer: s.record.writer,
        });
      }
      return false;
    }
    return true;
  }

  private async acceptRecord(data: Uint8Array, from: string): Promise<void> {
    if (this.opts.role === 'writer') return;
    if (!(await this.checkRecord(data))) {
      this.node.events.emit('manifest_rejected', {
        reason: 'invalid record or signature, or untrusted writer',
        from,
      });
      return;
    }
    const s = decodeSignedRecord(data);
    if (!this.trusted) await this.pinWriter(s.record.writer);
    const prev = this.seen.get(s.record.generation_id);
    if (prev && prev !== s.record.artifact_manifest_id) {
      this.node.events.emit('manifest_divergence_detected', {
        generation_id: s.record.generation_id,
        commit_seq: s.record.commit_seq_high,
        known_manifest_id: prev,
        offered_manifest_id: s.record.artifact_manifest_id,
        from,
      });
      return;
    }
    this.seen.set(s.record.generation_id, s.record.artifact_manifest_id);
    this.node.noteLatestGeneration(s.record.generation_seq);
    this.noteWriterHead(s.record.commit_seq_high);
    if (!this.latest || s.record.generation_seq > this.latest.record.generation_seq) this.latest = s;
    void this.kick();
  }

  /** Trust on first use: pin the first writer learned through our seeds (stored in the data dir). */
  private async pinWriter(writer: string): Promise<void> {
    if (this.trusted) return;
    this.trusted = writer;
    await writeFileAtomic(this.engine.runtime.storage, TRUST_FILE, new TextEncoder().encode(`${writer}\n`));
  }

  private async kick(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      for (let failures = 0; !this.stopped && failures < 5; ) {
        const target = this.latest;
        const active = this.engine.generations.active;
        if (!target || target.record.artifact_manifest_id === active?.artifact_manifest_id) break;
        if (active && target.record.commit_seq_high < active.commit_seq_high) break;
        try {
          await this.syncTo(target);
          failures = 0;
        } catch {
          failures++;
          // §7.3 fallback: when the generation delta cannot be fetched, replay the commit stream.
          if (
            failures >= 2 &&
            (await this.replayTo(target).then(
              () => true,
              () => false,
            ))
          ) {
            failures = 0;
            continue;
          }
          await this.clock.sleep(200 * failures);
        }
      }
    } finally {
      this.syncing = false;
    }
  }

  /** Fetch the generation named by a trusted record (only the objects we lack), verify, activate. */
  private async syncTo(s: SignedRecord): Promise<void> {
    const { engine, events, metrics, health } = this.node;
    const rec = s.record;
    const lc = startGenerationLifecycle(this.clock, rec.generation_id, rec.artifact_manifest_id);
    const tr = new LifecycleTrace(rec.generation_id, {
      shard: rec.shard,
      role: 'replica',
      artifact_manifest_id: rec.artifact_manifest_id,
    });
    const t0 = this.clock.monotonicMs();
    const wasEmpty = !engine.generations.active;
    if (!wasEmpty) health.send({ type: 'FELL_BEHIND' });
    try {
      // 1. The manifest, from any peer; its bytes must hash to the signed id.
      const manifestBytes = await this.fetchManifestBytes(rec);
      const manifest = decodeManifest(manifestBytes); // full validation: every problem named
      if (
        manifest.generation_id !== rec.generation_id ||
        manifest.commit_seq_high !== rec.commit_seq_high ||
        manifest.shard !== rec.shard
      ) {
        lc.send({ type: 'QUARANTINE', reason: 'manifest contradicts its signed record' });
        await this.quarantine(manifestBytes, 'manifest contradicts its signed record');
        events.emit('manifest_divergence_detected', {
          generation_id: rec.generation_id,
          commit_seq: rec.commit_seq_high,
          signed_manifest_id: rec.artifact_manifest_id,
        });
        throw new FsmeshError('invalid_manifest', 'manifest contradicts its signed record');
      }
      engine.checkEmbedderGate(manifest);
      await engine.objects.put('manifest', manifestBytes);
      const release = engine.generations.lease(rec.artifact_manifest_id);
      try {
        // 2. Only the objects we lack: the generation delta (§7.3).
        const ids = [...manifest.lexical_artifacts, ...manifest.vector_artifacts].map((a) => a.object_id);
        const missing: string[] = [];
        for (const id of ids) if ((await engine.objects.check('artifact', id)) !== 'ok') missing.push(id);
        let done = 0;
        let bytes = 0;
        const peerSet = new Set<string>();
        const report = (phase: string) =>
          this.opts.onProgress?.({
            phase,
            objects_done: done,
            objects_total: missing.length,
            bytes,
            peers: peerSet.size,
          });
        report('fetch');
        await tr.child(
          'transfer',
          () =>
            Promise.all(
              missing.map(async (id) => {
                let last = 0;
                await fetchObjectFromPeers(
                  this.transport,
                  engine.symbols,
                  id,
                  this.fetchPeers(),
                  (p: FetchProgress) => {
                    bytes += p.bytes - last;
                    last = p.bytes;
                    for (const x of p.peers) peerSet.add(x);
                    report('fetch');
                  },
                  (fn) => tr.child('decode', fn, { object_id: id }),
                );
                done++;
                report('fetch');
              }),
            ),
          { objects: missing.length },
        );
        for (const id of ids) await engine.symbols.ensure('artifact', id);
        // 3. Verify, warm, flip: the lifecycle machine gates the pointer.
        const ref = await this.verifyWarmFlip(lc, rec.artifact_manifest_id, tr);
        tr.end('active', { fetched_objects: missing.length, fetched_bytes: bytes });
        events.emit('generation_activation_succeeded', {
          generation_id: ref.generation_id,
          commit_seq: ref.commit_seq_high,
          artifact_manifest_id: ref.artifact_manifest_id,
          fetched_objects: missing.length,
          fetched_bytes: bytes,
          peers: peerSet.size,
          sync_ms: this.clock.monotonicMs() - t0,
        });
        if (this.bootstrapStartMs !== null) {
          const ms = this.clock.monotonicMs() - this.bootstrapStartMs;
          metrics.snapshot_bootstrap_ms.observe(ms);
          this.bootstrapStartMs = null;
          health.send({ type: 'BOOTSTRAPPED' });
          report('done');
        }
        health.send({ type: 'CAUGHT_UP' });
        health.send({ type: 'ACTIVATION_SUCCEEDED' });
      } finally {
        release();
      }
    } catch (err) {
      if (lc.state() !== 'quarantined') lc.send({ type: 'FAIL', reason: (err as Error).message });
      tr.end(lc.state(), { reason: (err as Error).message });
      health.send({ type: 'ACTIVATION_FAILED', reason: (err as Error).message });
      events.emit('generation_activation_failed', {
        generation_id: rec.generation_id,
        commit_seq: rec.commit_seq_high,
        reason: (err as Error).message,
        serving_generation_id: engine.generations.active?.generation_id ?? null,
      });
      throw err;
    }
  }

  /**
   * The manifest a signed record names, from the local store or any peer. Bytes must hash to the
   * signed id; a peer serving anything else is reported and its bytes quarantined.
   */
  private async fetchManifestBytes(rec: SignedRecord['record']): Promise<Uint8Array> {
    const { engine, events } = this.node;
    if (await engine.objects.has('manifest', rec.artifact_manifest_id))
      return engine.objects.get('manifest', rec.artifact_manifest_id);
    for (const p of this.transport.peers()) {
      try {
        const [f] = await this.transport.request(
          p,
          PROTO.manifest,
          jsonFrame({ artifact_manifest_id: rec.artifact_manifest_id }),
          { timeout_ms: 10_000 },
        );
        if (manifestIdOf(f) === rec.artifact_manifest_id) return f;
        await this.quarantine(f, `peer ${p} served bytes that do not hash to the signed manifest id`);
        events.emit('manifest_divergence_detected', {
          generation_id: rec.generation_id,
          commit_seq: rec.commit_seq_high,
          signed_manifest_id: rec.artifact_manifest_id,
          served_manifest_id: manifestIdOf(f),
          from: p,
        });
      } catch {
        // try the next peer
      }
    }
    throw new FsmeshError('not_found', `no peer served manifest ${rec.artifact_manifest_id}`);
  }

  /**
   * Capsule replay (§7.3 fallback, Option A inside Option B): rebuild the writer's generation from
   * the replicated commits on top of our active generation. Builds are deterministic, so the result
   * must hash to the signed manifest id — anything else is refused, never activated.
   */
  async replayTo(s: SignedRecord): Promise<void> {
    const { engine, events, metrics, health } = this.node;
    const rec = s.record;
    const manifestBytes = await this.fetchManifestBytes(rec);
    const manifest = decodeManifest(manifestBytes);
    const active = engine.generations.active;
    if (
      (active?.generation_id ?? null) !== manifest.parent_generation_id ||
      (active?.commit_seq_high ?? 0) + 1 !== manifest.commit_range.from_commit_seq
    ) {
      throw new FsmeshError(
        'conflict',
        `replay needs parent ${manifest.parent_generation_id}; this node is on ${active?.generation_id ?? 'nothing'}`,
      );
    }
    if (this.trusted && engine.log.commitSeqHigh < manifest.commit_seq_high)
      await this.pullCapsules(this.trusted, manifest.commit_seq_high);
    if (engine.log.commitSeqHigh < manifest.commit_seq_high)
      throw new FsmeshError('not_found', `replay: commits up to ${manifest.commit_seq_high} are not local`);
    const lc = startGenerationLifecycle(this.clock, rec.generation_id, rec.artifact_manifest_id);
    lc.send({ type: 'BUILD' });
    const cand = await engine.buildCandidate(manifest.commit_seq_high, {
      created_by: manifest.created_by,
      generation_seq: manifest.generation_seq,
    });
    if (!cand) throw new FsmeshError('internal', 'replay built nothing');
    try {
      if (cand.manifest_id !== rec.artifact_manifest_id) {
        lc.send({ type: 'FAIL', reason: 'replayed manifest differs from the signed one' });
        throw new FsmeshError(
          'conflict',
          `replayed generation ${cand.manifest_id.slice(0, 12)} differs from the signed ${rec.artifact_manifest_id.slice(0, 12)} (different build configuration?)`,
        );
      }
      lc.send({ type: 'BUILT', manifest_id: cand.manifest_id });
      const ref = await this.verifyWarmFlip(lc, cand.manifest_id);
      events.emit('generation_activation_succeeded', {
        generation_id: ref.generation_id,
        commit_seq: ref.commit_seq_high,
        artifact_manifest_id: ref.artifact_manifest_id,
        source: 'capsule_replay',
      });
      health.send({ type: 'CAUGHT_UP' });
      health.send({ type: 'ACTIVATION_SUCCEEDED' });
    } finally {
      cand.release();
    }
  }

  /**
   * The activation gate shared by peer sync and replay: verify + warm, then the flip — allowed by
   * the lifecycle machine only from `warming` — and the activation metrics.
   */
  private async verifyWarmFlip(
    lc: GenerationLifecycle,
    manifestId: string,
    tr?: LifecycleTrace,
  ): Promise<GenerationRef> {
    const { engine, metrics } = this.node;
    const step = <T>(name: 'verify' | 'activate', fn: () => Promise<T>) => (tr ? tr.child(name, fn) : fn());
    lc.send({ type: 'VERIFY' });
    const warmed = await step('verify', () => engine.verifyAndWarm(manifestId));
    try {
      lc.send({ type: 'VERIFIED' });
      if (!lc.canFlip()) throw new FsmeshError('internal', `lifecycle refused the flip from ${lc.state()}`);
      const ta = this.clock.monotonicMs();
      const ref = await step('activate', () => engine.flip(manifestId, ta));
      lc.send({ type: 'ACTIVATE' });
      metrics.generation_activate_ms.observe(this.clock.monotonicMs() - ta);
      metrics.active_generation_seq.set(ref.generation_seq);
      metrics.active_commit_seq_high.set(ref.commit_seq_high);
      return ref;
    } finally {
      warmed.release();
    }
  }

  private async quarantine(bytes: Uint8Array, reason: string): Promise<void> {
    const st = this.engine.runtime.storage;
    await st.mkdirp('quarantine');
    await st.writeFile(`quarantine/${manifestIdOf(bytes)}`, bytes, { sync: true });
    await st.writeFile(`quarantine/${manifestIdOf(bytes)}.reason`, new TextEncoder().encode(`${reason}\n`));
  }

  private fetchPeers(): string[] {
    const all = [...this.transport.peers()].sort();
    return this.opts.fetch_peers ? all.slice(0, this.opts.fetch_peers) : all;
  }

  /** §8.1 / §8.2: an artifact the node cannot rebuild locally is fetched from peers. */
  private async repairFromPeers(objectId: string): Promise<boolean> {
    try {
      await fetchObjectFromPeers(this.transport, this.engine.symbols, objectId, this.transport.peers());
      return true;
    } catch {
      return false;
    }
  }

  status(): Record<string, unknown> {
    const peerId = this.transport.peerId;
    return {
      peer_id: peerId,
      multiaddrs: this.transport.multiaddrs().map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`)),
      peers: this.transport.peers(),
      cluster: this.opts.cluster,
      trusted_writer: this.trusted,
      writer_commit_seq_high: this.opts.role === 'writer' ? this.engine.log.commitSeqHigh : this.writer_head,
      lag_commits: Math.max(
        0,
        (this.opts.role === 'writer' ? this.engine.log.commitSeqHigh : this.writer_head) -
          (this.engine.generations.active?.commit_seq_high ?? 0),
      ),
      durability: this.opts.durability,
    };
  }
}

function recordBytes(marker: Uint8Array, capsule: Uint8Array): Uint8Array {
  const out = new Uint8Array(marker.length + capsule.length);
  out.set(marker);
  out.set(capsule, marker.length);
  return out;
}

export const _hex = toHex;
