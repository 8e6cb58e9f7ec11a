/**
 * Transport over libp2p 3: TCP, noise, yamux, identify, gossipsub (@libp2p/gossipsub — the
 * @chainsafe package is built for libp2p 2, DESIGN.md §5), bootstrap from a seed list, and an
 * optional cluster pre-shared key (@libp2p/pnet) so only cluster members can connect.
 */

import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { bootstrap } from '@libp2p/bootstrap';
import { type GossipSub, gossipsub, TopicValidatorResult } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { CLUSTER_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';
import {
  type Clock,
  type GossipMessage,
  systemClock,
  type Transport,
  type ValidationResult,
} from '../runtime/index.ts';
import { BULK_TICKET_PROTOCOL, BulkLaneClient, BulkLaneServer, type BulkTicket } from './bulk-lane.ts';
import { coalesceFrames, errorFrame, FrameDecoder, SEND_BATCH_BYTES, throwIfError } from './framing.ts';
import { PROTO } from './protocols.ts';

export interface Libp2pTransportOptions {
  privateKey: PrivateKey;
  listen: string[];
  /** Advertised instead of the listen addresses (identify, `getMultiaddrs`); default: the listen ones. */
  announce?: string[];
  seeds: string[];
  /** Contents of a pnet swarm key file (`/key/swarm/psk/1.0.0/` format). */
  cluster_key?: Uint8Array;
  max_message_bytes?: number;
  /** An inbound stream must deliver its request frame within this (default CLUSTER_DEFAULTS). */
  inbound_request_timeout_ms?: number;
  /**
   * Answers of these protocols travel over the bulk lane (src/p2p/bulk-lane.ts) when the peer's
   * lane is reachable (default: symbols and capsules); `false` turns the lane off (serving and
   * asking: every exchange stays on libp2p streams).
   */
  bulk_lane?: boolean;
  bulk_protocols?: string[];
  /** The lane's TCP port on the first listen host (default 0: one the OS picks). */
  bulk_lane_port?: number;
  /** The node's clock (bulk lane tickets and back-off); default the system clock. */
  clock?: Clock;
}

const DEFAULT_BULK_PROTOCOLS = [PROTO.symbols, PROTO.capsules];

const RESULT: Record<ValidationResult, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  reject: TopicValidatorResult.Reject,
  ignore: TopicValidatorResult.Ignore,
};

async function readAll(stream: Stream, maxBytes: number): Promise<Uint8Array[]> {
  const dec = new FrameDecoder();
  const frames: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    total += bytes.length;
    if (total > maxBytes) throw new FsmeshError('invalid_input', `response exceeds ${maxBytes} bytes`);
    frames.push(...dec.push(bytes));
  }
  if (dec.pending) throw new FsmeshError('corrupt_data', 'stream ended inside a frame');
  return frames;
}

async function sendAll(stream: Stream, frames: Uint8Array[]): Promise<void> {
  // Many small frames (a symbols answer is ~1,000 of 4 KiB) are written in batches of the same
  // bytes: one muxer frame and one cipher message per ~60 KiB instead of per symbol.
  for (const batch of coalesceFrames(frames, SEND_BATCH_BYTES)) {
    if (!stream.send(batch)) await stream.onDrain();
  }
}

export class Libp2pTransport implements Transport {
  private node: Libp2p<{ pubsub: GossipSub }> | null = null;
  private readonly opts: Libp2pTransportOptions;
  private readonly subs = new Map<string, (m: GossipMessage) => void>();
  private readonly validators = new Map<
    string,
    (m: GossipMessage) => ValidationResult | Promise<ValidationResult>
  >();
  private readonly handlers = new Map<string, (req: Uint8Array, from: string) => Promise<Uint8Array[]>>();
  private readonly peerListeners = new Set<(peer: string, e: 'connect' | 'disconnect') => void>();
  private readonly bulkProtocols: ReadonlySet<string>;
  private readonly clock: Clock;
  private bulkServer: BulkLaneServer | null = null;
  private bulkClient: BulkLaneClient | null = null;
  readonly peerId: string;

