/**
 * Request guard, before any route runs (secure by default, docs/security.md):
 * - `Host` must be an IP literal, `localhost`, or a name in `allowed_hosts` (DNS rebinding);
 * - an `Origin`, when present, must be the node's own origin (cross-site requests, CSRF);
 * - with a token configured, every `/v1/*` route needs `Authorization: Bearer <token>`
 *   (`/healthz`, `/livez`, `/readyz` and `/metrics` stay open for probes and scrapers, and `/ui`,
 *   a page without data whose own requests send the token);
 * - a POST body must be `application/json` or `application/x-ndjson`.
 */
import { timingSafeEqual } from 'node:crypto';
import type * as http from 'node:http';
import { isIP } from 'node:net';

export interface HttpSecurity {
  /** Bearer token required on /v1/* (absent: no authentication — loopback or `--insecure`). */
  token?: string;
  /** Host names (besides IP literals and localhost) this node answers to. */
  allowed_hosts?: string[];
}

export class GuardError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// `/ui` is a static page with no data in it: its requests to /v1/* carry the token.
const OPEN_PATHS = new Set(['/healthz', '/livez', '/readyz', '/metrics', '/ui', '/ui/']);
const BODY_TYPES = ['application/json', 'application/x-ndjson'];

/** `example.com:8080` → `example.com`; `[::1]:80` → `::1`. */
export function hostName(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const i = h.lastIndexOf(':');
  return i > 0 && h.indexOf(':') === i ? h.slice(0, i) : h;
}

export function guardRequest(req: http.IncomingMessage, path: string, sec: HttpSecurity): void {
  const host = req.headers.host;
  if (host !== undefined) {
    const name = hostName(host);
    const allowed = isIP(name) !== 0 || name === 'localhost' || (sec.allowed_hosts ?? []).includes(name);
    if (!allowed)
      throw new GuardError(
        403,
        'forbidden',
        `Host ${JSON.stringify(host)} is not this node's address (add it with --http-allowed-hosts)`,
      );
  }
  const origin = req.headers.origin;
  if (origin !== undefined && (host === undefined || origin.toLowerCase() !== `http://${host.toLowerCase()}`))
    throw new GuardError(403, 'forbidden', `cross-origin request from ${JSON.stringify(origin)} refused`);
  if (
    sec.token !== undefined &&
    !OPEN_PATHS.has(path) &&
    !bearerMatches(req.headers.authorization, sec.token)
  )
    throw new GuardError(
      401,
      'unauthorized',
      'missing or wrong bearer token (Authorization: Bearer <token>)',
    );
  if (req.method === 'POST') {
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      .trim()
      .toLowerCase();
    if (!BODY_TYPES.includes(type))
      throw new GuardError(
        415,
        'unsupported_media_type',
        `Content-Type ${JSON.stringify(type || '(none)')} is not accepted: send application/json or application/x-ndjson`,
      );
  }
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
