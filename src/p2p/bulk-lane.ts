/**
 * The bulk lane: large request/response exchanges (symbol and capsule answers) over a TLS 1.2
 * connection keyed by a one-use pre-shared key, beside libp2p. Measured on loopback (2 cores):
 * libp2p streams (JS Noise, yamux, pnet) carry 80–260 MB/s; node:tls (OpenSSL AES-GCM) ~1.1 GB/s.
 *
 * Access is granted over libp2p, never on the lane itself: a peer asks `/fsmesh/bulk-ticket/1.0.0`
 * on its authenticated (Noise, and pnet with a cluster key) connection and gets a ticket — the
 * lane's port, a random identity and a random 32-byte key — bound to its peer id, valid for one
 * connection within BULK_LIMITS.ticket_ttl_ms. Every request on that connection is attributed to
 * that peer. Keys are never stored and never reused (no forward-secrecy loss: the ticket itself
 * travelled inside Noise). A peer that cannot reach the lane (firewall, older version) is asked
 * over libp2p streams instead, as before. Byte layout: docs/protocols.md "Bulk lane".
 *
 * Length: ~460 lines because it holds both ends of the lane (server: tickets, handshake, requests;
 * client: connections per peer, exchanges, fallback), which share its wire format and limits.
 */
import { randomBytes } from 'node:crypto';
import * as tls from 'node:tls';
import { FsmeshError } from '../core/errors.ts';
import { servedFrames } from '../core/frame-pool.ts';
import type { Clock } from '../runtime/index.ts';
import { coalesceFrames, errorFrame, FrameDecoder, frame, throwIfError } from './framing.ts';

export const BULK_TICKET_PROTOCOL = '/fsmesh/bulk-ticket/1.0.0';
/** PSK suites only (no certificates): AES-GCM where the CPU has it, ChaCha20 otherwise. */
const CIPHERS = 'PSK-AES128-GCM-SHA256:PSK-CHACHA20-POLY1305';

export const BULK_LIMITS = {
  ticket_ttl_ms: 10_000,
  tickets_max: 256,
  tickets_per_peer_max: 16,
  connections_max: 64,
  handshake_timeout_ms: 5_000,
  /** A connection with no request for this long is closed (the client drops its idle ones sooner). */
  server_idle_ms: 30_000,
  client_idle_ms: 20_000,
  protocol_id_max_bytes: 256,
  request_max_bytes: 64 << 10,
  /** Frames in one answer (an answer's bytes are bounded by the caller's max_response_bytes). */
  answer_frames_max: 1 << 16,
  /** Exchanges in flight to one peer (each on its own connection); more wait for one to finish. */
  connections_per_peer_max: 8,
  /** After a failed connect or ticket, a peer is asked over libp2p streams for this long. */
  down_after_failure_ms: 30_000,
} as const;

export interface BulkTicket {
  port: number;
  identity: string;
  /** Hex of the 32-byte key. */
  key: string;
}

type Handler = (protocol: string, request: Uint8Array, from: string) => Promise<Uint8Array[]>;

const utf8 = new TextEncoder();
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Write buffers, waiting for drain; rejects if the socket closes first. A pooled answer frame goes
 * back to its pool once the socket has written it (its write callback: the TLS layer is done with
 * the bytes); nothing else here keeps it.
 */
async function writeAll(socket: tls.TLSSocket, bufs: Iterable<Uint8Array>): Promise<void> {
  for (const b of bufs) {
    if (socket.destroyed) throw new FsmeshError('unavailable', 'bulk lane closed');
    if (!socket.write(b, (err) => err || servedFrames.give(b)))
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new FsmeshError('unavailable', 'bulk lane closed'));
        socket.once('close', onClose);
        socket.once('drain', () => {
          socket.off('close', onClose);
          resolve();
        });
      });
  }
}

