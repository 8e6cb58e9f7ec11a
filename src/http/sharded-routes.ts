/**
 * The HTTP routes a multi-shard node answers for the whole collection (docs/sharding.md,
 * docs/http.md); the others (events, console, cluster view) are those of its first shard's node.
 *   POST   /v1/docs        200 {commit_seqs: {"<shard>": seq}, commit_ids, docs, deduplicated}
 *                          (502 partial_commit names the shards that committed and those that did not)
 *   DELETE /v1/docs/:id    200 {commit_seqs, commit_ids}
 *   GET    /v1/search      q, k, mode, tier, snapshot=<JSON>, min_commit_seqs=<JSON>,
 *                          as_of_commit_seq=<JSON>, timeout_ms → hits + snapshot + shards
 *   GET    /v1/status      every shard: role, writer, members, active generation, lag
 *   GET    /v1/generations retained generations per shard
 *   GET    /v1/cluster     the written (or first) shard's view, plus `shard_count` and `shards`
 *   GET    /readyz         ready when every shard is
 *   GET    /metrics        every shard's metrics (label `shard`)
 *   POST   /v1/admin/promote[/prepare]  failover of the shard the signed ticket / handover names
 *   POST   /v1/admin/drain {draining}    every shard carried here
 */
import type * as http from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import { HTTP_DEFAULTS } from '../core/defaults.ts';
import { checkShardIndex } from '../core/sharding.ts';
import type { SearchMode } from '../search/searcher.ts';
import type { ShardSet } from '../shards/shard-set.ts';
import { clusterView } from './cluster-view.ts';
import { GuardError as HttpError } from './guard.ts';
import { decodePathPart, intParam, parseDocsBody, parseJsonBody, readBody, send } from './server.ts';

/** A query parameter holding JSON (`snapshot`, `min_commit_seqs`, ...), or a 400 naming it. */
function jsonParam(url: URL, name: string): unknown {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  if (v.length > 8192) throw new HttpError(400, 'invalid_input', `${name}: longer than 8192 characters`);
  try {
    return JSON.parse(v);
  } catch {
    throw new HttpError(
      400,
      'invalid_input',
      `${name}: expected JSON, got ${JSON.stringify(v.slice(0, 80))}`,
    );
  }
}

async function readRoute(set: ShardSet, url: URL, extra: () => Record<string, unknown>) {
  const p = url.pathname;
  if (p === '/v1/search') {
    const q = url.searchParams.get('q');
    if (q === null) throw new HttpError(400, 'invalid_input', 'q: required');
    return set.search({
      q,
      k: intParam(url, 'k'),
      mode: (url.searchParams.get('mode') ?? undefined) as SearchMode | undefined,
      tier: (url.searchParams.get('tier') ?? undefined) as 'fast' | 'refined' | undefined,
      snapshot: jsonParam(url, 'snapshot') as Record<string, string> | undefined,
      min_commit_seqs: jsonParam(url, 'min_commit_seqs') as Record<string, number> | undefined,
      as_of_commit_seq: jsonParam(url, 'as_of_commit_seq') as Record<string, number> | undefined,
      ...(url.searchParams.has('min_commit_seq')
        ? { min_commit_seq: url.searchParams.get('min_commit_seq') }
        : {}),
      timeout_ms: intParam(url, 'timeout_ms'),
    });
  }
  if (p === '/v1/status') return { ...extra(), ...set.status() };
  // The first shard's view at the top (what a single-shard client reads), every shard's below.
  if (p === '/v1/cluster') {
    const views = set.nodes.map((n) => clusterView(n));
    return {
      ...(views.find((v) => v.shard === String(set.writer_of)) ?? views[0]),
      shard_count: set.shards,
      shards: Object.fromEntries(views.map((v) => [v.shard, v])),
    };
  }
  if (p === '/v1/generations')
    return {
      shards: Object.fromEntries(
        set.localShards().map(({ shard, node: n }) => {
          const active = n.engine.generations.active?.artifact_manifest_id;
          return [
            String(shard),
            n.generations().map((g) => ({ ...g, active: g.artifact_manifest_id === active })),
          ];
        }),
      ),
    };
  return null;
}

/** `extraRoutes` of the HTTP server for a multi-shard node. */
export function shardedRoutes(
  set: ShardSet,
  opts: { max_body_bytes?: number; statusExtra: () => Record<string, unknown> },
) {
  const limit = opts.max_body_bytes ?? HTTP_DEFAULTS.max_body_bytes;
  return async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> => {
    const p = url.pathname;
    if (p === '/v1/docs' && req.method === 'POST') {
      const docs = parseDocsBody(await readBody(req, limit), String(req.headers['content-type'] ?? ''));
      const key = req.headers['idempotency-key'];
      send(res, 200, await set.ingest(docs, { idempotency_key: typeof key === 'string' ? key : undefined }));
      return true;
    }
    // Failover per shard: the admin-signed ticket or handover names its shard (docs/sharding.md).
    if ((p === '/v1/admin/promote/prepare' || p === '/v1/admin/promote') && req.method === 'POST') {
      const body = parseJsonBody(await readBody(req, 4096));
      // `{ticket: {ticket, signature}}` (prepare) or `{handover, signature}` (promote).
      const named = p.endsWith('/prepare')
        ? (body?.ticket as { ticket?: { shard?: unknown } } | undefined)?.ticket
        : (body?.handover as { shard?: unknown } | undefined);
      const k = checkShardIndex(
        named?.shard,
        set.shards,
        p.endsWith('/prepare') ? 'ticket.shard' : 'handover.shard',
      );
      const node = set.shard(k).node;
      send(
        res,
        200,
        p.endsWith('/prepare') ? await node.preparePromotion(body!.ticket) : await node.promote(body),
      );
      return true;
    }
    // Draining a node drains every shard it carries (reads routed away, writes refused there).
    if (p === '/v1/admin/drain' && req.method === 'POST') {
      const body = parseJsonBody(await readBody(req, 4096));
      if (typeof body?.draining !== 'boolean')
        throw new HttpError(400, 'invalid_input', 'draining: must be true or false');
      for (const n of set.nodes) n.setDraining(body.draining);
      send(res, 200, { draining: body.draining });
      return true;
    }
    const del = /^\/v1\/docs\/(.+)$/.exec(p);
    if (del && req.method === 'DELETE') {
      const ack = await set.delete(decodePathPart(del[1], 'document id'));
      send(res, 200, { commit_seqs: ack.commit_seqs, commit_ids: ack.commit_ids });
      return true;
    }
    if (req.method !== 'GET') return false;
    if (p === '/readyz' || p === '/healthz') {
      // Ready when every shard carried here is (the others are other nodes' to serve).
      const each = set
        .localShards()
        .map(({ shard, node }) => ({ shard: String(shard), ...node.readiness() }));
      const notReady = each.find((r) => !r.ready);
      send(res, notReady ? 503 : 200, {
        ready: !notReady,
        reason: notReady ? `shard ${notReady.shard}: ${notReady.reason}` : null,
        shards: Object.fromEntries(each.map((r) => [r.shard, { ready: r.ready, reason: r.reason }])),
      });
      return true;
    }
    if (p === '/metrics') {
      // One exposition for all shards: families merged, series told apart by their `shard` label.
      const all = await Promise.all(set.nodes.map((n) => n.metrics.registry.getMetricsAsJSON()));
      send(res, 200, await AggregatorRegistry.aggregate(all).metrics(), 'text/plain; version=0.0.4');
      return true;
    }
    const body = await readRoute(set, url, opts.statusExtra);
    if (body === null) return false;
    send(res, 200, body);
    return true;
  };
}
