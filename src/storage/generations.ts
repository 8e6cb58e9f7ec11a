/**
 * Generation store (§6 activation, §8.3, §14): which generation is live, which are retained.
 *
 * The pointer file `CURRENT` is the single source of truth. It is replaced atomically
 * (temp file, fsync, rename, fsync dir), so after a crash exactly the old or the new
 * generation is live, never a mix. A generation whose artifacts and manifest exist but which
 * CURRENT does not name is invisible to readers and its objects are garbage.
 *
 * CURRENT bytes: "fsmesh-current v1\n" + canonical JSON of PointerRecord + "\n" + "crc32:<8 hex>\n"
 * (the crc covers the JSON line).
 */
import { crc32 } from 'node:zlib';
import { decodeUtf8, utf8 } from '../core/bytes.ts';
import { canonicalStringify } from '../core/canonical-json.ts';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import { decodeManifest, encodeManifest, type GenerationManifest, manifestIdOf } from '../core/manifest.ts';
import { type Clock, isNotFound, type Storage, writeFileAtomic } from '../runtime/index.ts';
import type { ObjectStore } from './object-store.ts';

export const POINTER_FILE = DATA_DIR.pointer_file;
export const POINTER_VERSION = 1;
const POINTER_MAGIC = `fsmesh-current v${POINTER_VERSION}`;

export interface GenerationRef {
  generation_id: string;
  generation_seq: number;
  artifact_manifest_id: ObjectId;
  commit_seq_high: number;
  activated_at_ms: number;
  /** Set when an operator or a failed activation rolled away from it: never re-activated automatically. */
  rolled_back?: boolean;
}

export interface PointerRecord {
  format: typeof POINTER_VERSION;
  active: GenerationRef | null;
  /** Rollback target (§14): the generation that was active before `active`. */
  previous: GenerationRef | null;
  /** Every generation still readable (time travel), newest first; includes active and previous. */
  retained: GenerationRef[];
}

export interface RetentionPolicy {
  keep_last: number;
  /** Also keep generations activated within this many ms (0 = off). */
  keep_newer_than_ms: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { keep_last: 8, keep_newer_than_ms: 0 };

export function encodePointer(rec: PointerRecord): Uint8Array {
  const json = canonicalStringify(rec);
  const crc = crc32(utf8.encode(json)).toString(16).padStart(8, '0');
  return utf8.encode(`${POINTER_MAGIC}\n${json}\ncrc32:${crc}\n`);
}

export function decodePointer(bytes: Uint8Array): PointerRecord {
  const text = decodeUtf8(bytes, POINTER_FILE);
  const lines = text.split('\n');
  const mv = /^fsmesh-current v(\d+)$/.exec(lines[0] ?? '');
  if (!mv) throw new FsmeshError('corrupt_data', `${POINTER_FILE}: bad magic line`);
  if (Number(mv[1]) > POINTER_VERSION) {
    throw new FsmeshError(
      'unsupported_version',
      `${POINTER_FILE} was written by a newer fsmesh (pointer v${mv[1]}); upgrade fsmesh`,
    );
  }
  const json = lines[1] ?? '';
  const crc = crc32(utf8.encode(json)).toString(16).padStart(8, '0');
  if (lines[2] !== `crc32:${crc}`)
    throw new FsmeshError('corrupt_data', `${POINTER_FILE}: checksum mismatch`);
  const rec = JSON.parse(json) as PointerRecord;
  invariant(rec.format === POINTER_VERSION, 'pointer format');
  return rec;
}

export class GenerationStore {
  private readonly storage: Storage;
  private readonly objects: ObjectStore;
  private readonly clock: Clock;
  private readonly retention: RetentionPolicy;
  private pointer: PointerRecord = { format: POINTER_VERSION, active: null, previous: null, retained: [] };
  private readonly manifestCache = new Map<ObjectId, GenerationManifest>();
  /** Manifests pinned by in-flight readers or builds: their objects are never collected. */
  private readonly leases = new Map<ObjectId, number>();
  private lock: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(ref: GenerationRef | null) => void>();

  private constructor(storage: Storage, objects: ObjectStore, clock: Clock, retention: RetentionPolicy) {
    this.storage = storage;
    this.objects = objects;
    this.clock = clock;
    this.retention = retention;
  }

