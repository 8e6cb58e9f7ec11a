/**
 * `fsmesh sim`: one deterministic cluster simulation (`--seed`), or a swarm of seeds with varied
 * configurations spread over worker threads (`--swarm --seeds M [--workers W]`). A failing seed is
 * printed with the command that replays it alone and its trace up to the first violation.
 */
import { SingleBar } from 'cli-progress';
import { intFlag, parse, UsageError } from './args.ts';

const USAGE =
  'fsmesh sim --seed N [--nodes K] [--steps S] [--faults LIST] [--durability local|quorum] [--replication artifacts|commits|mixed] [--json] | fsmesh sim --swarm --seeds M [--first-seed N] [--steps S] [--workers W] [--extra-faults FAULT,...] [--json] | fsmesh sim --shards S (--seed N | --swarm --seeds M) [--nodes K] [--steps S] [--faults crash,partition,drop] [--narrow] [--json]';

const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

export async function cmdSim(argv: string[]): Promise<number> {
  const a = parse(
    argv,
    {
      seed: { type: 'string' },
      nodes: { type: 'string' },
      steps: { type: 'string' },
      faults: { type: 'string' },
      json: { type: 'boolean' },
      swarm: { type: 'boolean' },
      seeds: { type: 'string' },
      'first-seed': { type: 'string' },
      durability: { type: 'string' },
      replication: { type: 'string' },
      workers: { type: 'string' },
      'extra-faults': { type: 'string' },
      shards: { type: 'string' },
      narrow: { type: 'boolean' },
    },
    USAGE,
  );
  if (a.values.shards !== undefined)
    return shardedSim(a.values as Record<string, string | boolean | undefined>);
  const durability = a.values.durability as string | undefined;
  if (durability !== undefined && durability !== 'local' && durability !== 'quorum')
    throw new UsageError(`--durability: must be local or quorum, got ${JSON.stringify(durability)}`);
  const replication = a.values.replication as string | undefined;
  if (replication !== undefined && !['artifacts', 'commits', 'mixed'].includes(replication))
    throw new UsageError(
      `--replication: must be artifacts, commits or mixed, got ${JSON.stringify(replication)}`,
    );
  if (a.values.swarm) return swarm(a.values as Record<string, string | boolean | undefined>);
  if (a.values.workers !== undefined) throw new UsageError('--workers: only with --swarm');
  const { FAULTS, OPT_IN_FAULTS, runSimulation } = await import('../../sim/index.ts');
  if (a.values.seed === undefined) throw new UsageError(`--seed is required\nusage: ${USAGE}`);
  const faultList =
    typeof a.values.faults === 'string' ? a.values.faults.split(',').filter(Boolean) : [...FAULTS];
  const known: readonly string[] = [...FAULTS, ...OPT_IN_FAULTS];
  for (const f of faultList)
    if (!known.includes(f))
      throw new UsageError(`--faults: unknown fault ${JSON.stringify(f)} (known: ${known.join(', ')})`);
  const r = await runSimulation({
    seed: intFlag(a.values.seed, 'seed') ?? 1,
    ...(durability ? { durability: durability as 'local' | 'quorum' } : {}),
    ...(replication ? { replication: replication as 'artifacts' | 'commits' | 'mixed' } : {}),
    nodes: intFlag(a.values.nodes, 'nodes', 2) ?? 3,
    steps: intFlag(a.values.steps, 'steps', 1) ?? 200,
    faults: faultList as never,
  });
  if (a.values.json) out(r);
  else {
    process.stdout.write(
      `seed ${r.seed} steps ${r.steps} trace_hash ${r.trace_hash}\n${JSON.stringify(r.stats)}\n`,
    );
    for (const v of r.violations)
      process.stdout.write(
        `${v.kind.toUpperCase()} VIOLATION ${v.invariant} at ${v.at_ms} ms: ${v.detail}\n`,
      );
    if (r.trace_excerpt)
      process.stdout.write(`trace up to the first violation:\n  ${r.trace_excerpt.join('\n  ')}\n`);
  }
  return r.violations.length ? 1 : 0;
}

/**
 * `--shards S`: the multi-shard simulation (sim/sharded-simulation.ts), one seed or a swarm of
 * consecutive seeds in this process. Each failing seed is printed with its replay command.
 */
