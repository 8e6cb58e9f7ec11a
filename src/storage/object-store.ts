/**
 * Content-addressed object store: each object stored once by id under
 * `objects/<kind>/<id[0..2]>/<id>`, shared across generations. Writes go to `objects/tmp/`,
 * are fsync'd, then renamed into place, so a crash never leaves a partial object under its id.
 * Directory fsyncs are batched: call syncDirs() before publishing anything that references new objects.
 */
import { DATA_DIR, objectPath as layoutObjectPath } from '../core/data-dir-layout.ts';
import { FsmeshError, invariant } from '../core/errors.ts';
import {
  isObjectId,
  type ObjectId,
  type ObjectIdHasher,
  type ObjectKind,
  objectIdHasher,
  objectIdOf,
} from '../core/ids.ts';
import { isNotFound, parentDir, type Storage } from '../runtime/index.ts';

const ROOT = DATA_DIR.objects_dir;
const TMP = DATA_DIR.objects_tmp_dir;
/** Range size of a streamed verification. */
const VERIFY_CHUNK_BYTES = 4 << 20;

export function objectPath(kind: ObjectKind, id: ObjectId): string {
  return layoutObjectPath(kind, id);
}

export class ObjectStore {
  private readonly storage: Storage;
  private readonly dirtyDirs = new Set<string>();
  private tmpCounter = 0;
  private readonly tmpTag: string;

  private constructor(storage: Storage, tmpTag = '') {
    this.storage = storage;
    this.tmpTag = tmpTag;
  }

  /**
   * A second handle on a store another thread of the same node has opened (a compute worker): no
   * clean-up of temporary files — they may be the owner's writes in flight — and temporary names
   * tagged so the two never pick the same one.
   */
  static attach(storage: Storage, tmpTag: string): ObjectStore {
    return new ObjectStore(storage, tmpTag);
  }

  /** For read-only inspection (`fsmesh verify`): no clean-up of interrupted writes. */
  static openReadOnly(storage: Storage): ObjectStore {
    return new ObjectStore(storage);
  }

  static async open(storage: Storage): Promise<ObjectStore> {
    const s = new ObjectStore(storage);
    // Leftovers of writes interrupted by a crash: never referenced, safe to drop.
    await storage.removeTree(TMP);
    await storage.mkdirp(TMP);
    return s;
  }

  async has(kind: ObjectKind, id: ObjectId): Promise<boolean> {
    return this.storage.exists(objectPath(kind, id));
  }

  /** Store bytes; returns their id. Idempotent: an existing object is not rewritten. */
  async put(kind: ObjectKind, bytes: Uint8Array): Promise<ObjectId> {
    const id = objectIdOf(kind, bytes);
    await this.putWithId(kind, id, bytes);
    return id;
  }

  /** Store bytes already known to hash to `id` (verified here: a wrong id is refused). */
  async putVerified(kind: ObjectKind, id: ObjectId, bytes: Uint8Array): Promise<void> {
    const actual = objectIdOf(kind, bytes);
    if (actual !== id)
      throw new FsmeshError('corrupt_data', `object ${id}: bytes hash to ${actual}`, { object_id: id });
    await this.putWithId(kind, id, bytes, true);
  }

  /**
   * A fresh temporary name for an object assembled piece by piece (a fetch writing symbols as they
   * arrive); `adoptVerified` moves it into place once its bytes hash to its id.
   */
  tempPathFor(kind: ObjectKind, id: ObjectId): string {
    return `${TMP}/${id}.${kind}.${this.tmpTag}${this.tmpCounter++}.part`;
  }

