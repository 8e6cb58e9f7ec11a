/**
 * The `fsmesh` command line. Each subcommand prints one JSON object on success (machine
 * readable, stable keys) and a clear message on stderr on failure.
 * Exit codes: 0 ok, 1 the operation found a problem (invalid manifest, corruption, ...), 2 usage error.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_REPAIR } from '../codec/repair-descriptor.ts';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { FsmeshError } from '../core/errors.ts';
import { manifestProblems } from '../core/manifest.ts';
import type { EngineEvent } from '../engine/engine-events.ts';
import { defaultEngineConfig, type EngineConfig, LocalEngine } from '../engine/local-engine.ts';
import { verifyDataDir } from '../engine/verify.ts';
import { nodeFsStorage, type Runtime, seededRandom, systemClock } from '../runtime/index.ts';
import type { SearchMode } from '../search/searcher.ts';
import { intFlag, parse, requireFlag, UsageError } from './args.ts';
import { checkJsonlFile, commitJsonlFile } from './jsonl-file.ts';
import { ttyProgress } from './progress.ts';
import { semanticEmbedder } from './semantic.ts';

const USAGE = `fsmesh <command> [options]

commands:
  ingest --data DIR FILE.jsonl        append documents, build and activate a generation
  search --data DIR "query" [--k N] [--mode lexical|vector|hybrid]
         [--as-of-commit-seq S] [--min-commit-seq S --timeout-ms T]
  generations --data DIR --json       list retained generations
  manifest validate FILE              check a manifest; print each problem with its path
  verify --data DIR [--fix]           read-only check of objects, capsule log, symbol files
  rollback --data DIR                 make the previous retained generation active
  repair --data DIR                   scrub artifacts, rebuild corrupt ones from local repair symbols
  node start --data DIR --http HOST:PORT   run a node (HTTP API; see docs/http.md)
       [--shards S --writer-of K]     ... of a multi-shard collection (docs/sharding.md)
  node id --data DIR                  print the node's peer id (creates its key), to plan seeds
  cluster-key FILE                    write a new cluster pre-shared key (libp2p pnet)
  http-token FILE                     write a new HTTP bearer token (for --http-token)
  admin-key FILE                      write an operator admin key (prints its public_key for --admin-pub)
  promote --http URL --admin-key FILE make the node at URL the writer of the next epoch (failover)
  status --http URL [--watch] [--json]  the cluster table as that node sees it (also: GET /ui)
  audit --data DIR [--from SEQ] [--json]  replay the log, rebuild every retained generation, compare
  sim --seed N [--nodes K] [--steps S] [--faults LIST] [--json]   deterministic cluster simulation
  sim --swarm --seeds M [--workers W] many seeds with varied configurations, over W threads; lists failing seeds
  demo                                the README's main job (npm start)`;

function runtimeFor(dir: string): Runtime {
  fs.mkdirSync(dir, { recursive: true });
  return { clock: systemClock, random: seededRandom(1), storage: nodeFsStorage(path.resolve(dir)) };
}

/** What each engine event means to a person reading stderr (activations are reported by each command). */
const EVENT_TEXT: Partial<Record<EngineEvent['type'], string>> = {
  log_torn_tail_cut: 'capsule log: cutting torn tail after crash',
  log_torn_segment_removed: 'capsule log: removing segment with a torn header',
  log_segment_repaired: 'sealed log segment repaired from its protected copy',
  log_segment_unrepairable: 'sealed log segment is damaged and cannot be rebuilt locally',
  log_segment_protect_failed: 'could not protect a sealed log segment',
  artifact_repair_failed: 'artifact could not be repaired locally',
  generation_activation_failed: 'activation failed',
};

function onEvent(e: EngineEvent): void {
  const text =
    e.type === 'artifact_repair_completed'
      ? `artifact repaired from ${e.source === 'peers' ? 'peers' : 'local symbols'}`
      : EVENT_TEXT[e.type];
  if (!text) return;
  const { type, ...fields } = e;
  process.stderr.write(`fsmesh: warning: ${text} ${JSON.stringify({ event: type, ...fields })}\n`);
}

