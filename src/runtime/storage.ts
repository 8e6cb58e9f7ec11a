/**
 * Storage: every disk effect goes through this interface, rooted at a node's data directory.
 * Paths are relative, '/'-separated. The simulator provides a disk that can lose unsynced
 * writes, tear writes and flip bits; production uses nodeFsStorage().
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

export interface AppendHandle {
  /** Current file size in bytes (including unsynced appends). */
  readonly size: number;
  append(data: Uint8Array): Promise<void>;
  /** fsync the file's data. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** A file written at positions (a fetched object assembled as its pieces arrive). */
export interface WriteHandle {
  writeAt(offset: number, data: Uint8Array): Promise<void>;
  /** fsync the file's data. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface Storage {
  readonly root: string;
  readFile(p: string): Promise<Uint8Array>;
  /**
   * Up to `length` bytes from `offset` (fewer at the end of the file; never more than it holds).
   * With `into` (at least `length` bytes) they are read into it and a view of it is returned: a
   * loop over a large file reuses one buffer instead of faulting in fresh pages for every range.
   */
  readRange(p: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Create or replace a file; `sync` fsyncs its data before returning. */
  writeFile(p: string, data: Uint8Array, opts?: { sync?: boolean }): Promise<void>;
  openAppend(p: string): Promise<AppendHandle>;
  /** Create (or truncate) a file for writing at positions. */
  openWrite(p: string): Promise<WriteHandle>;
  rename(from: string, to: string): Promise<void>;
  /** fsync a directory so renames and creations inside it are durable. */
  syncDir(dir: string): Promise<void>;
  /** Names in a directory, sorted; [] if it does not exist. */
  list(dir: string): Promise<string[]>;
  exists(p: string): Promise<boolean>;
  size(p: string): Promise<number>;
  truncate(p: string, length: number): Promise<void>;
  remove(p: string): Promise<void>;
  removeTree(dir: string): Promise<void>;
  mkdirp(dir: string): Promise<void>;
  /**
   * Absolute path of a file on a real file system, for native libraries that only take file
   * names (hnswlib). Storage implementations without one (the simulator) return null, and callers
   * must then do without (e.g. exact vector scan instead of HNSW).
   */
  nativePath(p: string): string | null;
}

export class StorageError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'StorageError';
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'ENOENT';
}