  /**
   * Check a temporary file's bytes against `id` (hashed by ranges: a fetched graph is never read
   * whole) and move it into place (replacing a corrupt copy). The file must have been fsynced by
   * its writer; a mismatch removes it.
   */
  async adoptVerified(
    kind: ObjectKind,
    id: ObjectId,
    tmp: string,
    /** The file's first `up_to` bytes, already fed to `hasher` by the writer: only the rest is read. */
    hashed?: { hasher: ObjectIdHasher; up_to: number },
  ): Promise<void> {
    const { object_id: actual, whole } = await this.idOfFile(kind, tmp, hashed);
    invariant(whole, `${tmp} shrank while it was verified`);
    if (actual !== id) {
      await this.storage.remove(tmp);
      throw new FsmeshError('corrupt_data', `object ${id}: assembled bytes hash to ${actual}`, {
        object_id: id,
      });
    }
    const path = objectPath(kind, id);
    const dir = parentDir(path);
    await this.storage.mkdirp(dir);
    await this.storage.rename(tmp, path);
    this.dirtyDirs.add(dir);
    this.dirtyDirs.add(parentDir(dir));
  }

  /**
   * Move a finished file written outside the store (hnswlib's graph) into place under the id its
   * bytes hash to, read by ranges: fsynced before it appears under that id. Returns id and size.
   */
  async adoptFile(kind: ObjectKind, tmp: string): Promise<{ object_id: ObjectId; size_bytes: number }> {
    const { object_id: id, size_bytes: size, whole } = await this.idOfFile(kind, tmp);
    invariant(whole, `${tmp} shrank while it was adopted`);
    const f = await this.storage.openAppend(tmp);
    await f.sync();
    await f.close();
    const path = objectPath(kind, id);
    if (await this.storage.exists(path)) {
      await this.storage.remove(tmp);
      return { object_id: id, size_bytes: size };
    }
    const dir = parentDir(path);
    await this.storage.mkdirp(dir);
    await this.storage.rename(tmp, path);
    this.dirtyDirs.add(dir);
    this.dirtyDirs.add(parentDir(dir));
    return { object_id: id, size_bytes: size };
  }

  private async putWithId(kind: ObjectKind, id: ObjectId, bytes: Uint8Array, replace = false): Promise<void> {
    const path = objectPath(kind, id);
    if (!replace && (await this.storage.exists(path))) return;
    const tmp = `${TMP}/${id}.${kind}.${this.tmpTag}${this.tmpCounter++}`;
    await this.storage.writeFile(tmp, bytes, { sync: true });
    const dir = parentDir(path);
    await this.storage.mkdirp(dir);
    await this.storage.rename(tmp, path);
    this.dirtyDirs.add(dir);
    this.dirtyDirs.add(parentDir(dir));
  }

  /** fsync every directory that gained an object since the last call. */
  async syncDirs(): Promise<void> {
    const dirs = [...this.dirtyDirs].sort((a, b) => b.length - a.length);
    this.dirtyDirs.clear();
    for (const d of dirs) await this.storage.syncDir(d);
  }

  /** Read an object; with verify (default) a hash mismatch is a corrupt_data error naming the id. */
  async get(kind: ObjectKind, id: ObjectId, opts: { verify?: boolean } = {}): Promise<Uint8Array> {
    if (!isObjectId(id)) throw new FsmeshError('invalid_input', `not an object id: ${JSON.stringify(id)}`);
    let bytes: Uint8Array;
    try {
      bytes = await this.storage.readFile(objectPath(kind, id));
    } catch (err) {
      if (isNotFound(err)) throw missingObject(kind, id);
      throw err;
    }
    if (opts.verify !== false) {
      const actual = objectIdOf(kind, bytes);
      if (actual !== id) throw corruptObject(kind, id, actual);
    }
    return bytes;
  }

  /**
   * Read `length` bytes at `offset` of a stored object, unverified (fewer at its end): for formats
   * that check their own ranges (a version 5 lexical segment's pages). A missing object is
   * not_found naming it, as for get.
   */
  async readRange(kind: ObjectKind, id: ObjectId, offset: number, length: number): Promise<Uint8Array> {
    if (!isObjectId(id)) throw new FsmeshError('invalid_input', `not an object id: ${JSON.stringify(id)}`);
    try {
      return await this.storage.readRange(objectPath(kind, id), offset, length);
    } catch (err) {
      if (isNotFound(err)) throw missingObject(kind, id);
      throw err;
    }
  }