async function withEngine<T>(
  dir: string,
  fn: (e: LocalEngine) => Promise<T>,
  over: Partial<EngineConfig> = {},
  opts: {
    maintain_symbols?: boolean;
    warm_vectors?: boolean;
    open_log?: boolean;
    vector_graphs?: boolean;
  } = {},
): Promise<T> {
  const engine = await LocalEngine.open(runtimeFor(dir), defaultEngineConfig(over), { onEvent, ...opts });
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function cmdIngest(argv: string[]): Promise<number> {
  const usage = 'fsmesh ingest --data DIR [--batch N] [--shard NAME] [--semantic] FILE.jsonl';
  const a = parse(
    argv,
    {
      data: { type: 'string' },
      batch: { type: 'string' },
      shard: { type: 'string' },
      semantic: { type: 'boolean' },
    },
    usage,
  );
  const dir = requireFlag(a.values.data, 'data', usage);
  if (a.positionals.length !== 1) throw new UsageError(`expected exactly one FILE.jsonl\nusage: ${usage}`);
  const file = a.positionals[0];
  const batch = intFlag(a.values.batch, 'batch', 1) ?? 1000;
  // First pass: every line checked before anything is committed (a bad line commits nothing).
  const source = path.basename(file);
  const checked = await checkJsonlFile(file, source);
  const over: Partial<EngineConfig> = {
    ...(typeof a.values.shard === 'string' ? { shard: a.values.shard } : {}),
    ...(a.values.semantic ? { quality_embedder: await semanticEmbedder() } : {}),
  };
  return withEngine(
    dir,
    async (engine) => {
      const bar = ttyProgress('ingest', checked.docs);
      let durable = 0;
      // Second pass: streamed in batches, a bounded number in flight (group commit still batches).
      const ingested = await commitJsonlFile(file, source, checked, {
        batch,
        inFlight: 8,
        commit: (ops) =>
          engine.ingest(ops).then(() => {
            durable += ops.length;
            bar.update(durable, undefined, 'docs durable');
          }),
      });
      bar.update(ingested, undefined, 'building the generation');
      const built = await engine.buildAndActivate().finally(() => bar.stop());
      const active = engine.generations.active;
      out({
        commit_seq_high: engine.log.commitSeqHigh,
        generation_id: active?.generation_id ?? null,
        artifact_manifest_id: active?.artifact_manifest_id ?? null,
        docs_ingested: ingested,
        built: built !== null,
      });
      return 0;
    },
    over,
    // The process exits after activating: vectors are verified, not loaded.
    { warm_vectors: false },
  );
}

async function cmdSearch(argv: string[]): Promise<number> {
  const usage =
    'fsmesh search --data DIR "query" [--k N] [--mode lexical|vector|hybrid] [--as-of-commit-seq S] [--min-commit-seq S --timeout-ms T] [--semantic [--tier fast|refined]]';
  const a = parse(
    argv,
    {
      data: { type: 'string' },
      k: { type: 'string' },
      mode: { type: 'string' },
      'as-of-commit-seq': { type: 'string' },
      'min-commit-seq': { type: 'string' },
      'timeout-ms': { type: 'string' },
      semantic: { type: 'boolean' },
      tier: { type: 'string' },
    },
    usage,
  );
  const dir = requireFlag(a.values.data, 'data', usage);
  if (a.positionals.length !== 1) throw new UsageError(`expected exactly one query\nusage: ${usage}`);
  const over: Partial<EngineConfig> = a.values.semantic ? { quality_embedder: await semanticEmbedder() } : {};
  const k = typeof a.values.k === 'string' ? intFlagSigned(a.values.k, 'k') : undefined;
  return withEngine(
    dir,
    async (engine) => {
      const r = await engine.search({
        q: a.positionals[0],
        k,
        mode: a.values.mode as SearchMode | undefined,
        as_of_commit_seq: intFlag(a.values['as-of-commit-seq'], 'as-of-commit-seq'),
        min_commit_seq: intFlag(a.values['min-commit-seq'], 'min-commit-seq'),
        timeout_ms: intFlag(a.values['timeout-ms'], 'timeout-ms'),
        tier: a.values.tier as 'fast' | 'refined' | undefined,
      });
      out(r);
      return 0;
    },
    over,
    // A one-shot read: no background symbol maintenance to wait for at close, the capsule log is
    // not read unless the query needs its head (as_of_commit_seq), and a vector query scans the
    // shards exactly rather than load graphs to use them once.
    { maintain_symbols: false, open_log: false, vector_graphs: false },
  );
}

function intFlagSigned(v: string, name: string): number {
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name}: expected an integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

async function cmdGenerations(argv: string[]): Promise<number> {
  const usage = 'fsmesh generations --data DIR --json';
  const a = parse(argv, { data: { type: 'string' }, json: { type: 'boolean' } }, usage);
  const dir = requireFlag(a.values.data, 'data', usage);
  return withEngine(dir, async (engine) => {
    const g = engine.generations;
    const list = [];
    for (const r of g.retained) {
      const m = await g.loadManifest(r.artifact_manifest_id).catch(() => null);
      list.push({
        generation_id: r.generation_id,
        generation_seq: r.generation_seq,
        artifact_manifest_id: r.artifact_manifest_id,
        commit_range: m?.commit_range ?? null,
        commit_seq_high: r.commit_seq_high,
        doc_count: m?.doc_count ?? null,
        active: g.active?.artifact_manifest_id === r.artifact_manifest_id,
        rolled_back: r.rolled_back === true,
        activated_at_ms: r.activated_at_ms,
      });
    }
    if (a.values.json)
      out({
        active: g.active?.generation_id ?? null,
        previous: g.previous?.generation_id ?? null,
        generations: list,
      });
    else
      for (const r of list)
        process.stdout.write(
          `${r.active ? '*' : ' '} ${r.generation_id}\tcommits ${r.commit_range?.from_commit_seq}..${r.commit_seq_high}\tdocs ${r.doc_count}\t${r.artifact_manifest_id}\n`,
        );
    return 0;
  });
}

async function cmdManifest(argv: string[]): Promise<number> {
  const usage = 'fsmesh manifest validate FILE';
  const a = parse(argv, {}, usage);
  if (a.positionals[0] !== 'validate' || a.positionals.length !== 2) throw new UsageError(`usage: ${usage}`);
  const file = a.positionals[1];
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`${file}: $: not readable JSON (${(err as Error).message})\n`);
    return 1;
  }
  const problems = manifestProblems(parsed);
  if (problems.length === 0) {
    out({ valid: true, file });
    return 0;
  }
  for (const p of problems) process.stderr.write(`${file}: ${p}\n`);
  out({ valid: false, file, problems });
  return 1;
}

