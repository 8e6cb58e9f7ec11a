/**
 * HTTP API of a node (node:http; binds 127.0.0.1 unless told otherwise). JSON in and out; every
 * error is a 4xx/5xx with `{"error":{"code","message","problems"?}}`.
 *   POST   /v1/docs                JSON array or NDJSON of docs; 200 {commit_seq, commit_id, docs} once durable
 *   DELETE /v1/docs/:id            200 {commit_seq}
 *   GET    /v1/search?q=&k=&mode=&as_of_commit_seq=&min_commit_seq=&timeout_ms=
 *   GET    /v1/status              role, health, generation_id, artifact_manifest_id, commit_seq_high, lag_commits, ...
 *   GET    /v1/generations         retained generations, active marked
 *   GET    /v1/cluster             every member this node knows: role, health, lag, generation, ...
 *   GET    /v1/events              Server-Sent Events of the node's events
 *   GET    /ui                     the live cluster console (a page; its data comes from the routes above)
 *   GET    /healthz                200 healthy/catching_up, 503 degraded/bootstrapping (body says which)
 *   GET    /metrics                Prometheus text
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';
import type { FsmeshNode } from '../node/index.ts';
import type { SearchMode } from '../search/searcher.ts';
import { clusterView } from './cluster-view.ts';
import { CONSOLE_CSP, CONSOLE_HTML } from './console-page.ts';
import { EventStreams } from './event-stream.ts';
import { guardRequest, GuardError as HttpError, type HttpSecurity } from './guard.ts';

export interface HttpOptions {
  host?: string;
  port?: number;
  max_body_bytes?: number;
  /** Extra fields for /v1/status (default: the node's services, e.g. the cluster's peer_id). */
  statusExtra?: () => Record<string, unknown>;
  /** Authentication and request checks (docs/security.md); none configured = open (loopback). */
  security?: HttpSecurity;
  /** Extra routes (a host application's own, or p2p admin). Return true when handled. */
  extraRoutes?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<boolean> | boolean;
}

const STATUS_BY_CODE: Record<string, number> = {
  invalid_input: 400,
  invalid_manifest: 400,
  not_found: 404,
  retention_dropped: 410,
  partial_commit: 502,
  conflict: 409,
  busy: 429,
  timeout: 504,
  embedder_mismatch: 409,
  unsupported_version: 400,
  corrupt_data: 503,
  unavailable: 503,
  internal: 500,
};

/** Error bodies list at most this many problems (plus `problem_count`). */
const MAX_PROBLEMS = 100;

/** The request target, or a 400 naming what is wrong with it (malformed percent-encoding, ...). */
function parseUrl(target: string | undefined): URL {
  let url: URL;
  try {
    url = new URL(target ?? '/', 'http://localhost');
    decodeURIComponent(url.pathname);
    // URLSearchParams keeps a malformed escape as it is; refuse it instead of guessing.
    for (const part of url.search.slice(1).split('&')) decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    throw new HttpError(400, 'invalid_input', 'malformed request target (bad percent-encoding?)');
  }
  return url;
}

export function decodePathPart(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'invalid_input', `${what}: malformed percent-encoding`);
  }
}

export function parseJsonBody(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : null;
  } catch {
    throw new HttpError(400, 'invalid_input', 'body: not valid JSON');
  }
}

/** At most MAX_PROBLEMS problems in a body, with the total when there were more. */
function problemsOf(problems: unknown): Record<string, unknown> {
  if (!Array.isArray(problems)) return {};
  return problems.length > MAX_PROBLEMS
    ? { problems: problems.slice(0, MAX_PROBLEMS), problem_count: problems.length }
    : { problems };
}

export function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  contentType = 'application/json',
  extra: Record<string, string> = {},
): void {
  const text = contentType === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  const headers: Record<string, string | number> = {
    ...extra,
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
  };
  if (status === 413) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(text);
}

/** Read and drop the rest of a request body, up to a byte and time bound; true when it ended. */
function drainRequest(req: http.IncomingMessage): Promise<boolean> {
  if (req.complete || req.destroyed) return Promise.resolve(req.complete);
  return new Promise((resolve) => {
    let dropped = 0;
    const done = (ended: boolean) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onEnd);
      resolve(ended);
    };
    const onData = (c: Buffer) => {
      dropped += c.length;
      if (dropped > HTTP_DEFAULTS.drain_max_bytes) done(false);
    };
    const onEnd = () => done(req.complete);
    const timer = setTimeout(() => done(false), HTTP_DEFAULTS.drain_timeout_ms);
    timer.unref();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onEnd);
    req.resume();
  });
}

