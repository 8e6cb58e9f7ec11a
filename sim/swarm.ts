/** Swarm testing: many seeds, each with a configuration (nodes, steps, fault mix) drawn from the seed. */
import { seededRandom } from '../src/runtime/index.ts';
import { FAULTS, type Fault, runSimulation, type SimConfig, type SimResult } from './simulation.ts';

export function swarmConfig(seed: number, steps?: number): SimConfig {
  const r = seededRandom(seed ^ 0x5eed);
  const faults = FAULTS.filter(() => r.next() < 0.6) as Fault[];
  const nodes = 2 + r.int(3);
  const durability = nodes >= 3 && r.next() < 0.4 ? ('quorum' as const) : ('local' as const);
  return { seed, nodes, steps: steps ?? 60 + r.int(140), faults, durability };
}

export async function runSwarm(
  firstSeed: number,
  seeds: number,
  steps?: number,
  onResult?: (r: SimResult, cfg: SimConfig) => void,
) {
  const failing: { seed: number; config: SimConfig; violations: SimResult['violations'] }[] = [];
  for (let s = firstSeed; s < firstSeed + seeds; s++) {
    const cfg = swarmConfig(s, steps);
    const r = await runSimulation(cfg);
    onResult?.(r, cfg);
    if (r.violations.length) failing.push({ seed: s, config: cfg, violations: r.violations });
  }
  return failing;
}

export type { SimConfig, SimResult };
export { runSimulation };
