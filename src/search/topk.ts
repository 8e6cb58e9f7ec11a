/** Bounded min-heap keeping the k best (score desc, then key asc for deterministic ties). */
export class TopK<T> {
  readonly k: number;
  private readonly heap: { score: number; key: string; item: T }[] = [];
  constructor(k: number) {
    this.k = k;
  }
  private worse(a: { score: number; key: string }, b: { score: number; key: string }): boolean {
    return a.score < b.score || (a.score === b.score && a.key > b.key);
  }
  /** The score to beat once k entries are held (an equal score may still enter by key); -Infinity before. */
  threshold(): number {
    return this.heap.length < this.k ? Number.NEGATIVE_INFINITY : this.heap[0].score;
  }
  /** Would an entry with this score enter? (cheap pre-check before building the key) */
  admits(score: number): boolean {
    return this.heap.length < this.k || score >= this.heap[0].score;
  }
  push(score: number, key: string, item: T): void {
    const e = { score, key, item };
    const h = this.heap;
    if (h.length < this.k) {
      h.push(e);
      let i = h.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!this.worse(h[i], h[p])) break;
        [h[i], h[p]] = [h[p], h[i]];
        i = p;
      }
      return;
    }
    if (this.k === 0 || !this.worse(h[0], e)) return;
    h[0] = e;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.worse(h[l], h[m])) m = l;
      if (r < h.length && this.worse(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
  /** Best first. */
  sorted(): { score: number; key: string; item: T }[] {
    return [...this.heap].sort((a, b) => b.score - a.score || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