  /**
   * Re-hash a stored object by ranges, never holding it whole (a one-shot command's activation
   * checks tens of MB of vector artifacts it will not read). Errors as get's.
   */
  async verify(kind: ObjectKind, id: ObjectId): Promise<void> {
    if (!isObjectId(id)) throw new FsmeshError('invalid_input', `not an object id: ${JSON.stringify(id)}`);
    let actual: ObjectId;
    try {
      actual = (await this.idOfFile(kind, objectPath(kind, id))).object_id;
    } catch (err) {
      if (isNotFound(err)) throw missingObject(kind, id);
      throw err;
    }
    if (actual !== id) throw corruptObject(kind, id, actual);
  }

  /**
   * The id a file's bytes hash to as a `kind` object, read by ranges; `whole` is false when it
   * ended before the size it had when the read began.
   */
  private async idOfFile(
    kind: ObjectKind,
    path: string,
    hashed?: { hasher: ObjectIdHasher; up_to: number },
  ): Promise<{ object_id: ObjectId; size_bytes: number; whole: boolean }> {
    const size = await this.storage.size(path);
    const h = hashed?.hasher ?? objectIdHasher(kind);
    let off = hashed?.up_to ?? 0;
    invariant(off >= 0 && off <= size, `${path}: hashed prefix of ${off} bytes past its size ${size}`);
    // One buffer for every range: fresh 4 MiB buffers cost a page fault per 4 KiB (hashing 90 MB
    // took 39-59 ms that way, 14-19 ms reusing one).
    const buf = new Uint8Array(Math.min(size - off, VERIFY_CHUNK_BYTES));
    while (off < size) {
      const chunk = await this.storage.readRange(path, off, VERIFY_CHUNK_BYTES, buf);
      if (chunk.length === 0) break; // shorter than it was
      h.update(chunk);
      off += chunk.length;
    }
    return { object_id: h.digest(), size_bytes: off, whole: off === size };
  }

  async size(kind: ObjectKind, id: ObjectId): Promise<number> {
    return this.storage.size(objectPath(kind, id));
  }

  async list(kind: ObjectKind): Promise<ObjectId[]> {
    const out: ObjectId[] = [];
    for (const prefix of await this.storage.list(`${ROOT}/${kind}`)) {
      for (const name of await this.storage.list(`${ROOT}/${kind}/${prefix}`))
        if (isObjectId(name)) out.push(name);
    }
    return out.sort();
  }

  async remove(kind: ObjectKind, id: ObjectId): Promise<void> {
    await this.storage.remove(objectPath(kind, id));
  }

  /** Re-hash one object: 'ok', 'corrupt' or 'missing'. */
  async check(kind: ObjectKind, id: ObjectId): Promise<'ok' | 'corrupt' | 'missing'> {
    try {
      await this.get(kind, id);
      return 'ok';
    } catch (err) {
      if (err instanceof FsmeshError && err.code === 'not_found') return 'missing';
      if (err instanceof FsmeshError && err.code === 'corrupt_data') return 'corrupt';
      throw err;
    }
  }
}

/** The error of an object that is not in the store (read repair looks for `object_id`). */
export function missingObject(kind: ObjectKind, id: ObjectId): FsmeshError {
  return new FsmeshError('not_found', `${kind} object ${id} is missing`, { object_id: id, kind });
}

/** The error of an object whose bytes hash to another id (read repair looks for `object_id`). */
export function corruptObject(kind: ObjectKind, id: ObjectId, actual: ObjectId): FsmeshError {
  return new FsmeshError('corrupt_data', `${kind} object ${id} is corrupt (bytes hash to ${actual})`, {
    object_id: id,
    kind,
  });
}
