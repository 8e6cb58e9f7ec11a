/**
 * One network host, several shards (docs/sharding.md): a node of a multi-shard collection runs one
 * libp2p host (one peer id, one set of connections) and gives each of its shards a view of it.
 * Request protocols are namespaced per shard (`/fsmesh/head/1.0.0` → `/fsmesh/shard/2/head/1.0.0`)
 * so each shard's services answer only for their shard; gossip topics already name the shard.
 * A peer that does not carry a shard refuses its protocols, which callers treat as any refusal.
 * The host starts once, on the first view's start, and stops only when its owner stops it.
 */
import { invariant } from '../core/errors.ts';
import type { GossipMessage, Transport, ValidationResult } from '../runtime/index.ts';

/** `/fsmesh/<rest>` as shard `shard` serves it. */
export function shardProtocol(protocol: string, shard: string): string {
  invariant(protocol.startsWith('/fsmesh/'), `not an fsmesh protocol: ${protocol}`);
  return `/fsmesh/shard/${shard}/${protocol.slice('/fsmesh/'.length)}`;
}

/** The shared host: started once, stopped by its owner (after every shard's services stopped). */
export class SharedHost {
  readonly base: Transport;
  private starting: Promise<void> | null = null;

  constructor(base: Transport) {
    this.base = base;
  }

  start(): Promise<void> {
    this.starting ??= this.base.start();
    return this.starting;
  }

  async stop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => {});
    await this.base.stop();
  }

  view(shard: string): Transport {
    return new ShardTransportView(this, shard);
  }
}

class ShardTransportView implements Transport {
  private readonly host: SharedHost;
  private readonly shard: string;

  constructor(host: SharedHost, shard: string) {
    this.host = host;
    this.shard = shard;
  }

  get peerId(): string {
    return this.host.base.peerId;
  }
  multiaddrs(): string[] {
    return this.host.base.multiaddrs();
  }
  start(): Promise<void> {
    return this.host.start();
  }
  /** The host outlives each shard's services; its owner stops it. */
  async stop(): Promise<void> {}
  subscribe(
    topic: string,
    onMessage: (m: GossipMessage) => void,
    validate?: (m: GossipMessage) => ValidationResult | Promise<ValidationResult>,
  ): void {
    invariant(topic.includes(`/${this.shard}/`), `topic ${topic} does not name shard ${this.shard}`);
    this.host.base.subscribe(topic, onMessage, validate);
  }
  publish(topic: string, data: Uint8Array): Promise<void> {
    return this.host.base.publish(topic, data);
  }
  handle(protocol: string, handler: (request: Uint8Array, from: string) => Promise<Uint8Array[]>): void {
    this.host.base.handle(shardProtocol(protocol, this.shard), handler);
  }
  request(
    peer: string,
    protocol: string,
    request: Uint8Array,
    opts?: { timeout_ms?: number; max_response_bytes?: number },
  ): Promise<Uint8Array[]> {
    return this.host.base.request(peer, shardProtocol(protocol, this.shard), request, opts);
  }
  peers(): string[] {
    return this.host.base.peers();
  }
  onPeer(fn: (peer: string, event: 'connect' | 'disconnect') => void): () => void {
    return this.host.base.onPeer(fn);
  }
  peerAddrs(): Promise<string[]> {
    return this.host.base.peerAddrs();
  }
  dial(addr: string): Promise<void> {
    return this.host.base.dial(addr);
  }
}
