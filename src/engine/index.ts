/**
 * `fsmesh/engine`: the search engine alone — capsule log, builds, generations, reads — with no
 * actors, cluster or HTTP, and the runtime seams it is opened with (docs/architecture.md).
 */

export {
  type Clock,
  type Compute,
  inlineCompute,
  nodeFsStorage,
  type Random,
  type Runtime,
  type Storage,
  seededRandom,
  systemClock,
  systemRandom,
} from '../runtime/index.ts';
export { defaultComputeThreads, type WorkerComputeOptions, workerCompute } from './compute-pool.ts';
export * from './local-engine.ts';
