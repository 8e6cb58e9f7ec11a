/**
 * `fsmesh audit --data DIR [--from SEQ] [--json] [--semantic] [--keep-scratch]
 *              [--peer MULTIADDR [--cluster-key FILE]]` (docs/replication.md):
 * replay the capsule log in a scratch directory, rebuild every retained generation and compare it
 * with what is stored — or, with `--peer`, the peer's generations (manifests only). Prints `{"generations_checked","objects_checked","divergences":[…],
 * "replayed_commits","checkpoint"}`; exit 1 on any divergence, naming the first commit whose
 * generation differs. A progress bar on a terminal.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditDataDir } from '../engine/audit.ts';
import { defaultEngineConfig } from '../engine/engine-config.ts';
import { fetchPeerChain } from '../p2p/peer-manifests.ts';
import { intFlag, parse, requireFlag, UsageError } from './args.ts';
import { ttyProgress } from './progress.ts';
import { semanticEmbedder } from './semantic.ts';

const USAGE =
  'fsmesh audit --data DIR [--from SEQ] [--json] [--semantic] [--keep-scratch] [--peer MULTIADDR [--cluster-key FILE]]';

export async function cmdAudit(argv: string[]): Promise<number> {
  const a = parse(
    argv,
    {
      data: { type: 'string' },
      from: { type: 'string' },
      json: { type: 'boolean' },
      semantic: { type: 'boolean' },
      'keep-scratch': { type: 'boolean' },
      peer: { type: 'string' },
      'cluster-key': { type: 'string' },
    },
    USAGE,
  );
  const dir = requireFlag(a.values.data as string | undefined, 'data', USAGE);
  const peerAddr = a.values.peer as string | undefined;
  if (peerAddr !== undefined && !/^\/ip[46]\/[^/]+\/tcp\/\d+\/p2p\/\w+$/.test(peerAddr))
    throw new UsageError(`--peer: expected /ip4/HOST/tcp/PORT/p2p/PEER_ID, got ${JSON.stringify(peerAddr)}`);
  const keyFile = a.values['cluster-key'] as string | undefined;
  let clusterKey: Uint8Array | undefined;
  if (keyFile !== undefined) {
    try {
      clusterKey = new Uint8Array(fs.readFileSync(keyFile));
    } catch (err) {
      throw new UsageError(`--cluster-key: cannot read ${keyFile}: ${(err as Error).message}`);
    }
  }
  if (!fs.existsSync(dir)) throw new UsageError(`--data: ${dir} does not exist`);
  const from = intFlag(a.values.from as string | undefined, 'from', 1);
  const quality = a.values.semantic ? await semanticEmbedder() : undefined;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fsmesh-audit-'));
  let bar: ReturnType<typeof ttyProgress> | null = null;
  try {
    const peer = peerAddr ? await fetchPeerChain(peerAddr, clusterKey) : null;
    const report = await auditDataDir(dir, scratch, {
      from,
      ...(peer ? { peerChain: peer.chain } : {}),
      config: (m) => {
        if (m.quality_embedder && !quality)
          throw new UsageError(
            `${m.generation_id} carries the semantic tier: run the audit with --semantic (same vectors as the writer)`,
          );
        return defaultEngineConfig({ shard: m.shard, ...(quality ? { quality_embedder: quality } : {}) });
      },
      onProgress: (done, total) => {
        bar ??= ttyProgress('audit', total);
        bar.update(done, total, 'generations');
      },
    });
    (bar as ReturnType<typeof ttyProgress> | null)?.stop();
    process.stdout.write(
      `${JSON.stringify(peer ? { ...report, peer: { peer_id: peer.peer_id, generations: peer.chain.length } } : report)}\n`,
    );
    const first = report.divergences[0];
    if (first && !a.values.json)
      process.stderr.write(
        `fsmesh audit: ${first.generation_id} differs from its replay from commit ${first.first_commit_seq} (commits ${first.first_commit_seq}–${first.commit_seq_high}): ${first.reason}\n`,
      );
    return report.divergences.length ? 1 : 0;
  } finally {
    if (a.values['keep-scratch']) process.stderr.write(`fsmesh audit: scratch kept in ${scratch}\n`);
    else fs.rmSync(scratch, { recursive: true, force: true });
  }
}
