/**
 * Worker threads for a node's compute (src/runtime/compute.ts): a piscina pool sized to the cores,
 * one task at a time per thread (a build is CPU-bound; two on one thread would only interleave).
 * A task's own error comes back with its code; a thread that dies (out of memory, a crash in a
 * native module) is not the task's verdict, so the task then runs inline once.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { type ErrorCode, FsmeshError } from '../core/errors.ts';
import type { Compute } from '../runtime/index.ts';
import type { ComputeReply, ComputeRequest } from './compute-worker.ts';

export interface WorkerComputeOptions {
  /** Threads (default: cores − 1, at least 1: the main loop keeps a core for queries). */
  threads?: number;
  /** Told when a thread died and its task ran inline instead. */
  onThreadLost?: (task: string, err: Error) => void;
}

export function defaultComputeThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

export function workerCompute(opts: WorkerComputeOptions = {}): Compute {
  const threads = opts.threads ?? defaultComputeThreads();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256)
    throw new FsmeshError('invalid_input', `compute threads must be an integer in 1..256, got ${threads}`);
  const pool = new Piscina({
    // The sources run as .ts; the built package (dist/) as .js.
    filename: new URL(`./compute-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url)
      .href,
    // No thread is kept idle: a thread idle for 30 s exits and gives its isolate back (a node's
    // RSS 392 → 304 MB after a 20k build; a fresh thread costs ~150 ms before its first task).
    minThreads: 0,
    maxThreads: threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: 30_000,
  });
  pool.on('error', () => {}); // a dead thread is handled per task below
  let closed = false;
  return {
    threads,
    async run<O>(task: string, input: unknown, inline: () => Promise<O>): Promise<O> {
      if (closed) return inline();
      let reply: ComputeReply;
      try {
        reply = await pool.run({ task, input } satisfies ComputeRequest);
      } catch (err) {
        opts.onThreadLost?.(task, err as Error);
        return inline();
      }
      if (reply.ok) return reply.value as O;
      throw new FsmeshError(reply.error.code as ErrorCode, reply.error.message, reply.error.details);
    },
    async close() {
      closed = true;
      await pool.destroy();
    },
  };
}
