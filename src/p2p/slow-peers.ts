/**
 * Silent peers cost a deadline each time they are asked. This transport decorator remembers a peer
 * whose request timed out and, for a back-off window (1 s doubling to 10 s, on the injected clock),
 * fails further requests to it at once instead of waiting out another deadline; one success clears
 * it. Found by the simulator's hostile member: a peer that never answers symbols, manifest or
 * capsule requests slowed every replica's sync by its timeouts until the cluster could not
 * converge. Only fetches are guarded (symbols, manifests, capsules, routed searches): heads are how
 * a peer's recovery is noticed, and replication pushes keep their own retry policy. Everything but
 * `request` passes through.
 */
import { FsmeshError } from '../core/errors.ts';
import type { Clock, GossipMessage, Transport, ValidationResult } from '../runtime/index.ts';
import { PROTO } from './protocols.ts';

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10_000;
const GUARDED = new Set<string>([PROTO.symbols, PROTO.manifest, PROTO.capsules, PROTO.search]);

export class SlowPeerGuard implements Transport {
  private readonly inner: Transport;
  private readonly clock: Clock;
  private readonly slow = new Map<string, { until_ms: number; backoff_ms: number }>();

  constructor(inner: Transport, clock: Clock) {
    this.inner = inner;
    this.clock = clock;
  }

  get peerId(): string {
    return this.inner.peerId;
  }
  multiaddrs(): string[] {
    return this.inner.multiaddrs();
  }
  start(): Promise<void> {
    return this.inner.start();
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
  subscribe(
    topic: string,
    onMessage: (m: GossipMessage) => void,
    validate?: (m: GossipMessage) => ValidationResult | Promise<ValidationResult>,
  ): void {
    this.inner.subscribe(topic, onMessage, validate);
  }
  publish(topic: string, data: Uint8Array): Promise<void> {
    return this.inner.publish(topic, data);
  }
  handle(protocol: string, handler: (request: Uint8Array, from: string) => Promise<Uint8Array[]>): void {
    this.inner.handle(protocol, handler);
  }
  peers(): string[] {
    return this.inner.peers();
  }
  onPeer(fn: (peer: string, event: 'connect' | 'disconnect') => void): () => void {
    return this.inner.onPeer(fn);
  }
  peerAddrs(): Promise<string[]> {
    return this.inner.peerAddrs();
  }
  dial(addr: string): Promise<void> {
    return this.inner.dial(addr);
  }

  /** Is `peer` in its back-off window after a timeout? */
  isSlow(peer: string): boolean {
    const s = this.slow.get(peer);
    return !!s && s.until_ms > this.clock.monotonicMs();
  }

  async request(
    peer: string,
    protocol: string,
    request: Uint8Array,
    opts?: { timeout_ms?: number; max_response_bytes?: number },
  ): Promise<Uint8Array[]> {
    if (!GUARDED.has(protocol)) return this.inner.request(peer, protocol, request, opts);
    const s = this.slow.get(peer);
    if (s && s.until_ms > this.clock.monotonicMs())
      throw new FsmeshError('unavailable', `${peer} is not answering (a request timed out recently)`);
    try {
      const frames = await this.inner.request(peer, protocol, request, opts);
      this.slow.delete(peer);
      return frames;
    } catch (err) {
      if ((err as { code?: string }).code === 'timeout') {
        const backoff = s ? Math.min(BACKOFF_MAX_MS, s.backoff_ms * 2) : BACKOFF_MIN_MS;
        this.slow.set(peer, { until_ms: this.clock.monotonicMs() + backoff, backoff_ms: backoff });
      }
      throw err;
    }
  }
}
