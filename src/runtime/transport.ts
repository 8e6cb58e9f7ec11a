/**
 * Transport: the network seam. Publish/subscribe on topics (gossip), request/response streams to
 * a peer, and peer discovery events. Production: libp2p (src/p2p/libp2p-transport.ts); the
 * simulator provides an in-memory network with latency, loss and partitions.
 */
export type ValidationResult = 'accept' | 'reject' | 'ignore';

export interface GossipMessage {
  topic: string;
  /** The peer that originated the message (signed by its key in production). */
  from: string;
  data: Uint8Array;
}

export interface Transport {
  readonly peerId: string;
  /** Dialable addresses including `/p2p/<peerId>`. */
  multiaddrs(): string[];
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Subscribe; `validate` runs before a message is delivered or forwarded (reject lowers the sender's score). */
  subscribe(
    topic: string,
    onMessage: (m: GossipMessage) => void,
    validate?: (m: GossipMessage) => ValidationResult | Promise<ValidationResult>,
  ): void;
  publish(topic: string, data: Uint8Array): Promise<void>;
  /** Serve a request/response protocol: the handler returns the response frames. */
  handle(protocol: string, handler: (request: Uint8Array, from: string) => Promise<Uint8Array[]>): void;
  /** One request, all response frames; rejects on timeout, refusal or a closed stream. */
  request(
    peer: string,
    protocol: string,
    request: Uint8Array,
    /** `timeout_ms`: deadline for the whole exchange; `max_response_bytes`: bound on the answer. */
    opts?: { timeout_ms?: number; max_response_bytes?: number },
  ): Promise<Uint8Array[]>;
  /** Currently connected peers. */
  peers(): string[];
  onPeer(fn: (peer: string, event: 'connect' | 'disconnect') => void): () => void;
  /** Dialable addresses (with /p2p/) of connected peers, as they announced them. */
  peerAddrs(): Promise<string[]>;
  /** Dial a multiaddr (seeds). */
  dial(addr: string): Promise<void>;
}
