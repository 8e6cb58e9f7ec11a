/**
 * Operator commands for failover (docs/protocols.md §failover):
 *   fsmesh admin-key FILE                           an ed25519 admin key, kept off the cluster
 *   fsmesh promote --http URL --admin-key FILE      make the node at URL the writer of epoch e+1
 */
import * as fs from 'node:fs';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { toHex } from '../core/bytes.ts';
import { FsmeshError } from '../core/errors.ts';
import { signHandover, signPrepareTicket } from '../p2p/handover.ts';
import { handoverOf } from '../p2p/services/failover.ts';
import { parse, requireFlag, UsageError } from './args.ts';

export async function cmdAdminKey(argv: string[]): Promise<number> {
  const usage = 'fsmesh admin-key FILE';
  const a = parse(argv, {}, usage);
  if (a.positionals.length !== 1) throw new UsageError(`usage: ${usage}`);
  const key = await generateKeyPair('Ed25519');
  fs.writeFileSync(a.positionals[0], privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' });
  process.stdout.write(`${JSON.stringify({ public_key: toHex(key.publicKey.raw) })}\n`);
  return 0;
}

async function get(url: string, token: string | undefined): Promise<any> {
  const r = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(30_000),
  });
  const json: any = await r.json().catch(() => null);
  if (r.status !== 200)
    throw new FsmeshError('conflict', `${url}: ${r.status} ${json?.error?.message ?? ''}`.trim());
  return json;
}

async function post(url: string, body: unknown, token: string | undefined): Promise<any> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  });
  const json: any = await r.json().catch(() => null);
  if (r.status !== 200)
    throw new FsmeshError(
      'conflict',
      `${url}: ${r.status} ${json?.error?.code ?? ''} ${json?.error?.message ?? ''}`.trim(),
    );
  return json;
}

/**
 * The status of the shard to promote in: the node's own (one shard), or `--shard K`'s of a
 * multi-shard node (required there: a node may become the writer of any shard it replicates).
 */
function shardStatus(top: any, shard: string | undefined): any {
  if (top.shard_count === undefined) {
    if (shard !== undefined && shard !== top.shard)
      throw new UsageError(`--shard ${shard}: this node serves shard ${top.shard} only`);
    return top;
  }
  if (shard === undefined)
    throw new UsageError(
      `--shard K is required: the node carries ${top.shard_count} shards (0 to ${top.shard_count - 1})`,
    );
  const st = top.shards?.[shard];
  if (!st)
    throw new UsageError(
      `--shard: the node has shards 0 to ${top.shard_count - 1}, got ${JSON.stringify(shard)}`,
    );
  return { ...st, shard };
}

/** Prepare requests per promotion, and the pause before asking a majority again. */
const PROMOTE_ATTEMPTS = 5;
const PROMOTE_RETRY_MS = 1000;

export async function cmdPromote(argv: string[]): Promise<number> {
  const usage = 'fsmesh promote --http URL --admin-key FILE [--http-token FILE] [--shard K]';
  const a = parse(
    argv,
    {
      http: { type: 'string' },
      'admin-key': { type: 'string' },
      'http-token': { type: 'string' },
      shard: { type: 'string' },
    },
    usage,
  );
  const shardFlag = a.values.shard as string | undefined;
  const url = requireFlag(a.values.http as string | undefined, 'http', usage).replace(/\/$/, '');
  const keyFile = requireFlag(a.values['admin-key'] as string | undefined, 'admin-key', usage);
  let key: Awaited<ReturnType<typeof generateKeyPair>>;
  try {
    key = privateKeyFromProtobuf(fs.readFileSync(keyFile)) as typeof key;
  } catch (err) {
    throw new UsageError(`--admin-key: cannot read ${keyFile}: ${(err as Error).message}`);
  }
  const tokenFile = a.values['http-token'] as string | undefined;
  const token = tokenFile ? fs.readFileSync(tokenFile, 'utf8').trim() : undefined;
  // 1. The admin key signs a prepare ticket for an epoch above any the node knows of (followed or
  //    promised); the node gathers promises and missing commits from a majority and says what to
  //    sign. A member that promised a higher epoch elsewhere refuses: sign again above it. No
  //    majority yet (a member slow to answer, just reconnected): the same ticket again, shortly —
  //    promising it twice is a no-op, and the epoch stays e+1 (a new ticket made it e+2).
  let plan: any = null;
  let ticket: Awaited<ReturnType<typeof signPrepareTicket>> | null = null;
  for (let attempt = 1; !plan; attempt++) {
    if (!ticket) {
      const top = await get(`${url}/v1/status`, token);
      if (typeof top?.peer_id !== 'string')
        throw new FsmeshError('conflict', `${url}: the node is not in a cluster (no peer_id in /v1/status)`);
      const st = shardStatus(top, shardFlag);
      ticket = await signPrepareTicket(key, {
        format: 1,
        kind: 'prepare',
        cluster: String(top.cluster),
        shard: String(st.shard),
        epoch: Math.max(Number(st.epoch) || 0, Number(st.promised_epoch) || 0) + 1,
        candidate: top.peer_id,
      });
    }
    try {
      plan = await post(`${url}/v1/admin/promote/prepare`, { ticket }, token);
    } catch (err) {
      const message = (err as Error).message;
      if (attempt >= PROMOTE_ATTEMPTS) throw err;
      if (/promote again|already promised epoch/.test(message)) ticket = null;
      else if (/ 503 unavailable promotion needs /.test(message))
        await new Promise((r) => setTimeout(r, PROMOTE_RETRY_MS));
      else throw err;
    }
  }
  // 2. The admin key signs exactly that history; the node installs it and tells everyone.
  const signed = await signHandover(key, handoverOf(plan));
  const done = await post(`${url}/v1/admin/promote`, signed, token);
  process.stdout.write(
    `${JSON.stringify({ writer: done.writer, epoch: done.epoch, commit_seq_high: done.commit_seq_high })}\n`,
  );
  return 0;
}
