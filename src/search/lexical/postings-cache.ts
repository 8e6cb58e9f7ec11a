/**
 * The postings of ranged segments' terms (segment.ts `openRanged`), kept most recently used first
 * under a byte budget (`postings_cache_bytes`). One cache serves every segment of an engine; keys
 * are (segment object id, offset of the term's data), so generations sharing a segment share its
 * terms. Entries a query holds stay alive through its pin even when evicted here.
 */
import type { TermEntry } from './term-dictionary.ts';

/**
 * A term's data as a query reads it: the entry's offsets index `bytes` (the whole file, or the
 * term's own bytes in a ranged segment).
 */
export interface TermPostings {
  e: TermEntry;
  bytes: Uint8Array;
  /** Where the term's data starts in the file: names it whichever bytes hold it. */
  key: number;
}

interface Entry {
  tp: TermPostings;
  size_bytes: number;
}

export class PostingsCache {
  readonly budget_bytes: number;
  /** Bytes the cached terms hold now (≤ budget_bytes). */
  held_bytes = 0;
  hits = 0;
  misses = 0;
  /** Map order is use order (a hit moves its entry last): the first entry is the eviction victim. */
  private readonly entries = new Map<string, Entry>();

  constructor(budgetBytes: number) {
    if (!(Number.isSafeInteger(budgetBytes) && budgetBytes >= 0))
      throw new RangeError(`postings cache budget must be a whole number of bytes ≥ 0, got ${budgetBytes}`);
    this.budget_bytes = budgetBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether a term is cached, without counting a hit or a miss or moving it. */
  has(objectId: string, key: number): boolean {
    return this.entries.has(`${objectId}:${key}`);
  }

  get(objectId: string, key: number): TermPostings | undefined {
    const k = `${objectId}:${key}`;
    const e = this.entries.get(k);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(k);
    this.entries.set(k, e);
    return e.tp;
  }

  /** Keep a term's postings; a term larger than the whole budget is not kept. */
  put(objectId: string, key: number, tp: TermPostings, sizeBytes: number): void {
    if (sizeBytes > this.budget_bytes) return;
    const k = `${objectId}:${key}`;
    const old = this.entries.get(k);
    if (old) {
      this.entries.delete(k);
      this.held_bytes -= old.size_bytes;
    }
    this.entries.set(k, { tp, size_bytes: sizeBytes });
    this.held_bytes += sizeBytes;
    for (const [victim, e] of this.entries) {
      if (this.held_bytes <= this.budget_bytes) break;
      this.entries.delete(victim);
      this.held_bytes -= e.size_bytes;
    }
  }

  /** Drop a segment's terms (its file was repaired or removed). */
  dropObject(objectId: string): void {
    const prefix = `${objectId}:`;
    for (const [k, e] of this.entries)
      if (k.startsWith(prefix)) {
        this.entries.delete(k);
        this.held_bytes -= e.size_bytes;
      }
  }
}
