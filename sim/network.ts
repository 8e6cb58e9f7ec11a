/**
 * Simulated network implementing the Transport interface: every message is delivered through the
 * virtual clock after a seeded latency; messages can be dropped or duplicated; links can be cut
 * (partitions, including one-way) and healed. Topic validators run before delivery as in gossipsub.
 *
 * Connections are modelled as in libp2p: two nodes talk only once one has dialled the other; a
 * connection is lost when either node stops or crashes, or a partition cuts the link, and healing
 * the link does not restore it — somebody has to dial again (the redial policy under test).
 */
import { FsmeshError } from '../src/core/errors.ts';
import type { GossipMessage, Random, Transport, ValidationResult } from '../src/runtime/index.ts';
import type { VirtualClock } from './clock.ts';

export interface NetworkFaults {
  drop: number;
  duplicate: number;
  min_latency_ms: number;
  max_latency_ms: number;
}

export class SimNetwork {
  readonly clock: VirtualClock;
  readonly random: Random;
  faults: NetworkFaults = { drop: 0, duplicate: 0, min_latency_ms: 1, max_latency_ms: 10 };
  private readonly nodes = new Map<string, SimTransport>();
  private readonly cut = new Set<string>(); // "a>b": a cannot reach b
  private readonly conns = new Set<string>(); // "a|b" with a < b: an open connection
  /** Paused nodes (SIGSTOP, long GC): messages to or from them wait until they resume. */
  private readonly paused = new Map<string, (() => void)[]>();
  messages = 0;
  dropped = 0;

  constructor(clock: VirtualClock, random: Random) {
    this.clock = clock;
    this.random = random;
  }

