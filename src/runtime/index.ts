/** The effect seams of a node: injected at creation so sim/ can run production code. */
export type { Clock, TimerHandle } from './clock.ts';
export { systemClock } from './clock.ts';
export type { Compute } from './compute.ts';
export { inlineCompute } from './compute.ts';
export type { Random } from './random.ts';
export { secureRandomBytes, seededRandom, systemRandom } from './random.ts';
export type { AppendHandle, Storage, WriteHandle } from './storage.ts';
export {
  isNotFound,
  nodeFsStorage,
  parentDir,
  readOnlyStorage,
  StorageError,
  subStorage,
  writeFileAtomic,
} from './storage.ts';
export type { GossipMessage, Transport, ValidationResult } from './transport.ts';

import type { Clock } from './clock.ts';
import type { Compute } from './compute.ts';
import type { Random } from './random.ts';
import type { Storage } from './storage.ts';

export interface Runtime {
  clock: Clock;
  random: Random;
  storage: Storage;
  /** Worker threads for builds and repair encoding; absent = inline (the simulator's choice). */
  compute?: Compute;
}