  static async open(opts: {
    storage: Storage;
    objects: ObjectStore;
    clock: Clock;
    retention?: Partial<RetentionPolicy>;
  }): Promise<GenerationStore> {
    const g = new GenerationStore(opts.storage, opts.objects, opts.clock, {
      ...DEFAULT_RETENTION,
      ...opts.retention,
    });
    invariant(g.retention.keep_last >= 2, 'retention.keep_last must be >= 2 (active + rollback target)');
    await opts.storage.remove(`${POINTER_FILE}.tmp`);
    try {
      g.pointer = decodePointer(await opts.storage.readFile(POINTER_FILE));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return g;
  }

  get active(): GenerationRef | null {
    return this.pointer.active;
  }
  get previous(): GenerationRef | null {
    return this.pointer.previous;
  }
  get retained(): GenerationRef[] {
    return this.pointer.retained;
  }

  onActivate(fn: (ref: GenerationRef | null) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => {});
    return run;
  }

  async loadManifest(id: ObjectId): Promise<GenerationManifest> {
    const cached = this.manifestCache.get(id);
    if (cached) return cached;
    const m = decodeManifest(await this.objects.get('manifest', id));
    this.manifestCache.set(id, m);
    return m;
  }

  /** Store a manifest object (not yet visible). */
  async putManifest(m: GenerationManifest): Promise<ObjectId> {
    const bytes = encodeManifest(m);
    const id = await this.objects.put('manifest', bytes);
    invariant(id === manifestIdOf(bytes), 'manifest id is the manifest object id');
    this.manifestCache.set(id, m);
    return id;
  }

  lease(id: ObjectId): () => void {
    this.leases.set(id, (this.leases.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.leases.get(id) ?? 1) - 1;
      if (n <= 0) this.leases.delete(id);
      else this.leases.set(id, n);
    };
  }

  /**
   * Flip the live pointer to `manifestId` (one atomic rename). The caller has verified every
   * artifact; here we only check the manifest itself and order.
   */
  activate(manifestId: ObjectId, opts: { allowOlder?: boolean } = {}): Promise<GenerationRef> {
    return this.serialize(async () => {
      const m = await this.loadManifest(manifestId);
      const cur = this.pointer.active;
      if (cur && !opts.allowOlder && m.commit_seq_high < cur.commit_seq_high) {
        throw new FsmeshError(
          'conflict',
          `refusing to activate ${m.generation_id} (commit_seq_high ${m.commit_seq_high}) over ${cur.generation_id} (${cur.commit_seq_high})`,
        );
      }
      await this.objects.syncDirs();
      const ref: GenerationRef = {
        generation_id: m.generation_id,
        generation_seq: m.generation_seq,
        artifact_manifest_id: manifestId,
        commit_seq_high: m.commit_seq_high,
        activated_at_ms: this.clock.nowMs(),
      };
      const retained = [ref, ...this.pointer.retained.filter((r) => r.artifact_manifest_id !== manifestId)];
      const next: PointerRecord = {
        format: POINTER_VERSION,
        active: ref,
        previous: cur && cur.artifact_manifest_id !== manifestId ? cur : this.pointer.previous,
        retained: this.applyRetention(retained, ref, cur),
      };
      // Retention never drops the live generation or its rollback target (§14).
      invariant(
        next.retained.some((r) => r.artifact_manifest_id === manifestId),
        'the active generation is retained',
      );
      invariant(
        !cur ||
          cur.artifact_manifest_id === manifestId ||
          next.retained.some((r) => r.artifact_manifest_id === cur.artifact_manifest_id),
        'the generation it replaces is retained as the rollback target',
      );
      await this.writePointer(next);
      return ref;
    });
  }

  /** The generation a rollback would make active (throws when there is none). */
  rollbackTarget(): GenerationRef {
    const cur = this.pointer.active;
    if (!cur) throw new FsmeshError('not_found', 'no active generation to roll back from');
    const target =
      this.pointer.previous ??
      this.pointer.retained.find((r) => r.generation_seq < cur.generation_seq && !r.rolled_back) ??
      null;
    if (!target)
      throw new FsmeshError(
        'not_found',
        `no retained generation older than ${cur.generation_id} to roll back to`,
      );
    return target;
  }