  constructor(opts: Libp2pTransportOptions) {
    this.opts = opts;
    this.peerId = peerIdFromPrivateKey(opts.privateKey).toString();
    this.clock = opts.clock ?? systemClock;
    this.bulkProtocols = new Set(
      opts.bulk_lane === false ? [] : (opts.bulk_protocols ?? DEFAULT_BULK_PROTOCOLS),
    );
  }

  /** Bulk lane figures: requests served and asked over it, and asks sent back to libp2p streams. */
  bulkStats(): { served: number; requests: number; fallbacks: number } {
    return {
      served: this.bulkServer?.served ?? 0,
      requests: this.bulkClient?.requests ?? 0,
      fallbacks: this.bulkClient?.fallbacks ?? 0,
    };
  }

  private get n(): Libp2p<{ pubsub: GossipSub }> {
    if (!this.node) throw new FsmeshError('internal', 'transport not started');
    return this.node;
  }

  async start(): Promise<void> {
    const maxMsg = this.opts.max_message_bytes ?? 1 << 20;
    this.node = (await createLibp2p({
      privateKey: this.opts.privateKey,
      addresses: {
        listen: this.opts.listen,
        ...(this.opts.announce?.length ? { announce: this.opts.announce } : {}),
      },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      ...(this.opts.cluster_key ? { connectionProtector: preSharedKey({ psk: this.opts.cluster_key }) } : {}),
      peerDiscovery: this.opts.seeds.length ? [bootstrap({ list: this.opts.seeds, timeout: 50 })] : [],
      services: {
        identify: identify(),
        pubsub: gossipsub({
          allowPublishToZeroTopicPeers: true,
          emitSelf: false,
          maxInboundDataLength: maxMsg,
          heartbeatInterval: 200,
        }),
      },
    })) as unknown as Libp2p<{ pubsub: GossipSub }>;
    const n = this.node;
    n.services.pubsub.addEventListener('message', (evt) => {
      const m = evt.detail;
      const from = m.type === 'signed' ? m.from.toString() : '';
      this.subs.get(m.topic)?.({ topic: m.topic, from, data: m.data });
    });
    n.addEventListener('peer:connect', (e) =>
      this.peerListeners.forEach((l) => l(e.detail.toString(), 'connect')),
    );
    n.addEventListener('peer:disconnect', (e) =>
      this.peerListeners.forEach((l) => l(e.detail.toString(), 'disconnect')),
    );
    for (const [topic, fn] of this.subs) this.installTopic(topic, fn);
    for (const [protocol, h] of this.handlers) await this.installHandler(protocol, h);
    if (this.bulkProtocols.size)
      // A node that cannot open its lane does not start half-way: libp2p is stopped again.
      await this.startBulkLane().catch(async (err) => {
        await this.stop();
        throw err;
      });
    // Dial seeds right away as well: bootstrap discovery only tags them.
    for (const s of this.opts.seeds) void this.dial(s).catch(() => {});
  }

  private installTopic(topic: string, _fn: (m: GossipMessage) => void): void {
    const n = this.n;
    const maxMsg = this.opts.max_message_bytes ?? 1 << 20;
    n.services.pubsub.topicValidators.set(topic, async (peer, msg) => {
      if (msg.data.length > maxMsg) return TopicValidatorResult.Reject;
      const v = this.validators.get(topic);
      if (!v) return TopicValidatorResult.Accept;
      const from = msg.type === 'signed' ? msg.from.toString() : peer.toString();
      try {
        return RESULT[await v({ topic, from, data: msg.data })];
      } catch {
        return TopicValidatorResult.Reject;
      }
    });
    n.services.pubsub.subscribe(topic);
  }

