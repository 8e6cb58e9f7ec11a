/**
 * `fsmesh status --http URL [--watch] [--json] [--http-token FILE] [--interval-ms N]`: the cluster
 * as the node at URL sees it (`GET /v1/cluster`) — one row per member: peer, role, health, lag in
 * commits, active generation, commit_seq_high, queries/s, sync or repair progress. `--json` prints
 * the route's JSON (one line per refresh with `--watch`); otherwise a table, redrawn in place on a
 * terminal with `--watch` (Ctrl-C stops).
 */
import * as fs from 'node:fs';
import { FsmeshError } from '../core/errors.ts';
import type { ClusterMember, ClusterView } from '../http/cluster-view.ts';
import { parse, requireFlag, UsageError } from './args.ts';

const USAGE = 'fsmesh status --http URL [--watch] [--json] [--http-token FILE] [--interval-ms N]';

async function fetchCluster(url: string, token: string | undefined): Promise<ClusterView> {
  let r: Response;
  try {
    r = await fetch(`${url}/v1/cluster`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new FsmeshError('unavailable', `${url}: cannot reach the node (${cause})`);
  }
  const body = (await r.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (r.status !== 200)
    throw new FsmeshError(
      r.status === 401 ? 'invalid_input' : 'unavailable',
      `${url}/v1/cluster: ${r.status} ${body?.error?.message ?? ''}`.trim(),
    );
  return body as unknown as ClusterView;
}

function progress(m: ClusterMember): string {
  const p = m.sync_progress as { phase?: string; objects_done?: number; objects_total?: number } | null;
  const parts: string[] = [];
  if (p && p.phase !== 'done' && (p.objects_total ?? 0) > 0) {
    const width = 10;
    const filled = Math.round(((p.objects_done ?? 0) / (p.objects_total ?? 1)) * width);
    parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.objects_done}/${p.objects_total}`);
  }
  if (m.repairing > 0) parts.push(`repairing ${m.repairing}`);
  return parts.join(' ') || '-';
}

/** The cluster table, as plain text (columns padded to their widest cell). */
export function renderClusterTable(v: ClusterView): string {
  // A multi-shard node: one table per shard (docs/sharding.md).
  if (v.shards)
    return Object.values(v.shards)
      .map((s) => renderShardTable(s))
      .join('\n');
  return renderShardTable(v);
}

function renderShardTable(v: ClusterView): string {
  const short = (id: string) => (id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id);
  const rows = [
    ['PEER', 'ROLE', 'HEALTH', 'LAG', 'GENERATION', 'COMMIT_SEQ_HIGH', 'QPS', 'SYNC/REPAIR'],
    ...v.members.map((m) => [
      `${short(m.peer_id)}${m.self ? ' *' : ''}`,
      m.role === 'replica' && m.replication === 'commits' ? 'replica (commits)' : m.role,
      `${m.health}${m.draining ? ' (draining)' : ''}`,
      m.lag_commits === null ? '-' : String(m.lag_commits),
      m.generation_id ?? '-',
      m.commit_seq_high === null ? '-' : String(m.commit_seq_high),
      String(m.queries_per_s),
      progress(m),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
  const head = `shard ${v.shard}  writer ${v.writer ? short(v.writer) : '-'}  epoch ${v.epoch}  writer commit_seq_high ${v.writer_commit_seq_high ?? '-'}  (* = ${short(v.self)}, the node asked)`;
  return `${head}\n${lines.join('\n')}\n`;
}

export async function cmdStatus(argv: string[]): Promise<number> {
  const a = parse(
    argv,
    {
      http: { type: 'string' },
      watch: { type: 'boolean' },
      json: { type: 'boolean' },
      'http-token': { type: 'string' },
      'interval-ms': { type: 'string' },
    },
    USAGE,
  );
  const url = requireFlag(a.values.http as string | undefined, 'http', USAGE).replace(/\/$/, '');
  if (!/^https?:\/\/[^/]+$/.test(url))
    throw new UsageError(`--http: expected http://HOST:PORT, got ${JSON.stringify(a.values.http)}`);
  const tokenFile = a.values['http-token'] as string | undefined;
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = fs.readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`--http-token: cannot read ${tokenFile}: ${(err as Error).message}`);
    }
  }
  const intervalRaw = (a.values['interval-ms'] as string | undefined) ?? '1000';
  const interval = Number(intervalRaw);
  if (!Number.isSafeInteger(interval) || interval < 100)
    throw new UsageError(`--interval-ms: expected an integer >= 100, got ${JSON.stringify(intervalRaw)}`);
  const json = a.values.json === true;
  const show = (v: ClusterView) => {
    if (json) process.stdout.write(`${JSON.stringify(v)}\n`);
    else if (a.values.watch && process.stdout.isTTY)
      process.stdout.write(`\x1b[H\x1b[2J${renderClusterTable(v)}`);
    else process.stdout.write(renderClusterTable(v));
  };
  if (!a.values.watch) {
    show(await fetchCluster(url, token));
    return 0;
  }
  let stop = false;
  process.once('SIGINT', () => {
    stop = true;
  });
  while (!stop) {
    try {
      show(await fetchCluster(url, token));
    } catch (err) {
      process.stderr.write(`fsmesh status: ${(err as Error).message}\n`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  return 0;
}