/** Parent directory of a relative storage path ('' for the root). */
export function parentDir(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** Write via temp file + fsync + rename + fsync(dir): after a crash either old or new content is seen. */
export async function writeFileAtomic(
  storage: Storage,
  p: string,
  data: Uint8Array,
  /** Distinguishes concurrent writers of one path (a compute worker beside the main thread). */
  tmpTag = '',
): Promise<void> {
  const tmp = `${p}.tmp${tmpTag}`;
  await storage.writeFile(tmp, data, { sync: true });
  await storage.rename(tmp, p);
  await storage.syncDir(parentDir(p));
}

/** The Storage seam over node:fs. Table-like: one small method per operation. */
export function nodeFsStorage(root: string): Storage {
  const abs = (p: string): string => {
    if (p.includes('\0')) throw new StorageError('EINVAL', `invalid path ${JSON.stringify(p)}`);
    const full = path.resolve(root, p);
    // A path must stay inside the data directory whatever a caller (or a peer) passes in.
    if (full !== path.resolve(root) && !full.startsWith(path.resolve(root) + path.sep)) {
      throw new StorageError('EINVAL', `path escapes the data directory: ${p}`);
    }
    return full;
  };
  return {
    root,
    async readFile(p) {
      const b = await fsp.readFile(abs(p));
      // A plain Uint8Array, never a Buffer (whose slice() is a view, not a copy). A buffer that
      // owns its memory is wrapped, not copied: copying a 25 MB shard was a tenth of a cold hybrid
      // search (its copy and the garbage). A small one may share Node's pool: copied.
      return b.byteOffset === 0 && b.buffer.byteLength === b.byteLength
        ? new Uint8Array(b.buffer, 0, b.byteLength)
        : new Uint8Array(b);
    },
    async readRange(p, offset, length, into) {
      const fh = await fsp.open(abs(p), 'r');
      try {
        // Never allocate more than the file holds: a damaged length field cannot ask for gigabytes.
        // Reading into the caller's buffer allocates nothing, and the read stops at the end of the
        // file by itself: no stat then (one thread-pool round trip less per served symbol run).
        if (!(into && into.length >= length)) {
          const size = (await fh.stat()).size;
          length = Math.max(0, Math.min(length, size - offset));
        }
        const buf = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return got === length ? buf : buf.subarray(0, got);
      } finally {
        await fh.close();
      }
    },
    async writeFile(p, data, opts) {
      const fh = await fsp.open(abs(p), 'w');
      try {
        await fh.writeFile(data);
        if (opts?.sync) await fh.sync();
      } finally {
        await fh.close();
      }
    },
    async openWrite(p) {
      const fh = await fsp.open(abs(p), 'w');
      return {
        async writeAt(offset, data) {
          let done = 0;
          while (done < data.length) {
            const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done);
            done += bytesWritten;
          }
        },
        sync: () => fh.sync(),
        close: () => fh.close(),
      };
    },
    async openAppend(p) {
      const fd = fs.openSync(abs(p), 'a');
      let size = fs.fstatSync(fd).size;
      let closed = false;
      return {
        get size() {
          return size;
        },
        append(data) {
          return new Promise<void>((resolve, reject) => {
            if (closed) return reject(new StorageError('EBADF', `append to closed file ${p}`));
            writeAll(fd, data, 0, (err) => {
              if (err) return reject(err);
              size += data.length;
              resolve();
            });
          });
        },
        sync() {
          return new Promise<void>((resolve, reject) =>
            fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())),
          );
        },
        async close() {
          if (closed) return;
          closed = true;
          await new Promise<void>((resolve, reject) =>
            fs.close(fd, (err) => (err ? reject(err) : resolve())),
          );
        },
      };
    },
    async rename(from, to) {
      await fsp.rename(abs(from), abs(to));
    },
    async syncDir(dir) {
      const fh = await fsp.open(abs(dir || '.'), 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    },
    async list(dir) {
      try {
        return (await fsp.readdir(abs(dir || '.'))).sort();
      } catch (err) {
        if (isNotFound(err)) return [];
        throw err;
      }
    },
    async exists(p) {
      try {
        // access, not stat: no Stats object (asked per served request).
        await fsp.access(abs(p));
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    async size(p) {
      return (await fsp.stat(abs(p))).size;
    },
    async truncate(p, length) {
      const fh = await fsp.open(abs(p), 'r+');
      try {
        await fh.truncate(length);
        await fh.sync();
      } finally {
        await fh.close();
      }
    },
    async remove(p) {
      await fsp.rm(abs(p), { force: true });
    },
    async removeTree(dir) {
      await fsp.rm(abs(dir), { recursive: true, force: true });
    },
    async mkdirp(dir) {
      await fsp.mkdir(abs(dir || '.'), { recursive: true });
    },
    nativePath(p) {
      return abs(p);
    },
  };
}

function writeAll(fd: number, data: Uint8Array, off: number, cb: (err: Error | null) => void): void {
  fs.write(fd, data, off, data.length - off, null, (err, written) => {
    if (err) return cb(err);
    if (off + written < data.length) return writeAll(fd, data, off + written, cb);
    cb(null);
  });
}

/**
 * A view of `s` that refuses every change (`fsmesh verify` without `--fix`): inspection code run
 * over it provably leaves the data directory as it found it.
 */
export function readOnlyStorage(s: Storage): Storage {
  const refuse = (op: string) => async (): Promise<never> => {
    throw new StorageError('EROFS', `${op} refused: ${s.root} is opened read-only`);
  };
  return {
    root: s.root,
    readFile: (p) => s.readFile(p),
    readRange: (p, o, l, into) => s.readRange(p, o, l, into),
    list: (d) => s.list(d),
    exists: (p) => s.exists(p),
    size: (p) => s.size(p),
    nativePath: (p) => s.nativePath(p),
    writeFile: refuse('writeFile'),
    openAppend: refuse('openAppend'),
    openWrite: refuse('openWrite'),
    rename: refuse('rename'),
    syncDir: refuse('syncDir'),
    truncate: refuse('truncate'),
    remove: refuse('remove'),
    removeTree: refuse('removeTree'),
    mkdirp: refuse('mkdirp'),
  };
}

/**
 * A directory of a storage as a storage of its own (each shard of a multi-shard node keeps a
 * whole data dir under `shards/<k>/`). Works over any implementation, the simulator's included.
 */
export function subStorage(base: Storage, dir: string): Storage {
  const at = (p: string) => {
    // Stay inside the directory: one shard never reaches another's files.
    if (p.split(/[\\/]/).includes('..') || p.startsWith('/'))
      throw new StorageError('EINVAL', `path escapes ${dir}: ${p}`);
    return p === '' || p === '.' ? dir : `${dir}/${p}`;
  };
  return {
    root: `${base.root}/${dir}`,
    readFile: (p) => base.readFile(at(p)),
    readRange: (p, o, l, into) => base.readRange(at(p), o, l, into),
    writeFile: (p, d, o) => base.writeFile(at(p), d, o),
    openAppend: (p) => base.openAppend(at(p)),
    openWrite: (p) => base.openWrite(at(p)),
    rename: (a, b) => base.rename(at(a), at(b)),
    syncDir: (d) => base.syncDir(at(d)),
    list: (d) => base.list(at(d)),
    exists: (p) => base.exists(at(p)),
    size: (p) => base.size(at(p)),
    truncate: (p, l) => base.truncate(at(p), l),
    remove: (p) => base.remove(at(p)),
    removeTree: (d) => base.removeTree(at(d)),
    mkdirp: (d) => base.mkdirp(at(d)),
    nativePath: (p) => base.nativePath(at(p)),
  };
}
