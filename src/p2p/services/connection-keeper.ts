/**
 * Connections that heal: a node keeps a connection to each of its seeds and to every peer it has
 * learned (peer exchange, the addresses of peers connected to it), and redials a lost one with capped
 * exponential back-off and jitter on the injected clock. Learned addresses are kept in the data dir
 * (`known-peers`), so a restarted node — even the writer, which has no seeds — finds its peers again;
 * a peer that comes back on a new port is learned anew.
 */
import { UNSAFE } from '../../core/buggify.ts';
import { DATA_DIR } from '../../core/data-dir-layout.ts';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import type { NodeComponents } from '../../node/services.ts';
import { isNotFound, type TimerHandle, type Transport, writeFileAtomic } from '../../runtime/index.ts';

export type ConnectionKeeperComponents = Pick<NodeComponents, 'clock' | 'random' | 'storage'> & {
  transport: Transport;
};

interface Target {
  addr: string;
  seed: boolean;
  failures: number;
  next_at_ms: number;
  dialled: boolean;
}

const ADDR = /^\/(ip[46]|dns[46]?|sim)\/[^/]+(\/tcp\/\d+)?\/p2p\/\w+$/;

export class ConnectionKeeper {
  private readonly c: ConnectionKeeperComponents;
  private readonly targets = new Map<string, Target>(); // peer id -> where to reach it
  private timer: TimerHandle | null = null;
  private stopped = false;
  private lastLearnMs = 0;
  private persisted = '';

  constructor(c: ConnectionKeeperComponents, seeds: string[]) {
    this.c = c;
    for (const s of seeds) this.add(s, true);
  }

  /** Seeds plus the peers remembered from the last run; then the redial loop. */
  async start(): Promise<void> {
    try {
      const text = new TextDecoder().decode(await this.c.storage.readFile(DATA_DIR.known_peers_file));
      for (const a of text.split('\n')) if (a) this.add(a, false);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.persisted = this.serialize();
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** An address learned from a peer (peer exchange); bounded by the connection cap. */
  learn(addr: string): void {
    this.add(addr, false);
  }

  private add(addr: string, seed: boolean): void {
    if (typeof addr !== 'string' || addr.length > 256 || !ADDR.test(addr)) return;
    const id = addr.split('/p2p/')[1];
    if (id === this.c.transport.peerId) return;
    const t = this.targets.get(id);
    if (t) {
      if (t.addr !== addr && !t.seed) {
        // The peer moved (new port): dial the new address now.
        t.addr = addr;
        t.failures = 0;
        t.next_at_ms = 0;
      }
      return;
    }
    if (!seed && this.targets.size >= CLUSTER_DEFAULTS.max_connected_peers) return;
    this.targets.set(id, { addr, seed, failures: 0, next_at_ms: 0, dialled: false });
  }

  private tick(): void {
    if (this.stopped) return;
    const now = this.c.clock.monotonicMs();
    const connected = new Set(this.c.transport.peers());
    for (const [id, t] of this.targets) {
      if (connected.has(id)) {
        t.failures = 0;
        t.next_at_ms = 0;
        continue;
      }
      if (t.next_at_ms > now || (UNSAFE.skip_redial && t.dialled)) continue;
      t.dialled = true;
      // Back-off before the next attempt, set now so a slow dial is not repeated meanwhile.
      const backoff = Math.min(
        CLUSTER_DEFAULTS.redial_max_ms,
        CLUSTER_DEFAULTS.redial_base_ms * 2 ** t.failures,
      );
      t.next_at_ms = now + backoff * (0.5 + this.c.random.next() / 2);
      void this.c.transport.dial(t.addr).then(
        () => {
          t.failures = 0;
        },
        () => {
          t.failures = Math.min(t.failures + 1, 16);
        },
      );
    }
    if (now - this.lastLearnMs >= CLUSTER_DEFAULTS.learn_peers_interval_ms) {
      this.lastLearnMs = now;
      void this.learnConnected().catch(() => {});
    }
    this.timer = this.c.clock.setTimeout(() => this.tick(), CLUSTER_DEFAULTS.redial_tick_ms);
  }

  /** Remember where connected peers are (they may have dialled us), and keep that for a restart. */
  private async learnConnected(): Promise<void> {
    for (const a of await this.c.transport.peerAddrs()) this.add(a, false);
    const text = this.serialize();
    if (text === this.persisted || this.stopped) return;
    this.persisted = text;
    await writeFileAtomic(this.c.storage, DATA_DIR.known_peers_file, new TextEncoder().encode(text));
  }

  private serialize(): string {
    return [...this.targets.values()]
      .filter((t) => !t.seed)
      .map((t) => `${t.addr}\n`)
      .sort()
      .join('');
  }
}
