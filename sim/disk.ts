/**
 * Simulated disk for one node: files in memory with crash semantics. Data written but not
 * fsync'd, and names created or renamed but not made durable by a directory fsync, are lost on
 * crash (optionally the last unsynced append is torn, keeping a prefix). Faults: bit flips, ENOSPC.
 * A crash detaches the old mount: operations still in flight from the dead incarnation fail.
 */

import type { Random } from '../src/runtime/index.ts';
import { type AppendHandle, type Storage, StorageError, type WriteHandle } from '../src/runtime/index.ts';

interface FileState {
  data: Uint8Array;
  synced: Uint8Array | null;
}

function parent(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export class SimDisk {
  private files = new Map<string, FileState>(); // live namespace
  private durable = new Map<string, FileState>(); // namespace as of the last dir fsyncs
  private incarnation = 0;
  enospc = false;
  /** Artifact files holding a flipped bit not yet rewritten (see flipBitInArtifact). */
  private readonly flipped = new Set<string>();
  /** Extra virtual latency per operation (slow disk fault); 0 = immediate. */
  slow_ms = 0;
  /** Supplied by the simulator: waits on virtual time. */
  sleep: (ms: number) => Promise<void> = async () => {};
  readonly random: Random;
  bytes_written = 0;

  constructor(random: Random) {
    this.random = random;
  }

  /** A Storage view for the current incarnation of the node. */
  mount(root = '/sim'): Storage {
    const inc = this.incarnation;
    const check = () => {
      if (inc !== this.incarnation) throw new StorageError('EIO', 'disk detached (node crashed)');
    };
    // A slow disk delays every operation on virtual time (then re-checks the node is still alive).
    const slow = async () => {
      if (this.slow_ms > 0) await this.sleep(this.slow_ms);
      check();
    };
    const get = (p: string): FileState => {
      const f = this.files.get(p);
      if (!f) throw Object.assign(new StorageError('ENOENT', `no such file: ${p}`), { code: 'ENOENT' });
      return f;
    };
    const write = (p: string, data: Uint8Array, sync: boolean) => {
      if (this.enospc) throw new StorageError('ENOSPC', 'no space left on device (simulated)');
      this.flipped.delete(p);
      const f: FileState = { data: data.slice(), synced: null };
      if (sync) f.synced = f.data;
      this.files.set(p, f);
      this.bytes_written += data.length;
    };
    const self = this;
    /** Write `data` at `offset` of an open file (unsynced until its handle's sync). */
    const putAt = (p: string, offset: number, data: Uint8Array) => {
      check();
      if (self.enospc) throw new StorageError('ENOSPC', 'no space left on device (simulated)');
      const f = get(p);
      const next = new Uint8Array(Math.max(f.data.length, offset + data.length));
      next.set(f.data);
      next.set(data, offset);
      f.data = next;
      self.bytes_written += data.length;
    };
    /** fsync and close of a file handle: synced data survives a crash. */
    const fileSync = (p: string) => ({
      async sync() {
        check();
        await slow();
        const f = get(p);
        f.synced = f.data;
      },
      async close() {},
    });
    const storage: Storage = {
      root,
      async readFile(p) {
        check();
        await slow();
        return get(p).data.slice();
      },
      async readRange(p, offset, length, into) {
        check();
        const bytes = get(p).data.subarray(offset, offset + length);
        if (!into || into.length < bytes.length) return bytes.slice();
        into.set(bytes);
        return into.subarray(0, bytes.length);
      },
      async writeFile(p, data, opts) {
        check();
        await slow();
        write(p, data, !!opts?.sync);
      },
      async openWrite(p) {
        check();
        write(p, new Uint8Array(0), false);
        const handle: WriteHandle = {
          writeAt: async (offset, data) => putAt(p, offset, data),
          ...fileSync(p),
        };
        return handle;
      },
      async openAppend(p) {
        check();
        if (!self.files.has(p)) write(p, new Uint8Array(0), false);
        const handle: AppendHandle = {
          get size() {
            return self.files.get(p)?.data.length ?? 0;
          },
          append: async (data) => {
            check();
            putAt(p, get(p).data.length, data);
          },
          ...fileSync(p),
        };
        return handle;
      },
      async rename(from, to) {
        check();
        const f = get(from);
        self.files.delete(from);
        self.files.set(to, f);
        self.flipped.delete(to);
      },
      async syncDir(dir) {
        check();
        // Make the directory's current entries durable (names only; contents per file fsync).
        for (const k of [...self.durable.keys()])
          if (parent(k) === dir && !self.files.has(k)) self.durable.delete(k);
        for (const [k, f] of self.files) if (parent(k) === dir) self.durable.set(k, f);
      },
      async list(dir) {
        check();
        const prefix = dir ? `${dir}/` : '';
        const names = new Set<string>();
        for (const k of self.files.keys())
          if (k.startsWith(prefix)) names.add(k.slice(prefix.length).split('/')[0]);
        return [...names].sort();
      },
      async exists(p) {
        check();
        if (self.files.has(p)) return true;
        const prefix = `${p}/`;
        for (const k of self.files.keys()) if (k.startsWith(prefix)) return true;
        return false;
      },
      async size(p) {
        check();
        return get(p).data.length;
      },
      async truncate(p, length) {
        check();
        const f = get(p);
        f.data = f.data.slice(0, length);
        f.synced = f.data;
      },
      async remove(p) {
        check();
        self.files.delete(p);
        self.flipped.delete(p);
      },
      async removeTree(dir) {
        check();
        for (const k of [...self.files.keys()])
          if (k === dir || k.startsWith(`${dir}/`)) self.files.delete(k);
      },
      async mkdirp() {
        check();
      },
      nativePath() {
        return null;
      },
    };
    return storage;
  }

  /**
   * Crash: the running incarnation dies. Names revert to the last directory fsyncs (new files whose
   * directory was never synced vanish — except files that existed durably before); contents
   * revert to the last fsync. With `tear`, an unsynced tail may survive partially.
   */
  crash(tear: boolean): void {
    this.incarnation++;
    const next = new Map<string, FileState>();
    for (const [k, f] of this.durable) {
      const live = this.files.get(k) === f ? f : f;
      let data = live.synced ?? new Uint8Array(0);
      if (
        tear &&
        live.data.length > data.length &&
        live.data.subarray(0, data.length).every((b, i) => b === data[i])
      ) {
        const extra = this.random.int(live.data.length - data.length + 1);
        data = live.data.slice(0, data.length + extra);
      }
      next.set(k, { data, synced: data });
    }
    // Files fsync'd under a name the directory never made durable are gone, as on a real fs.
    this.files = next;
    this.durable = new Map(next);
  }

  /** Lose everything (data-directory loss). */
  wipe(): void {
    this.incarnation++;
    this.files = new Map();
    this.durable = new Map();
  }

  /** Flip one bit in a random stored artifact object; returns its path. */
  /**
   * Flip one bit in a stored artifact. The fault budget: at most one outstanding flip per object
   * file (until the file is rewritten, e.g. by a repair) — unbounded flips in the only copy of an
   * object destroy it beyond what any code can recover (found with swarm seed 538: 37 flips in one
   * object of a 2-node cluster).
   */
  flipBitInArtifact(): string | null {
    const paths = [...this.files.keys()]
      .filter((k) => k.startsWith('objects/artifact/') && !this.flipped.has(k))
      .sort();
    if (paths.length === 0) return null;
    const p = paths[this.random.int(paths.length)];
    const f = this.files.get(p)!;
    if (f.data.length === 0) return null;
    const data = f.data.slice();
    data[this.random.int(data.length)] ^= 1 << this.random.int(8);
    f.data = data;
    f.synced = data;
    this.flipped.add(p);
    return p;
  }
}