  transport(peerId: string): SimTransport {
    const t = new SimTransport(this, peerId);
    return t;
  }
  register(t: SimTransport): void {
    this.nodes.set(t.peerId, t);
  }
  unregister(t: SimTransport): void {
    if (this.nodes.get(t.peerId) !== t) return;
    for (const p of this.connectedTo(t.peerId)) this.disconnect(t.peerId, p);
    this.nodes.delete(t.peerId);
  }
  private key(a: string, b: string): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`;
  }
  private connectedTo(a: string): string[] {
    const out: string[] = [];
    for (const k of this.conns) {
      const [x, y] = k.split('|');
      if (x === a) out.push(y);
      else if (y === a) out.push(x);
    }
    return out.sort();
  }
  /** A dial: opens a connection when both ends are up and reach each other. */
  connect(a: string, b: string): boolean {
    if (!this.reachable(a, b) || !this.reachable(b, a)) return false;
    const k = this.key(a, b);
    if (this.conns.has(k)) return true;
    this.conns.add(k);
    this.nodes.get(a)?.peerEvent(b, 'connect');
    this.nodes.get(b)?.peerEvent(a, 'connect');
    return true;
  }
  private disconnect(a: string, b: string): void {
    if (!this.conns.delete(this.key(a, b))) return;
    this.nodes.get(a)?.peerEvent(b, 'disconnect');
    this.nodes.get(b)?.peerEvent(a, 'disconnect');
  }
  reachable(a: string, b: string): boolean {
    return a !== b && this.nodes.has(b) && this.nodes.has(a) && !this.cut.has(`${a}>${b}`);
  }
  partition(a: string, b: string, oneWay = false): void {
    this.cut.add(`${a}>${b}`);
    if (!oneWay) this.cut.add(`${b}>${a}`);
    // A cut link loses its connection (both directions are needed to keep one).
    this.disconnect(a, b);
  }
  heal(): void {
    this.cut.clear();
  }
  peersOf(a: string): string[] {
    return this.connectedTo(a).filter((b) => this.reachable(a, b) && this.reachable(b, a));
  }
  node(id: string): SimTransport | undefined {
    return this.nodes.get(id);
  }
  /** Schedule a delivery; returns false if the message is lost. */
  send(from: string, to: string, fn: () => void): boolean {
    this.messages++;
    const connected = this.conns.has(this.key(from, to));
    if (!connected || !this.reachable(from, to) || this.random.next() < this.faults.drop) {
      this.dropped++;
      return false;
    }
    const lat = () =>
      this.faults.min_latency_ms +
      this.random.int(Math.max(1, this.faults.max_latency_ms - this.faults.min_latency_ms + 1));
    this.clock.setTimeout(() => this.reachable(from, to) && this.deliver(from, to, fn), lat());
    if (this.random.next() < this.faults.duplicate)
      this.clock.setTimeout(() => this.reachable(from, to) && this.deliver(from, to, fn), lat());
    return true;
  }
  /** A paused end holds the message (the socket buffers it) until it resumes. */
  private deliver(from: string, to: string, fn: () => void): void {
    const held = this.paused.get(to) ?? this.paused.get(from);
    if (held) held.push(() => this.reachable(from, to) && this.deliver(from, to, fn));
    else fn();
  }
  pause(peer: string): void {
    if (!this.paused.has(peer)) this.paused.set(peer, []);
  }
  resume(peer: string): void {
    const held = this.paused.get(peer);
    this.paused.delete(peer);
    for (const fn of held ?? []) this.clock.setTimeout(fn, 0);
  }
}

export class SimTransport implements Transport {
  readonly peerId: string;
  private readonly net: SimNetwork;
  private readonly subs = new Map<
    string,
    {
      on: (m: GossipMessage) => void;
      validate?: (m: GossipMessage) => ValidationResult | Promise<ValidationResult>;
    }
  >();
  private readonly handlers = new Map<string, (req: Uint8Array, from: string) => Promise<Uint8Array[]>>();
  private started = false;
  rejected = 0;

  constructor(net: SimNetwork, peerId: string) {
    this.net = net;
    this.peerId = peerId;
  }
  multiaddrs(): string[] {
    return [`/sim/${this.peerId}/p2p/${this.peerId}`];
  }
  async start(): Promise<void> {
    this.started = true;
    this.net.register(this);
  }
  async stop(): Promise<void> {
    this.started = false;
    this.net.unregister(this);
  }
  subscribe(
    topic: string,
    on: (m: GossipMessage) => void,
    validate?: (m: GossipMessage) => ValidationResult | Promise<ValidationResult>,
  ): void {
    this.subs.set(topic, { on, validate });
  }
  async publish(topic: string, data: Uint8Array): Promise<void> {
    if (!this.started) return;
    for (const p of this.net.peersOf(this.peerId)) {
      this.net.send(
        this.peerId,
        p,
        () => void this.net.node(p)?.deliver({ topic, from: this.peerId, data: data.slice() }),
      );
    }
  }
  private async deliver(m: GossipMessage): Promise<void> {
    const s = this.subs.get(m.topic);
    if (!s || !this.started) return;
    const v = s.validate ? await s.validate(m) : 'accept';
    if (v === 'accept') s.on(m);
    else if (v === 'reject') this.rejected++;
  }
  handle(protocol: string, handler: (request: Uint8Array, from: string) => Promise<Uint8Array[]>): void {
    this.handlers.set(protocol, handler);
  }
  request(
    peer: string,
    protocol: string,
    request: Uint8Array,
    opts: { timeout_ms?: number; max_response_bytes?: number } = {},
  ): Promise<Uint8Array[]> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = this.net.clock.setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new FsmeshError('timeout', `request ${protocol} to ${peer} timed out`));
      }, opts.timeout_ms ?? 30_000);
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        fn();
      };
      this.net.send(this.peerId, peer, () => {
        const h = this.net.node(peer)?.handlers.get(protocol);
        if (!h)
          return void this.net.send(peer, this.peerId, () =>
            finish(() => reject(new FsmeshError('not_found', `${peer} does not speak ${protocol}`))),
          );
        h(request.slice(), this.peerId).then(
          (frames) =>
            this.net.send(peer, this.peerId, () =>
              finish(() => {
                const size = frames.reduce((n, f) => n + f.length, 0);
                if (size > (opts.max_response_bytes ?? Number.POSITIVE_INFINITY))
                  return reject(
                    new FsmeshError('invalid_input', `answer of ${size} bytes exceeds the bound`),
                  );
                resolve(frames.map((f) => f.slice()));
              }),
            ),
          (err) => this.net.send(peer, this.peerId, () => finish(() => reject(err))),
        );
      });
    });
  }
  peers(): string[] {
    return this.started ? this.net.peersOf(this.peerId) : [];
  }
  async peerAddrs(): Promise<string[]> {
    return this.peers().map((p) => `/sim/${p}/p2p/${p}`);
  }
  private readonly peerListeners = new Set<(peer: string, e: 'connect' | 'disconnect') => void>();
  onPeer(fn: (peer: string, e: 'connect' | 'disconnect') => void): () => void {
    this.peerListeners.add(fn);
    return () => this.peerListeners.delete(fn);
  }
  peerEvent(peer: string, e: 'connect' | 'disconnect'): void {
    for (const l of this.peerListeners) l(peer, e);
  }
  async dial(addr: string): Promise<void> {
    const peer = addr.split('/p2p/')[1];
    if (!this.started || !peer || !this.net.connect(this.peerId, peer))
      throw new FsmeshError('timeout', `dial ${addr}: unreachable`);
  }
}