  private async installHandler(
    protocol: string,
    h: (req: Uint8Array, from: string) => Promise<Uint8Array[]>,
  ): Promise<void> {
    await this.n.handle(
      protocol,
      async (stream, connection) => {
        // A peer that opens a stream and never finishes its request frame is cut off.
        const readDeadline = setTimeout(
          () => stream.abort(new FsmeshError('timeout', 'request frame not received in time')),
          this.opts.inbound_request_timeout_ms ?? CLUSTER_DEFAULTS.inbound_request_timeout_ms,
        );
        try {
          const dec = new FrameDecoder();
          let req: Uint8Array | null = null;
          for await (const chunk of stream) {
            const frames = dec.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
            if (frames.length) {
              req = frames[0];
              break;
            }
          }
          clearTimeout(readDeadline);
          if (!req) throw new FsmeshError('invalid_input', 'no request frame');
          let out: Uint8Array[];
          try {
            out = await h(req, connection.remotePeer.toString());
          } catch (err) {
            out = [errorFrame(err)];
          }
          await sendAll(stream, out);
          await stream.close();
        } catch (err) {
          stream.abort(err as Error);
        } finally {
          clearTimeout(readDeadline);
        }
      },
      { maxInboundStreams: 64, runOnLimitedConnection: false },
    );
  }

  /** The lane's server on the first listen address's host, its ticket protocol, and the client. */
  private async startBulkLane(): Promise<void> {
    const first = this.opts.listen.map(hostOf).find((h) => h !== null);
    if (!first) return;
    const server = new BulkLaneServer({
      host: first,
      port: this.opts.bulk_lane_port ?? 0,
      protocols: this.bulkProtocols,
      handler: async (protocol, req, from) => {
        const h = this.handlers.get(protocol);
        if (!h) throw new FsmeshError('not_found', `no handler for ${protocol}`);
        return h(req, from);
      },
      request_timeout_ms: this.opts.inbound_request_timeout_ms ?? CLUSTER_DEFAULTS.inbound_request_timeout_ms,
      clock: this.clock,
    });
    await server.start().catch((err: Error) => {
      throw new FsmeshError(
        'invalid_input',
        `bulk lane: cannot listen on ${first}:${this.opts.bulk_lane_port ?? 0} (${err.message})`,
      );
    });
    this.bulkServer = server;
    // Tickets only over libp2p: the asking peer is the connection's authenticated peer.
    this.handle(BULK_TICKET_PROTOCOL, async (_req, from) => [
      new TextEncoder().encode(JSON.stringify(server.issue(from))),
    ]);
    this.bulkClient = new BulkLaneClient((peer, timeoutMs) => this.bulkTicket(peer, timeoutMs), this.clock);
  }

  private async bulkTicket(peer: string, timeoutMs: number): Promise<BulkTicket & { host: string }> {
    const conn = this.n.getConnections(peerIdFromString(peer) as PeerId)[0];
    if (!conn) throw new FsmeshError('unavailable', `not connected to ${peer}`);
    const host = hostOf(conn.remoteAddr.toString());
    if (!host) throw new FsmeshError('unavailable', `no IP address for ${peer}`);
    const [f] = await this.requestStream(peer, BULK_TICKET_PROTOCOL, new Uint8Array(0), {
      timeout_ms: timeoutMs,
      max_response_bytes: 4096,
    });
    const t = JSON.parse(new TextDecoder().decode(f)) as BulkTicket;
    if (
      !Number.isInteger(t.port) ||
      t.port < 1 ||
      t.port > 65_535 ||
      !/^[0-9a-f]{32}$/.test(String(t.identity)) ||
      !/^[0-9a-f]{64}$/.test(String(t.key))
    )
      throw new FsmeshError('invalid_input', `bulk lane ticket from ${peer} is malformed`);
    return { port: t.port, identity: t.identity, key: t.key, host };
  }

  async stop(): Promise<void> {
    this.bulkClient?.close();
    this.bulkClient = null;
    await this.bulkServer?.stop();
    this.bulkServer = null;
    await this.node?.stop();
    this.node = null;
  }

  multiaddrs(): string[] {
    return this.n.getMultiaddrs().map((a) => a.toString());
  }

