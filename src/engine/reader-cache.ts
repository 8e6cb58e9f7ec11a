/**
 * The engine's open generations (readers), bounded by a byte budget (`reader_cache_bytes`). The
 * active generation and every pinned one always stay; other retained ones are kept, most recently
 * used first, while everything held fits the budget — a time-travel read of an evicted generation
 * opens (and verifies) it again. Before the budget a node kept a reader per retained generation
 * after it was once opened: up to `keep_last` copies of a whole index in memory.
 */
import type { ObjectId } from '../core/ids.ts';
import type { GenerationReader } from '../search/generation-reader.ts';

interface Entry {
  reader: Promise<GenerationReader>;
  /** Set once the reader opened. */
  opened?: GenerationReader;
  refs: number;
  /** Order of last use (a counter, not a clock: the simulator replays it exactly). */
  used: number;
}

/**
 * Bytes a reader holds: its lexical artifacts (a ranged segment's head alone: its postings are in
 * the engine's postings cache, under their own budget), and its vector artifacts once loaded.
 */
export function heldBytes(r: GenerationReader): number {
  return r.resident_bytes;
}

export class ReaderCache {
  private readonly entries = new Map<ObjectId, Entry>();
  private uses = 0;
  readonly budget_bytes: number;

  constructor(budgetBytes: number) {
    this.budget_bytes = budgetBytes;
  }

  /** The entry for a generation, opening it with `open` when absent; counts one more reference. */
  acquire(id: ObjectId, open: () => Promise<GenerationReader>): Entry {
    let e = this.entries.get(id);
    if (!e) {
      const entry: Entry = { reader: open(), refs: 0, used: 0 };
      entry.reader.then(
        (r) => {
          entry.opened = r;
        },
        () => {
          if (this.entries.get(id) === entry) this.entries.delete(id);
        },
      );
      this.entries.set(id, entry);
      e = entry;
    }
    e.refs++;
    e.used = ++this.uses;
    return e;
  }

  release(e: Entry): void {
    e.refs--;
  }

  /** Drop what is not kept: unreferenced readers of generations no longer retained, then LRU over the budget. */
  evict(active: ObjectId | undefined, retained: Set<ObjectId>): void {
    let held = 0;
    const idle: [ObjectId, Entry][] = [];
    for (const [id, e] of this.entries) {
      if (e.refs === 0 && id !== active) {
        if (!retained.has(id)) this.entries.delete(id);
        else if (e.opened) idle.push([id, e]);
        continue;
      }
      if (e.opened) held += heldBytes(e.opened);
    }
    idle.sort((a, b) => b[1].used - a[1].used);
    for (const [id, e] of idle) {
      const n = heldBytes(e.opened!);
      if (held + n <= this.budget_bytes) held += n;
      else this.entries.delete(id);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