  /** §14: atomically make the previous retained generation active again. */
  rollback(): Promise<{ from: GenerationRef; to: GenerationRef }> {
    return this.serialize(async () => {
      const target = this.rollbackTarget();
      const cur = this.pointer.active!;
      invariant(
        target.artifact_manifest_id !== cur.artifact_manifest_id,
        'a rollback changes the generation',
      );
      // The target must still be complete before it becomes live again.
      await this.loadManifest(target.artifact_manifest_id);
      const from: GenerationRef = { ...cur, rolled_back: true };
      const retained = this.pointer.retained.map((r) =>
        r.artifact_manifest_id === cur.artifact_manifest_id ? from : r,
      );
      const older = retained.find((r) => r.generation_seq < target.generation_seq && !r.rolled_back) ?? null;
      await this.writePointer({ format: POINTER_VERSION, active: target, previous: older, retained });
      return { from, to: target };
    });
  }

  private applyRetention(
    newestFirst: GenerationRef[],
    active: GenerationRef,
    previous: GenerationRef | null,
  ): GenerationRef[] {
    const now = this.clock.nowMs();
    const sorted = [...newestFirst].sort((a, b) => b.generation_seq - a.generation_seq);
    return sorted.filter(
      (r, i) =>
        r.artifact_manifest_id === active.artifact_manifest_id ||
        r.artifact_manifest_id === previous?.artifact_manifest_id ||
        i < this.retention.keep_last ||
        (this.retention.keep_newer_than_ms > 0 &&
          now - r.activated_at_ms <= this.retention.keep_newer_than_ms),
    );
  }

  private async writePointer(next: PointerRecord): Promise<void> {
    await writeFileAtomic(this.storage, POINTER_FILE, encodePointer(next));
    this.pointer = next;
    for (const l of this.listeners) l(next.active);
  }

  /** Newest retained generation with commit_seq_high <= asOf (time travel, §5.3). */
  findAsOf(asOf: number): GenerationRef | null {
    let best: GenerationRef | null = null;
    for (const r of this.pointer.retained) {
      if (r.rolled_back || r.commit_seq_high > asOf) continue;
      if (
        !best ||
        r.commit_seq_high > best.commit_seq_high ||
        (r.commit_seq_high === best.commit_seq_high && r.generation_seq > best.generation_seq)
      )
        best = r;
    }
    return best;
  }

  /**
   * Every object id referenced by a retained or leased generation (plus their manifests). A leased
   * generation may be a candidate still being fetched (a replica sync): GC must keep what it has,
   * but its objects are not all here yet — `retainedOnly` (the scrub) leaves such candidates out.
   */
  async referencedObjects(
    opts: { retainedOnly?: boolean } = {},
  ): Promise<{ manifests: Set<ObjectId>; artifacts: Set<ObjectId> }> {
    const manifests = new Set<ObjectId>([
      ...this.pointer.retained.map((r) => r.artifact_manifest_id),
      ...(opts.retainedOnly ? [] : this.leases.keys()),
    ]);
    const artifacts = new Set<ObjectId>();
    for (const id of manifests) {
      const m = await this.loadManifest(id);
      for (const a of m.lexical_artifacts) artifacts.add(a.object_id);
      for (const a of m.vector_artifacts) artifacts.add(a.object_id);
    }
    return { manifests, artifacts };
  }

  /** Remove objects no retained or leased generation references. Returns how many were removed. */
  collectGarbage(
    protect: Set<ObjectId> = new Set(),
    onRemoved?: (kind: 'manifest' | 'artifact', id: ObjectId) => Promise<void>,
  ): Promise<number> {
    return this.serialize(async () => {
      const { manifests, artifacts } = await this.referencedObjects();
      let removed = 0;
      for (const id of await this.objects.list('manifest')) {
        if (!manifests.has(id) && !protect.has(id)) {
          await this.objects.remove('manifest', id);
          this.manifestCache.delete(id);
          removed++;
        }
      }
      for (const id of await this.objects.list('artifact')) {
        if (!artifacts.has(id) && !protect.has(id)) {
          await this.objects.remove('artifact', id);
          await onRemoved?.('artifact', id);
          removed++;
        }
      }
      return removed;
    });
  }
}