  subscribe(
    topic: string,
    onMessage: (m: GossipMessage) => void,
    validate?: (m: GossipMessage) => ValidationResult | Promise<ValidationResult>,
  ): void {
    this.subs.set(topic, onMessage);
    if (validate) this.validators.set(topic, validate);
    if (this.node) this.installTopic(topic, onMessage);
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    if (!this.node) return; // stopped: nothing to publish to
    await this.node.services.pubsub.publish(topic, data);
  }

  handle(protocol: string, handler: (request: Uint8Array, from: string) => Promise<Uint8Array[]>): void {
    this.handlers.set(protocol, handler);
    if (this.node) void this.installHandler(protocol, handler);
  }

  async request(
    peer: string,
    protocol: string,
    request: Uint8Array,
    opts: { timeout_ms?: number; max_response_bytes?: number } = {},
  ): Promise<Uint8Array[]> {
    if (this.bulkClient && this.bulkProtocols.has(protocol)) {
      const timeoutMs = opts.timeout_ms ?? CLUSTER_DEFAULTS.request_timeout_ms;
      const started = this.clock.monotonicMs();
      const frames = await this.bulkClient.request(peer, protocol, request, {
        timeout_ms: timeoutMs,
        max_response_bytes: opts.max_response_bytes ?? CLUSTER_DEFAULTS.max_response_bytes,
      });
      if (frames) return frames;
      // The lane could not be reached: libp2p streams, within what is left of the same deadline.
      // Whole milliseconds: AbortSignal.timeout refuses fractions.
      const left = Math.max(1, Math.ceil(timeoutMs - (this.clock.monotonicMs() - started)));
      return this.requestStream(peer, protocol, request, { ...opts, timeout_ms: left });
    }
    return this.requestStream(peer, protocol, request, opts);
  }

  /** One exchange over a libp2p stream. */
  private async requestStream(
    peer: string,
    protocol: string,
    request: Uint8Array,
    opts: { timeout_ms?: number; max_response_bytes?: number } = {},
  ): Promise<Uint8Array[]> {
    // One deadline for the whole exchange (connect, send, first byte, last byte): a silent or slow
    // peer cannot stall the caller, and the response is bounded by what the caller asked for.
    const deadlineMs = opts.timeout_ms ?? CLUSTER_DEFAULTS.request_timeout_ms;
    const signal = AbortSignal.timeout(deadlineMs);
    const timeout = () =>
      new FsmeshError('timeout', `${protocol} to ${peer}: no complete answer within ${deadlineMs} ms`);
    let stream: Stream | null = null;
    const onAbort = () => stream?.abort(timeout());
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      stream = await this.n.dialProtocol(peerIdFromString(peer) as PeerId, protocol, { signal });
      await sendAll(stream, [request]);
      await stream.close({ signal });
      const frames = await readAll(stream, opts.max_response_bytes ?? CLUSTER_DEFAULTS.max_response_bytes);
      if (frames.length === 1) throwIfError(frames[0]);
      return frames;
    } catch (err) {
      if (signal.aborted) throw timeout();
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  peers(): string[] {
    return this.node ? this.node.getPeers().map((p) => p.toString()) : [];
  }

  async peerAddrs(): Promise<string[]> {
    const out: string[] = [];
    if (!this.node) return out;
    for (const p of this.node.getPeers()) {
      try {
        const info = await this.n.peerStore.get(p);
        for (const a of info.addresses) out.push(`${a.multiaddr.toString()}/p2p/${p.toString()}`);
      } catch {
        // not in the peer store yet
      }
    }
    return out;
  }

  onPeer(fn: (peer: string, event: 'connect' | 'disconnect') => void): () => void {
    this.peerListeners.add(fn);
    return () => this.peerListeners.delete(fn);
  }

  async dial(addr: string): Promise<void> {
    await this.n.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) });
  }
}

/** The IP of an /ip4|/ip6/…/tcp/… multiaddr, or null. */
function hostOf(addr: string): string | null {
  const c = multiaddr(addr).getComponents();
  const ip = c.find((x) => x.name === 'ip4' || x.name === 'ip6');
  return ip?.value && c.some((x) => x.name === 'tcp') ? ip.value : null;
}
