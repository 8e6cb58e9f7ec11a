/**
 * Public API of the simulator, for use in your own tests:
 *
 *   import { runSimulation } from 'fsmesh/sim';
 *   const r = await runSimulation({ seed: 7, nodes: 3, steps: 200, faults: ['crash', 'partition'] });
 *   assert.deepEqual(r.violations, []);
 *
 * Same seed, same trace_hash. See docs/simulation.md.
 */
export { VirtualClock } from './clock.ts';
export { SimDisk } from './disk.ts';
export { SimNetwork, SimTransport } from './network.ts';
export {
  runShardedSimulation,
  SHARDED_FAULTS,
  type ShardedFault,
  type ShardedSimConfig,
} from './sharded-simulation.ts';
export {
  FAULTS,
  type Fault,
  LATE_FAULTS,
  OPT_IN_FAULTS,
  runSimulation,
  type SimConfig,
  type SimResult,
  type Violation,
} from './simulation.ts';
export { type FailingSeed, replayCommand, runSwarm, type SwarmOptions, swarmConfig } from './swarm.ts';