/** A socket chunk as a plain Uint8Array view: frames keep Uint8Array semantics (slice copies). */
function plain(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function countFrame(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return frame(b);
}

/** The lane's server: issues tickets to authenticated peers and answers their requests. */
export class BulkLaneServer {
  private server: tls.Server | null = null;
  private readonly tickets = new Map<string, { peer: string; key: Buffer; expires_ms: number }>();
  /** The peer each handshake's ticket named, by socket (set in the PSK callback). */
  private readonly peerOf = new WeakMap<object, string>();
  private readonly sockets = new Set<tls.TLSSocket>();
  /** Requests answered (tests and benchmarks). */
  served = 0;

  private readonly o: {
    host: string;
    /** 0: one the OS picks. */
    port: number;
    protocols: ReadonlySet<string>;
    handler: Handler;
    /** A started request must be complete within this. */
    request_timeout_ms: number;
    /** Ticket lifetimes (monotonic). */
    clock: Clock;
  };

  constructor(o: BulkLaneServer['o']) {
    this.o = o;
  }

  async start(): Promise<void> {
    const server = tls.createServer(
      {
        ciphers: CIPHERS,
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.2',
        handshakeTimeout: BULK_LIMITS.handshake_timeout_ms,
        pskCallback: (socket, identity) => this.redeem(socket, identity),
      },
      (socket) => this.serve(socket),
    );
    server.maxConnections = BULK_LIMITS.connections_max;
    // A failed handshake (unknown, expired or used ticket; not TLS at all) only closes that socket.
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** A one-use ticket for `peer` (authenticated by the libp2p connection it asked on). */
  issue(peer: string): BulkTicket {
    const now = this.o.clock.monotonicMs();
    for (const [id, t] of this.tickets) if (t.expires_ms <= now) this.tickets.delete(id);
    let mine = 0;
    for (const t of this.tickets.values()) if (t.peer === peer) mine++;
    if (mine >= BULK_LIMITS.tickets_per_peer_max || this.tickets.size >= BULK_LIMITS.tickets_max)
      throw new FsmeshError('busy', 'too many unused bulk lane tickets');
    // Secrets, not simulation state: from the OS's CSPRNG, never from the node's seeded random.
    const identity = randomBytes(16).toString('hex');
    const key = randomBytes(32);
    this.tickets.set(identity, { peer, key, expires_ms: now + BULK_LIMITS.ticket_ttl_ms });
    return { port: this.port, identity, key: key.toString('hex') };
  }

  private redeem(socket: object, identity: string): Buffer | null {
    const t = this.tickets.get(identity);
    this.tickets.delete(identity); // one use, whatever happens next
    if (!t || t.expires_ms <= this.o.clock.monotonicMs()) return null;
    this.peerOf.set(socket, t.peer);
    return t.key;
  }

  private serve(socket: tls.TLSSocket): void {
    const from = this.peerOf.get(socket);
    if (!from) return void socket.destroy();
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    socket.setTimeout(BULK_LIMITS.server_idle_ms, () => socket.destroy());
    const dec = new FrameDecoder(BULK_LIMITS.request_max_bytes);
    const pending: Uint8Array[] = [];
    let busy = false;
    let deadline: ReturnType<typeof setTimeout> | null = null;
    const next = async () => {
      while (!busy && pending.length >= 2 && !socket.destroyed) {
        busy = true;
        const [p, req] = pending.splice(0, 2);
        try {
          await writeAll(socket, await this.answer(p, req, from));
        } catch {
          socket.destroy();
        }
        busy = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        pending.push(...dec.push(plain(chunk)));
      } catch {
        return void socket.destroy(); // a request frame over the limit: not a client of ours
      }
      // One request at a time: a client that runs ahead by more than one is not following the protocol.
      if (pending.length > 4) return void socket.destroy();
      if (deadline) clearTimeout(deadline);
      deadline =
        dec.pending > 0 || pending.length % 2 === 1
          ? setTimeout(() => socket.destroy(), this.o.request_timeout_ms)
          : null;
      void next();
    });
    socket.on('close', () => deadline && clearTimeout(deadline));
  }

  /** One answer: the frame count, then the frames (an error is one error frame). */
  private async answer(p: Uint8Array, req: Uint8Array, from: string): Promise<Uint8Array[]> {
    let out: Uint8Array[];
    try {
      let protocol = '';
      try {
        protocol = p.length <= BULK_LIMITS.protocol_id_max_bytes ? fatalUtf8.decode(p) : '';
      } catch {
        // not UTF-8: refused below
      }
      if (!this.o.protocols.has(protocol))
        throw new FsmeshError('invalid_input', 'bulk lane: not a protocol served here');
      out = await this.o.handler(protocol, req, from);
      this.served++;
    } catch (err) {
      out = [errorFrame(err)];
    }
    return [countFrame(out.length), ...coalesceFrames(out, 1 << 20)];
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** One client connection: one exchange at a time. */
class BulkConnection {
  private onChunk: ((chunk: Uint8Array) => void) | null = null;
  private onEnd: (() => void) | null = null;
  /** Undo what keeping it idle attached (set while it is in the idle list). */
  untake: () => void = () => {};
  readonly socket: tls.TLSSocket;
  constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => (this.onChunk ? this.onChunk(plain(c)) : socket.destroy()));
    socket.on('close', () => this.onEnd?.());
    socket.on('error', () => {});
  }

  /** Send one request; the answer's frames. Errors leave the connection destroyed. */
  exchange(protocol: string, req: Uint8Array, maxBytes: number, timeoutMs: number): Promise<Uint8Array[]> {
    const { socket } = this;
    return new Promise((resolve, reject) => {
      const dec = new FrameDecoder();
      const frames: Uint8Array[] = [];
      let count = -1;
      let total = 0;
      const finish = (err: Error | null) => {
        clearTimeout(timer);
        this.onChunk = null;
        this.onEnd = null;
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve(frames);
      };
      const timer = setTimeout(
        () =>
          finish(new FsmeshError('timeout', `${protocol}: no complete bulk answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.onEnd = () => finish(new FsmeshError('unavailable', `${protocol}: bulk lane closed mid-answer`));
      this.onChunk = (chunk) => {
        total += chunk.length;
        if (total > maxBytes + 8)
          return finish(new FsmeshError('invalid_input', `response exceeds ${maxBytes} bytes`));
        let got: Uint8Array[];
        try {
          got = dec.push(chunk);
        } catch (err) {
          return finish(err as Error);
        }
        for (const f of got) {
          if (count >= 0) frames.push(f);
          else if (f.length !== 4)
            return finish(new FsmeshError('corrupt_data', 'bulk answer: bad count frame'));
          else count = new DataView(f.buffer, f.byteOffset, 4).getUint32(0, true);
          if (count > BULK_LIMITS.answer_frames_max)
            return finish(new FsmeshError('invalid_input', `bulk answer of ${count} frames`));
        }
        if (count >= 0 && frames.length > count)
          return finish(new FsmeshError('corrupt_data', 'bulk answer: more frames than announced'));
        if (count >= 0 && frames.length === count) {
          if (dec.pending > 0) return finish(new FsmeshError('corrupt_data', 'bulk answer: trailing bytes'));
          finish(null);
        }
      };
      writeAll(socket, [frame(utf8.encode(protocol)), frame(req)]).catch((err) => finish(err as Error));
    });
  }
}

interface PeerLanes {
  idle: BulkConnection[];
  down_until_ms: number;
  in_flight: number;
  waiters: (() => void)[];
}

export interface BulkRequestOptions {
  timeout_ms: number;
  max_response_bytes: number;
}

/**
 * The lane's client: a few idle connections per peer, tickets asked over libp2p. `request` returns
 * null when the peer's lane cannot be reached (the caller then uses libp2p streams).
 */
export class BulkLaneClient {
  private readonly peers = new Map<string, PeerLanes>();
  private closed = false;
  /** Exchanges answered over the lane, and requests sent back to libp2p (tests, benchmarks). */
  requests = 0;
  fallbacks = 0;

  private readonly ticket: (peer: string, timeoutMs: number) => Promise<BulkTicket & { host: string }>;
  private readonly clock: Clock;
  constructor(ticket: BulkLaneClient['ticket'], clock: Clock) {
    this.ticket = ticket;
    this.clock = clock;
  }

  private state(peer: string) {
    let s = this.peers.get(peer);
    if (!s) {
      // Peers come and go: forget the ones with nothing open, waiting or remembered as down.
      if (this.peers.size >= 1024)
        for (const [p, x] of this.peers)
          if (
            !x.idle.length &&
            !x.in_flight &&
            !x.waiters.length &&
            x.down_until_ms <= this.clock.monotonicMs()
          )
            this.peers.delete(p);
      s = { idle: [], down_until_ms: 0, in_flight: 0, waiters: [] };
      this.peers.set(peer, s);
    }
    return s;
  }

  async request(
    peer: string,
    protocol: string,
    req: Uint8Array,
    o: BulkRequestOptions,
  ): Promise<Uint8Array[] | null> {
    const s = this.state(peer);
    if (this.closed || s.down_until_ms > this.clock.monotonicMs()) return null;
    const started = this.clock.monotonicMs();
    await this.slot(s, o.timeout_ms, protocol);
    let conn: BulkConnection | undefined;
    try {
      conn = s.idle.pop();
      conn?.untake();
      if (!conn) {
        try {
          conn = await this.connect(peer, o.timeout_ms);
        } catch {
          // Unreachable lane (firewall, an older peer, no ticket): libp2p streams for a while.
          s.down_until_ms = this.clock.monotonicMs() + BULK_LIMITS.down_after_failure_ms;
          this.fallbacks++;
          return null;
        }
      }
      const left = Math.max(1, o.timeout_ms - (this.clock.monotonicMs() - started));
      const frames = await conn.exchange(protocol, req, o.max_response_bytes, left);
      this.requests++;
      this.keep(s, conn);
      if (frames.length === 1) throwIfError(frames[0]);
      return frames;
    } finally {
      s.in_flight--;
      s.waiters.shift()?.();
    }
  }

  /** Wait for one of the peer's connections_per_peer_max exchange slots (within the deadline). */
  private async slot(s: PeerLanes, timeoutMs: number, protocol: string): Promise<void> {
    if (s.in_flight < BULK_LIMITS.connections_per_peer_max) {
      s.in_flight++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        s.in_flight++;
        resolve();
      };
      const timer = setTimeout(() => {
        s.waiters.splice(s.waiters.indexOf(wake), 1);
        reject(new FsmeshError('timeout', `${protocol}: no bulk lane free within ${timeoutMs} ms`));
      }, timeoutMs);
      s.waiters.push(wake);
    });
  }

  /** Back to the idle list; closed when the peer closes it or after client_idle_ms unused. */
  private keep(s: PeerLanes, conn: BulkConnection): void {
    if (this.closed || s.idle.length >= BULK_LIMITS.connections_per_peer_max || conn.socket.destroyed)
      return void conn.socket.destroy();
    const drop = () => {
      const i = s.idle.indexOf(conn);
      if (i >= 0) s.idle.splice(i, 1);
      conn.socket.destroy();
    };
    conn.socket.once('close', drop);
    conn.socket.setTimeout(BULK_LIMITS.client_idle_ms, drop);
    conn.untake = () => {
      conn.socket.off('close', drop);
      conn.socket.off('timeout', drop);
      conn.socket.setTimeout(0);
    };
    s.idle.push(conn);
  }

  private async connect(peer: string, timeoutMs: number): Promise<BulkConnection> {
    const t = await this.ticket(peer, Math.min(timeoutMs, BULK_LIMITS.handshake_timeout_ms));
    const key = Buffer.from(t.key, 'hex');
    const socket = tls.connect({
      host: t.host,
      port: t.port,
      ciphers: CIPHERS,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      pskCallback: () => ({ psk: key, identity: t.identity }),
      checkServerIdentity: () => undefined, // the key is the identity: only the ticket's issuer has it
    });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          socket.destroy();
          reject(new FsmeshError('timeout', 'bulk lane handshake timed out'));
        },
        Math.min(timeoutMs, BULK_LIMITS.handshake_timeout_ms),
      );
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return new BulkConnection(socket);
  }

  close(): void {
    this.closed = true;
    for (const s of this.peers.values()) for (const c of s.idle.splice(0)) c.socket.destroy();
  }
}