async function shardedSim(v: Record<string, string | boolean | undefined>): Promise<number> {
  const { runShardedSimulation, SHARDED_FAULTS } = await import('../../sim/index.ts');
  const shards = intFlag(v.shards as string, 'shards', 2)!;
  if (shards > 8) throw new UsageError(`--shards: at most 8 in the simulator, got ${shards}`);
  const nodes = intFlag(v.nodes as string | undefined, 'nodes', 1) ?? shards;
  if (nodes < shards) throw new UsageError(`--nodes: at least one node per shard writer (${shards})`);
  const faults = typeof v.faults === 'string' ? v.faults.split(',').filter(Boolean) : [...SHARDED_FAULTS];
  for (const f of faults)
    if (!(SHARDED_FAULTS as readonly string[]).includes(f))
      throw new UsageError(
        `--faults: unknown fault ${JSON.stringify(f)} with --shards (known: ${SHARDED_FAULTS.join(', ')})`,
      );
  const steps = intFlag(v.steps as string | undefined, 'steps', 1) ?? 300;
  const first = v.swarm
    ? (intFlag(v['first-seed'] as string | undefined, 'first-seed') ?? 1)
    : intFlag(v.seed as string | undefined, 'seed');
  if (first === undefined) throw new UsageError(`--seed (or --swarm --seeds M) is required\nusage: ${USAGE}`);
  const count = v.swarm ? (intFlag(v.seeds as string | undefined, 'seeds', 1) ?? 20) : 1;
  const failing: number[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const r = await runShardedSimulation({
      seed,
      nodes,
      shards,
      steps,
      faults: faults as never,
      narrow: v.narrow === true,
    });
    if (v.json || !v.swarm) out(r);
    if (r.violations.length) {
      failing.push(seed);
      process.stderr.write(
        `seed ${seed}: FAIL ${r.violations.map((x) => `${x.invariant}: ${x.detail}`).join('; ')}\nreplay: fsmesh sim --shards ${shards} --nodes ${nodes} --steps ${steps} --faults ${faults.join(',')}${v.narrow ? ' --narrow' : ''} --seed ${seed}\n  ${(r.trace_excerpt ?? []).join('\n  ')}\n`,
      );
    }
  }
  if (v.swarm) out({ seeds: count, first_seed: first, shards, nodes, failing_seeds: failing });
  return failing.length ? 1 : 0;
}

async function swarm(v: Record<string, string | boolean | undefined>): Promise<number> {
  const { FAULTS, OPT_IN_FAULTS, runSwarm } = await import('../../sim/index.ts');
  const known: readonly string[] = [...FAULTS, ...OPT_IN_FAULTS];
  const extra = typeof v['extra-faults'] === 'string' ? v['extra-faults'].split(',').filter(Boolean) : [];
  for (const f of extra)
    if (!known.includes(f))
      throw new UsageError(`--extra-faults: unknown fault ${JSON.stringify(f)} (known: ${known.join(', ')})`);
  const seeds = intFlag(v.seeds as string | undefined, 'seeds', 1) ?? 20;
  const workers = intFlag(v.workers as string | undefined, 'workers', 1);
  const first = intFlag(v['first-seed'] as string | undefined, 'first-seed') ?? 1;
  const t0 = performance.now();
  let steps = 0;
  let done = 0;
  // Progress on stderr: a bar on a terminal, a line per 10 % otherwise (CI logs).
  const bar = process.stderr.isTTY && !v.json ? new SingleBar({ stream: process.stderr }) : null;
  bar?.start(seeds, 0);
  const failing = await runSwarm(
    first,
    seeds,
    intFlag(v.steps as string | undefined, 'steps', 1),
    (r, cfg) => {
      steps += r.steps;
      done++;
      bar?.update(done);
      if (r.violations.length)
        process.stderr.write(
          `${bar ? '\n' : ''}seed ${cfg.seed}: FAIL ${r.violations.map((x) => x.invariant).join(', ')}\n`,
        );
      else if (!bar && !v.json && done % Math.max(1, Math.floor(seeds / 10)) === 0)
        process.stderr.write(`${done}/${seeds} seeds, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    },
    { workers, extra_faults: extra as never },
  );
  bar?.stop();
  const wall_s = (performance.now() - t0) / 1000;
  for (const f of failing)
    process.stderr.write(
      `\nseed ${f.seed} failed; replay it alone with:\n  ${f.replay}\ntrace up to the first violation:\n  ${f.trace_excerpt.join('\n  ')}\n`,
    );
  out({
    seeds,
    first_seed: first,
    workers: workers ?? 'cores',
    failing_seeds: failing.map((f) => f.seed),
    failing,
    steps,
    wall_s: Math.round(wall_s * 10) / 10,
    steps_per_s: Math.round(steps / wall_s),
    seeds_per_s: Math.round((seeds / wall_s) * 10) / 10,
  });
  return failing.length ? 1 : 0;
}
