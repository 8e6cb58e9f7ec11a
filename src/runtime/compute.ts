/**
 * The compute seam: CPU-heavy work that needs no shared state — a generation build, encoding an
 * object's repair symbols — runs on worker threads in a node, so queries and HTTP on the main event
 * loop never wait for it. Threads are an effect like time and disk: the simulator (and, by default,
 * the library) uses `inlineCompute`, which runs the very same function on the caller's thread.
 *
 * A task is named (the worker finds it in its table, src/engine/compute-worker.ts) and takes a
 * structured-cloneable input; `inline` is that same task bound to the caller's own storage, run when
 * there are no threads or the input cannot travel (an embedder without a portable spec, say).
 */
export interface Compute {
  /** Worker threads available; 0 means every task runs inline. */
  readonly threads: number;
  run<O>(task: string, input: unknown, inline: () => Promise<O>): Promise<O>;
  /** Stop the threads (running tasks finish first). */
  close(): Promise<void>;
}

export const inlineCompute: Compute = {
  threads: 0,
  run: (_task, _input, inline) => inline(),
  close: async () => {},
};