async function cmdVerify(argv: string[]): Promise<number> {
  const usage = 'fsmesh verify --data DIR [--fix]';
  const a = parse(argv, { data: { type: 'string' }, fix: { type: 'boolean' } }, usage);
  const dir = requireFlag(a.values.data, 'data', usage);
  if (!fs.existsSync(path.join(dir, DATA_DIR.format_file)))
    throw new UsageError(`--data: ${dir} is not an fsmesh data directory (no ${DATA_DIR.format_file} file)`);
  // Read-only unless --fix: opening the engine cuts torn tails and rebuilds damaged sealed segments.
  if (a.values.fix) await withEngine(dir, async () => {});
  const r = await verifyDataDir(nodeFsStorage(path.resolve(dir)), DEFAULT_REPAIR);
  for (const c of r.corrupt) process.stderr.write(`corrupt ${c.kind} object ${c.object_id}\n`);
  for (const c of r.missing) process.stderr.write(`missing ${c.kind} object ${c.object_id}\n`);
  for (const c of r.log_problems)
    process.stderr.write(
      `log ${c.file}${c.offset !== undefined ? ` at offset ${c.offset}` : ''}: ${c.problem}\n`,
    );
  for (const c of r.symbol_problems) process.stderr.write(`symbol file: ${c.problem}\n`);
  out(r);
  return r.ok ? 0 : 1;
}

