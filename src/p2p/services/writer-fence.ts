/**
 * The writer's fence and lease in a failover-capable cluster (`--admin-pub`; docs/protocols.md,
 * failover). A writer starts *fenced* — no builds, no announcements, writes refused (429, Retry-After)
 * — until ⌊members/2⌋ members answered its head polls *following it*; a rogue's answer does not
 * count, and a member reporting a promise above its epoch (a promotion under way) fences it again.
 * Its *lease* — ⌊members/2⌋ confirmations within `writer_lease_ms` — must also be current: a writer
 * paused past it (a long GC, SIGSTOP) wakes as a zombie that refuses writes and builds until members
 * confirm it again, by which time a promotion it slept through has told it. Found by the simulator:
 * a returning writer lifted its fence on a rogue's word; a zombie activated and acknowledged after
 * being replaced.
 */
import { UNSAFE } from '../../core/buggify.ts';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import type { Clock } from '../../runtime/index.ts';

export interface WriterFenceOptions {
  /** This node's peer id. */
  self: string;
  members: number;
  /** Fence and lease apply only in failover-capable clusters of more than one member. */
  enabled: boolean;
  lease_ms?: number;
  /** Is this a prepare ticket signed by the admin key, for this cluster and shard? */
  isAdminTicket(t: unknown): Promise<boolean>;
}

export class WriterFence {
  private readonly clock: Clock;
  private readonly o: WriterFenceOptions;
  fenced = false;
  private promiseSeen = false;
  private confirmations = 0;
  private readonly confirmedAt = new Map<string, number>();

  constructor(clock: Clock, o: WriterFenceOptions) {
    this.clock = clock;
    this.o = o;
  }

  private get need(): number {
    return Math.floor(this.o.members / 2);
  }

  /** A writer (re)starts: fenced until confirmed, when fencing applies. */
  start(): void {
    this.fenced = this.o.enabled;
  }

  /** Raise the fence now (this node promised a promotion of another, or follows a new writer). */
  raise(): void {
    if (this.o.enabled) this.fenced = true;
  }

  /** Promoted, or a replica now: nothing to confirm. */
  clear(): void {
    this.fenced = false;
  }

  beginRound(): void {
    this.promiseSeen = false;
    this.confirmations = 0;
  }

  /** One member's head answer, attributed to `peer` (the authenticated sender). */
  async observe(peer: string, h: Record<string, unknown>, epoch: number): Promise<void> {
    // A promise to another candidate above our epoch: this writer is being replaced. Only the
    // admin-signed ticket counts, never the claim (found by the simulator's hostile member: a
    // forged `promised_epoch` fenced the writer for good).
    const t = (h.promise as { ticket?: { epoch?: unknown; candidate?: unknown } } | undefined)?.ticket;
    const promised =
      t !== undefined &&
      Number.isSafeInteger(t.epoch) &&
      (t.epoch as number) > epoch &&
      t.candidate !== this.o.self &&
      (UNSAFE.trust_claimed_promise || (await this.o.isAdminTicket(h.promise)));
    const claimed =
      UNSAFE.trust_claimed_promise &&
      Number.isSafeInteger(h.promised_epoch) &&
      (h.promised_epoch as number) > epoch &&
      h.promised_to !== this.o.self;
    if (promised || claimed) this.promiseSeen = true;
    else if (h.writer === this.o.self) {
      this.confirmations++;
      this.confirmedAt.set(peer, this.leaseNowMs());
    }
  }

  /** After a round: raise on a promise, lift on enough confirmations; true if the fence lifted. */
  endRound(): boolean {
    if (this.promiseSeen) {
      this.raise();
      return false;
    }
    if (this.fenced && this.confirmations >= this.need) {
      this.fenced = false;
      return true;
    }
    return false;
  }

  /**
   * Lease time is monotonic: a wall clock stepped back (NTP, a VM resumed with a stale clock) would
   * stretch a lease past the promotion that replaced this writer.
   */
  private leaseNowMs(): number {
    return UNSAFE.lease_on_wall_clock ? this.clock.nowMs() : this.clock.monotonicMs();
  }

  leaseHeld(): boolean {
    if (!this.o.enabled || UNSAFE.skip_writer_lease) return true;
    const since = this.leaseNowMs() - (this.o.lease_ms ?? CLUSTER_DEFAULTS.writer_lease_ms);
    let n = 0;
    for (const t of this.confirmedAt.values()) if (t >= since) n++;
    return n >= this.need;
  }

  /** May this writer build, announce and admit writes now? */
  open(): boolean {
    return !this.fenced && this.leaseHeld();
  }
}
