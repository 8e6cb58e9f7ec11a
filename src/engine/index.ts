/**
 * `fsmesh/engine`: the search engine alone — capsule log, builds, generations, reads — with no
 * actors, cluster or HTTP, and the runtime seams it is opened with (docs/architecture.md).
 */

export {
  type Clock,
  nodeFsStorage,
  type Random,
  type Runtime,
  type Storage,
  seededRandom,
  systemClock,
  systemRandom,
} from '../runtime/index.ts';
export * from './local-engine.ts';