export function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(
        new HttpError(
          413,
          'payload_too_large',
          `request body of ${declared} bytes exceeds the ${limit}-byte limit`,
        ),
      );
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        if (size - c.length <= limit)
          reject(new HttpError(413, 'payload_too_large', `request body exceeds the ${limit}-byte limit`));
        // Keep reading (and dropping) the rest so the client sees the 413 instead of a reset.
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function parseDocsBody(text: string, contentType: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed === '')
    throw new HttpError(
      400,
      'invalid_input',
      'request body is empty: send a JSON array or NDJSON of documents',
    );
  if (contentType.includes('ndjson') || (!trimmed.startsWith('[') && trimmed.includes('\n'))) {
    return trimmed.split('\n').flatMap((line, i) => {
      if (line.trim() === '') return [];
      try {
        return [JSON.parse(line)];
      } catch (err) {
        throw new HttpError(
          400,
          'invalid_input',
          `NDJSON line ${i + 1}: invalid JSON (${(err as Error).message}); nothing committed`,
        );
      }
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch (err) {
    throw new HttpError(400, 'invalid_input', `body: invalid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed)) parsed = [parsed];
  return parsed as unknown[];
}

export function intParam(url: URL, name: string, min = 0): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v))
    throw new HttpError(400, 'invalid_input', `${name}: expected an integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < min) throw new HttpError(400, 'invalid_input', `${name}: must be >= ${min}, got ${n}`);
  return n;
}

type Reply = { status: number; body: unknown; type?: string; headers?: Record<string, string> };
const OPEN_ROUTES = ['/healthz', '/livez', '/readyz', '/metrics', '/ui'];

/** POST /v1/docs and DELETE /v1/docs/:id. */
async function writeRoute(
  node: FsmeshNode,
  req: http.IncomingMessage,
  p: string,
  limit: number,
): Promise<Reply | null> {
  if (p === '/v1/docs' && req.method === 'POST') {
    const docs = parseDocsBody(await readBody(req, limit), String(req.headers['content-type'] ?? ''));
    const key = req.headers['idempotency-key'];
    const ack = await node.ingest(docs as never, {
      idempotency_key: typeof key === 'string' ? key : undefined,
    });
    return {
      status: 200,
      body: {
        commit_seq: ack.commit_seq,
        commit_id: ack.commit_id,
        docs: docs.length,
        deduplicated: ack.deduplicated,
      },
    };
  }
  if (p === '/v1/admin/promote/prepare' && req.method === 'POST') {
    const body = parseJsonBody(await readBody(req, 4096));
    if (!body || typeof body !== 'object' || !('ticket' in body))
      throw new HttpError(
        400,
        'invalid_input',
        'ticket: the admin-signed prepare ticket is required (`fsmesh promote` signs it)',
      );
    return { status: 200, body: await node.preparePromotion(body.ticket) };
  }
  if (p === '/v1/admin/promote' && req.method === 'POST')
    return { status: 200, body: await node.promote(parseJsonBody(await readBody(req, 4096))) };
  if (p === '/v1/admin/drain' && req.method === 'POST') {
    const body = parseJsonBody(await readBody(req, 4096));
    if (typeof body?.draining !== 'boolean')
      throw new HttpError(400, 'invalid_input', 'draining: must be true or false');
    node.setDraining(body.draining);
    return { status: 200, body: { draining: node.draining } };
  }
  const del = /^\/v1\/docs\/(.+)$/.exec(p);
  if (del && req.method === 'DELETE') {
    const ack = await node.delete(decodePathPart(del[1], 'document id'));
    return { status: 200, body: { commit_seq: ack.commit_seq, commit_id: ack.commit_id } };
  }
  return null;
}

/** The GET routes. */
async function readRoute(node: FsmeshNode, opts: HttpOptions, url: URL): Promise<Reply | null> {
  const p = url.pathname;
  if (p === '/v1/search') {
    const q = url.searchParams.get('q');
    if (q === null) throw new HttpError(400, 'invalid_input', 'q: required');
    const r = await node.search({
      q,
      k: intParam(url, 'k') ?? undefined,
      mode: (url.searchParams.get('mode') ?? undefined) as SearchMode | undefined,
      as_of_commit_seq: intParam(url, 'as_of_commit_seq'),
      min_commit_seq: intParam(url, 'min_commit_seq'),
      timeout_ms: intParam(url, 'timeout_ms'),
      tier: (url.searchParams.get('tier') ?? undefined) as 'fast' | 'refined' | undefined,
      route: (url.searchParams.get('route') ?? undefined) as 'auto' | 'local' | undefined,
    });
    return { status: 200, body: r };
  }
  if (p === '/v1/status')
    return { status: 200, body: { ...node.status(), ...(opts.statusExtra ?? node.serviceStatus)() } };
  if (p === '/v1/cluster') return { status: 200, body: clusterView(node) };
  if (p === '/ui' || p === '/ui/')
    return {
      status: 200,
      body: CONSOLE_HTML,
      type: 'text/html; charset=utf-8',
      headers: { 'content-security-policy': CONSOLE_CSP, 'x-frame-options': 'DENY' },
    };
  if (p === '/v1/generations') {
    const active = node.engine.generations.active?.artifact_manifest_id;
    const generations = node.generations().map((g) => ({ ...g, active: g.artifact_manifest_id === active }));
    return { status: 200, body: { generations } };
  }
  if (p === '/livez') return { status: 200, body: { live: true } };
  // `/healthz` is an alias of `/readyz`: can this node serve its role right now?
  if (p === '/readyz' || p === '/healthz') {
    const { ready, reason } = node.readiness();
    const s = node.status();
    return {
      status: ready ? 200 : 503,
      body: { ready, reason, health: s.health, generation_id: s.generation_id, draining: node.draining },
    };
  }
  if (p === '/metrics')
    return { status: 200, body: await node.metrics.text(), type: 'text/plain; version=0.0.4' };
  return null;
}

/** Every error as `{"error":{"code","message","problems"?,"problem_count"?}}` with its status. */
function errorReply(err: unknown): Reply {
  if (err instanceof HttpError)
    return { status: err.status, body: { error: { code: err.code, message: err.message } } };
  if (err instanceof FsmeshError)
    return {
      status: STATUS_BY_CODE[err.code] ?? 500,
      body: {
        error: {
          code: err.code,
          message: err.message,
          ...problemsOf(err.details.problems),
          // A partly committed multi-shard write says which shards committed (docs/sharding.md).
          ...(err.code === 'partial_commit'
            ? { commit_seqs: err.details.commit_seqs, failed_shards: err.details.failed_shards }
            : {}),
        },
      },
      ...(typeof err.details.retry_after_s === 'number'
        ? { headers: { 'retry-after': String(err.details.retry_after_s) } }
        : {}),
    };
  return { status: 500, body: { error: { code: 'internal', message: (err as Error).message } } };
}

export function createHttpHandler(node: FsmeshNode, opts: HttpOptions = {}) {
  const limit = opts.max_body_bytes ?? HTTP_DEFAULTS.max_body_bytes;
  const streams = new EventStreams(HTTP_DEFAULTS.max_event_streams);
  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    try {
      const url = parseUrl(req.url);
      const p = url.pathname;
      guardRequest(req, p, opts.security ?? {});
      if (opts.extraRoutes && (await opts.extraRoutes(req, res, url))) return;
      let r = await writeRoute(node, req, p, limit);
      if (!r && req.method !== 'GET')
        throw new HttpError(
          p.startsWith('/v1/') || OPEN_ROUTES.includes(p) ? 405 : 404,
          'not_found',
          `${req.method} ${p} is not a route`,
        );
      if (!r && p === '/v1/events') {
        const recent = Math.min(200, intParam(url, 'recent') ?? 50);
        if (streams.serve(node, req, res, recent)) return;
        throw new HttpError(
          503,
          'unavailable',
          `too many event streams open (${streams.count}); retry later`,
        );
      }
      r ??= await readRoute(node, opts, url);
      if (!r) throw new HttpError(404, 'not_found', `no route ${p}`);
      return send(res, r.status, r.body, r.type, r.headers);
    } catch (err) {
      // Answer an oversized body only once the client has finished sending it (bounded), so it
      // reads the 413 instead of a reset while still writing (EPIPE).
      if (err instanceof HttpError && err.status === 413) await drainRequest(req);
      const r = errorReply(err);
      return send(res, r.status, r.body, undefined, r.headers);
    }
  };
  /** End the open event streams (the server is stopping). */
  return Object.assign(handler, { closeStreams: () => streams.closeAll() });
}

export async function startHttpServer(
  node: FsmeshNode,
  opts: HttpOptions = {},
): Promise<{ server: http.Server; url: string; close(): Promise<void> }> {
  const handler = createHttpHandler(node, opts);
  let closing = false;
  const server = http.createServer((req, res) => {
    // While stopping, every answer closes its connection: a keep-alive client that sends request
    // after request must not hold the shutdown open (seen in chaos runs: a SIGTERM took minutes).
    if (closing) res.setHeader('connection', 'close');
    void handler(req, res);
  });
  server.requestTimeout = HTTP_DEFAULTS.request_timeout_ms;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? HTTP_DEFAULTS.port, opts.host ?? HTTP_DEFAULTS.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    server,
    url: `http://${addr.address}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Finish in-flight requests, refuse new ones; past the drain deadline, cut what is left.
        closing = true;
        handler.closeStreams();
        const deadline = setTimeout(() => server.closeAllConnections(), HTTP_DEFAULTS.shutdown_grace_ms);
        deadline.unref();
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