async function cmdRollback(argv: string[]): Promise<number> {
  const usage = 'fsmesh rollback --data DIR';
  const a = parse(argv, { data: { type: 'string' } }, usage);
  const dir = requireFlag(a.values.data, 'data', usage);
  return withEngine(dir, async (engine) => {
    const r = await engine.rollback();
    out({
      rolled_back_from: r.from.generation_id,
      active: r.to.generation_id,
      artifact_manifest_id: r.to.artifact_manifest_id,
      commit_seq_high: r.to.commit_seq_high,
    });
    return 0;
  });
}

async function cmdRepair(argv: string[]): Promise<number> {
  const usage = 'fsmesh repair --data DIR [--bytes-per-s N]';
  const a = parse(argv, { data: { type: 'string' }, 'bytes-per-s': { type: 'string' } }, usage);
  const dir = requireFlag(a.values.data, 'data', usage);
  return withEngine(dir, async (engine) => {
    const r = await engine.scrub({ bytes_per_s: intFlag(a.values['bytes-per-s'], 'bytes-per-s') ?? 0 });
    for (const id of r.unrepairable)
      process.stderr.write(`unrepairable artifact object ${id}: needs symbols from peers\n`);
    out({
      objects_checked: r.objects_checked,
      corrupt_found: r.corrupt_found,
      repaired: r.repaired,
      unrepairable: r.unrepairable,
      bytes_checked: r.bytes_checked,
    });
    return r.unrepairable.length > 0 ? 1 : 0;
  });
}

async function cmdClusterKey(argv: string[]): Promise<number> {
  const usage = 'fsmesh cluster-key FILE';
  const a = parse(argv, {}, usage);
  if (a.positionals.length !== 1) throw new UsageError(`usage: ${usage}`);
  const { generateKey } = await import('@libp2p/pnet');
  const key = new Uint8Array(95);
  generateKey(key);
  fs.writeFileSync(a.positionals[0], key, { mode: 0o600, flag: 'wx' });
  out({ cluster_key: a.positionals[0] });
  return 0;
}

async function cmdHttpToken(argv: string[]): Promise<number> {
  const usage = 'fsmesh http-token FILE';
  const a = parse(argv, {}, usage);
  if (a.positionals.length !== 1) throw new UsageError(`usage: ${usage}`);
  const { randomBytes } = await import('node:crypto');
  fs.writeFileSync(a.positionals[0], `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  out({ http_token: a.positionals[0] });
  return 0;
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  ingest: cmdIngest,
  search: cmdSearch,
  generations: cmdGenerations,
  manifest: cmdManifest,
  verify: cmdVerify,
  rollback: cmdRollback,
  repair: cmdRepair,
  'cluster-key': cmdClusterKey,
  'http-token': cmdHttpToken,
  'admin-key': async (argv) => (await import('./admin-cmd.ts')).cmdAdminKey(argv),
  promote: async (argv) => (await import('./admin-cmd.ts')).cmdPromote(argv),
  status: async (argv) => (await import('./status-cmd.ts')).cmdStatus(argv),
  audit: async (argv) => (await import('./audit-cmd.ts')).cmdAudit(argv),
  sim: async (argv) => (await import('./sim-cmd.ts')).cmdSim(argv),
  demo: async (argv) => (await import('./demo.ts')).runDemo(argv),
  node: async (argv) => (await import('./node-cmd.ts')).cmdNode(argv),
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return cmd ? 0 : 2;
  }
  const fn = COMMANDS[cmd];
  if (!fn) {
    process.stderr.write(`fsmesh: unknown command ${JSON.stringify(cmd)}\n${USAGE}\n`);
    return 2;
  }
  try {
    return await fn(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`fsmesh ${cmd}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof FsmeshError) {
      process.stderr.write(`fsmesh ${cmd}: error (${err.code}): ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`fsmesh ${cmd}: unexpected error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}

// `node src/cli/main.ts ...` (npm start); the `fsmesh` bin calls main() itself, whatever path or
// link it was started by (npx, npm link, a global install).
if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
