/**
 * `npm start`: the README's main job on an embedded default. Until the p2p layer lands this runs
 * one node in-process on a temporary data directory with the bundled corpus: ingest, build and
 * activate a generation, run searches in every mode, time travel to the first generation.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocsJsonl } from '../core/docs-input.ts';
import { defaultEngineConfig, LocalEngine } from '../engine/local-engine.ts';
import { nodeFsStorage, seededRandom, systemClock } from '../runtime/index.ts';

export async function runDemo(_argv: string[]): Promise<number> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const corpusFile = path.resolve(here, '../../examples/corpus/distributed-systems.jsonl');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fsmesh-demo-'));
  const log = (s: string) => process.stdout.write(`${s}\n`);
  log(`fsmesh demo: data directory ${dir}`);
  const engine = await LocalEngine.open(
    { clock: systemClock, random: seededRandom(7), storage: nodeFsStorage(dir) },
    defaultEngineConfig({ created_by: 'demo-writer' }),
  );
  try {
    const ops = parseDocsJsonl(fs.readFileSync(corpusFile, 'utf8'), path.basename(corpusFile));
    const half = Math.floor(ops.length / 2);
    const a1 = await engine.ingest(ops.slice(0, half));
    const g1 = await engine.buildAndActivate();
    log(
      `ingested ${half} docs (commit_seq ${a1.commit_seq}); activated ${g1?.ref.generation_id} manifest ${g1?.ref.artifact_manifest_id.slice(0, 16)}…`,
    );
    const a2 = await engine.ingest(ops.slice(half));
    await engine.ingest([{ op: 'delete', doc_id: 'cat' }]);
    const g2 = await engine.buildAndActivate();
    log(
      `ingested ${ops.length - half} more docs + 1 delete (commit_seq ${a2.commit_seq + 1}); activated ${g2?.ref.generation_id} (${g2?.manifest.doc_count} live docs)`,
    );
    for (const [q, mode] of [
      ['erasure coding repair symbols', 'hybrid'],
      ['majority of replicas', 'lexical'],
      ['merge immutable segments', 'vector'],
    ] as const) {
      const r = await engine.search({ q, k: 3, mode });
      log(
        `search ${JSON.stringify(q)} [${mode}] on ${r.generation_id}: ${r.hits.map((h) => `${h.doc_id}(${h.score.toFixed(3)})`).join(', ')}`,
      );
    }
    const tt = await engine.search({
      q: 'domestic cat',
      k: 3,
      mode: 'lexical',
      as_of_commit_seq: a1.commit_seq,
    });
    const now = await engine.search({ q: 'domestic cat', k: 3, mode: 'lexical' });
    log(
      `time travel as_of_commit_seq=${a1.commit_seq} → ${tt.generation_id}: ${tt.hits.map((h) => h.doc_id).join(', ') || '(none)'}; latest ${now.generation_id}: ${now.hits.map((h) => h.doc_id).join(', ') || '(none)'}`,
    );
    log('try: node bin/fsmesh.js search --data ' + dir + ' "gossip peers"');
    return 0;
  } finally {
    await engine.close();
  }
}
