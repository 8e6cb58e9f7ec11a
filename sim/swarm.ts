/**
 * Swarm testing: many seeds, each with a configuration (nodes, steps, fault mix) drawn from the
 * seed. Seeds are independent, so they spread over worker threads (a piscina pool); each worker
 * runs whole seeds with the same code as inline, so a seed's trace hash does not depend on where
 * it ran (tested). `workers: 1` runs inline, in this thread.
 */
import { availableParallelism } from 'node:os';
import { UNSAFE } from '../src/core/buggify.ts';
import { seededRandom } from '../src/runtime/index.ts';
import {
  FAULTS,
  type Fault,
  LATE_FAULTS,
  runSimulation,
  type SimConfig,
  type SimResult,
} from './simulation.ts';

export function swarmConfig(seed: number, steps?: number, extraFaults: readonly Fault[] = []): SimConfig {
  const r = seededRandom(seed ^ 0x5eed);
  const faults = FAULTS.filter((f) => !LATE_FAULTS.includes(f)).filter(() => r.next() < 0.6) as Fault[];
  const nodes = 2 + r.int(3);
  const durability = nodes >= 3 && r.next() < 0.4 ? ('quorum' as const) : ('local' as const);
  const cfgSteps = steps ?? 60 + r.int(140);
  // Late and extra faults are drawn last, so adding them leaves the rest of each configuration as is.
  for (const f of new Set([...LATE_FAULTS, ...extraFaults]) as Set<Fault>)
    if (r.next() < 0.6 && !faults.includes(f)) faults.push(f);
  // Drawn last too: Option A replicas joined the configurations after everything above.
  const replication = r.next() < 0.3 ? ('mixed' as const) : ('artifacts' as const);
  return { seed, nodes, steps: cfgSteps, faults, durability, replication };
}

/** The command that replays one configuration alone (printed for every failing seed). */
export function replayCommand(cfg: SimConfig): string {
  return `fsmesh sim --seed ${cfg.seed} --nodes ${cfg.nodes} --steps ${cfg.steps} --faults ${cfg.faults.join(',') || "''"} --durability ${cfg.durability ?? 'local'}${cfg.replication && cfg.replication !== 'artifacts' ? ` --replication ${cfg.replication}` : ''}`;
}

export interface FailingSeed {
  seed: number;
  config: SimConfig;
  replay: string;
  violations: SimResult['violations'];
  /** Events up to the first violation: the shortest trace to read. */
  trace_excerpt: string[];
}

export interface SwarmOptions {
  /** Threads to spread seeds over; 1 runs inline. Default: the machine's cores. */
  workers?: number;
  /** Opt-in faults (OPT_IN_FAULTS) to add to the drawn mixes. */
  extra_faults?: Fault[];
}

/** One seed, as a pool task (and inline): the planted-bug switches travel with it. */
export interface SeedTask {
  seed: number;
  steps?: number;
  extra_faults?: Fault[];
  unsafe: typeof UNSAFE;
}

export async function runSeedTask(t: SeedTask): Promise<{ cfg: SimConfig; r: SimResult }> {
  Object.assign(UNSAFE, t.unsafe);
  const cfg = swarmConfig(t.seed, t.steps, t.extra_faults);
  return { cfg, r: await runSimulation(cfg) };
}

export async function runSwarm(
  firstSeed: number,
  seeds: number,
  steps?: number,
  onResult?: (r: SimResult, cfg: SimConfig) => void,
  opts: SwarmOptions = {},
): Promise<FailingSeed[]> {
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), seeds));
  const failing: FailingSeed[] = [];
  const record = ({ cfg, r }: { cfg: SimConfig; r: SimResult }) => {
    onResult?.(r, cfg);
    if (r.violations.length)
      failing.push({
        seed: cfg.seed,
        config: cfg,
        replay: replayCommand(cfg),
        violations: r.violations,
        trace_excerpt: r.trace_excerpt ?? [],
      });
  };
  const tasks = Array.from({ length: seeds }, (_, i) => ({
    seed: firstSeed + i,
    steps,
    unsafe: { ...UNSAFE },
  }));
  if (workers === 1) {
    for (const t of tasks) record(await runSeedTask(t));
  } else {
    const { Piscina } = await import('piscina');
    const pool = new Piscina({
      // The sources run as .ts; the built package (dist/) as .js.
      filename: new URL(`./swarm-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url)
        .href,
      minThreads: workers,
      maxThreads: workers,
      // A seed holds a whole cluster in memory; one at a time per thread.
      concurrentTasksPerWorker: 1,
    });
    // A worker that dies (an infrastructure failure, not a seed's verdict: a run is a pure
    // function of its seed) must not take the whole swarm down: the seed is re-run here, inline,
    // and a real failure then shows as its violations. Seen once in ten fresh-clone suite runs.
    pool.on('error', (err: Error) => process.stderr.write(`swarm: worker error: ${err.message}\n`));
    try {
      await Promise.all(
        tasks.map((t) =>
          pool
            .run(t)
            .catch((err: Error) => {
              process.stderr.write(
                `swarm: seed ${t.seed} lost its worker (${err.message}); re-running inline\n`,
              );
              return runSeedTask(t);
            })
            .then((x: { cfg: SimConfig; r: SimResult }) => record(x)),
        ),
      );
    } finally {
      await pool.destroy();
    }
  }
  return failing.sort((a, b) => a.seed - b.seed);
}

export type { SimConfig, SimResult };
export { runSimulation };
