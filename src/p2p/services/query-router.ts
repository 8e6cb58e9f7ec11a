/**
 * Health-based query routing (§12 Phase 2): peers' heads tell their health, draining flag and
 * active commit; a node that cannot serve a query well — bootstrapping, degraded, draining, too far
 * behind the writer, or a strict read whose commit it lacks while a peer has it — forwards the
 * query, read mode included, to the best member. The member answers from one generation, locally
 * (a forwarded query is never forwarded again); `served_by` names it.
 */
import { CLUSTER_DEFAULTS, ENGINE_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import type { ReadOptions } from '../../engine/local-engine.ts';
import type { NodeComponents, RoutedResult, RoutingState } from '../../node/services.ts';
import type { Transport } from '../../runtime/index.ts';
import type { SearchOptions, SearchResult } from '../../search/searcher.ts';
import { jsonFrame, PROTO, parseJsonFrame } from '../protocols.ts';

export type QueryRouterComponents = Pick<NodeComponents, 'clock' | 'searchLocal'> & {
  transport: Transport;
  /** The trusted writer's commit head as heard (replicas), for lag-based routing. */
  writerHead(): number;
  /** Only a member serving a generation the trusted writer signed may answer for us. */
  isTrustedGeneration(generation_id: string, artifact_manifest_id: string): boolean;
  /** Every head answer polled here (a writer learns handovers this way). */
  onHead?(head: Record<string, unknown>, peer: string): void | Promise<unknown>;
};

interface PeerState extends RoutingState {
  /** The writer this peer follows (itself when it writes), as its head said. */
  writer: string | null;
  seen_ms: number;
}

const count = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;

/** A peer's claimed fetch progress, bounded and typed (it is shown, never trusted for anything). */
function syncProgressOf(v: unknown): RoutingState['sync_progress'] {
  if (!v || typeof v !== 'object') return null;
  const p = v as Record<string, unknown>;
  const phase = typeof p.phase === 'string' && /^[a-z_]{1,16}$/.test(p.phase) ? p.phase : null;
  const done = count(p.objects_done);
  const total = count(p.objects_total);
  if (phase === null || done === undefined || total === undefined) return null;
  return {
    phase,
    objects_done: done,
    objects_total: total,
    bytes: count(p.bytes) ?? 0,
    peers: count(p.peers) ?? 0,
  };
}

const SERVING = new Set(['healthy', 'catching_up']);

export class QueryRouter {
  private readonly c: QueryRouterComponents;
  private readonly routeLagCommits: number;
  private readonly peers = new Map<string, PeerState>();

  constructor(c: QueryRouterComponents, routeLagCommits: number = CLUSTER_DEFAULTS.route_lag_commits) {
    this.c = c;
    this.routeLagCommits = routeLagCommits;
    c.transport.onPeer((peer, e) => {
      if (e === 'disconnect') this.peers.delete(peer);
    });
    c.transport.handle(PROTO.search, (req) => this.serve(req));
  }

  /** A head answer's routing fields (attributed to the peer that answered). */
  observe(peer: string, h: Partial<RoutingState> & { writer?: unknown }): void {
    if (typeof h.health !== 'string' || !Number.isSafeInteger(h.active_commit_seq_high)) return;
    const qps = h.queries_per_s;
    this.peers.set(peer, {
      writer: typeof h.writer === 'string' && /^\w{1,128}$/.test(h.writer) ? h.writer : null,
      commit_seq_high: count(h.commit_seq_high),
      queries_per_s: typeof qps === 'number' && Number.isFinite(qps) && qps >= 0 ? Math.min(qps, 1e9) : 0,
      sync_progress: syncProgressOf(h.sync_progress),
      replication: h.replication === 'commits' ? 'commits' : 'artifacts',
      health: /^[a-z_]{1,32}$/.test(h.health) ? h.health : 'unknown',
      draining: h.draining === true,
      active_commit_seq_high: h.active_commit_seq_high as number,
      generation_id:
        typeof h.generation_id === 'string' && /^[\w.-]{1,64}$/.test(h.generation_id)
          ? h.generation_id
          : null,
      artifact_manifest_id:
        typeof h.artifact_manifest_id === 'string' && /^[0-9a-f]{64}$/.test(h.artifact_manifest_id)
          ? h.artifact_manifest_id
          : null,
      repairing: Array.isArray(h.repairing)
        ? h.repairing
            .filter((x): x is string => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x))
            .slice(0, 16)
        : [],
      seen_ms: this.c.clock.monotonicMs(),
    });
  }

  /** What each member last said of itself: health, lag, draining, repairs in progress. */
  members(): Record<string, Omit<PeerState, 'seen_ms'> & { age_ms: number }> {
    const now = this.c.clock.monotonicMs();
    const out: Record<string, Omit<PeerState, 'seen_ms'> & { age_ms: number }> = {};
    for (const [p, { seen_ms, ...s }] of [...this.peers.entries()].sort())
      out[p] = { ...s, age_ms: now - seen_ms };
    return out;
  }

  /** Writers do not poll heads for sync; they ask peers for their routing state here. */
  async pollPeers(): Promise<number> {
    let answered = 0;
    for (const p of this.c.transport.peers()) {
      try {
        const [f] = await this.c.transport.request(p, PROTO.head, jsonFrame({}), {
          timeout_ms: CLUSTER_DEFAULTS.head_request_timeout_ms,
          max_response_bytes: 64 << 10,
        });
        const h = parseJsonFrame<Record<string, unknown>>(f, 'head response');
        this.observe(p, h as Partial<RoutingState>);
        await this.c.onHead?.(h, p);
        answered++;
      } catch {
        // unreachable or not speaking the protocol: its state ages out
      }
    }
    return answered;
  }

  /** Answer elsewhere when this node should not (see the file comment); null: serve here. */
  async route(opts: SearchOptions & ReadOptions, local: RoutingState): Promise<RoutedResult | null> {
    const min = opts.min_commit_seq ?? 0;
    const behind = this.c.writerHead() - local.active_commit_seq_high > this.routeLagCommits;
    const unfit = local.draining || !SERVING.has(local.health) || local.generation_id === null || behind;
    const candidates = this.candidates(Math.max(min, unfit ? 1 : 0));
    const strictElsewhere = opts.min_commit_seq !== undefined && local.active_commit_seq_high < min;
    if (!unfit && !(strictElsewhere && candidates.length)) return null;
    const timeoutMs =
      (opts.timeout_ms ?? ENGINE_DEFAULTS.strict_read_timeout_ms) + CLUSTER_DEFAULTS.route_timeout_margin_ms;
    for (const peer of candidates) {
      try {
        const [f] = await this.c.transport.request(peer, PROTO.search, jsonFrame(opts), {
          timeout_ms: timeoutMs,
          max_response_bytes: 4 << 20,
        });
        const r = parseJsonFrame<SearchResult>(f, 'routed search answer');
        if (typeof r?.generation_id !== 'string' || !Array.isArray(r.hits))
          throw new FsmeshError('invalid_input', `peer ${peer} answered a malformed search result`);
        // Found by the simulator: a rogue member answering from its own generation.
        if (!this.c.isTrustedGeneration(r.generation_id, r.artifact_manifest_id))
          throw new FsmeshError(
            'conflict',
            `peer ${peer} answered from a generation the writer never signed`,
          );
        return { ...r, served_by: peer };
      } catch {
        // next member
      }
    }
    return null; // nobody better: serve here (or fail here, with the local reason)
  }

  /** Members fit to serve a read needing at least `min` (a multi-shard query's remote shards). */
  servingPeers(min: number): string[] {
    return this.candidates(min);
  }

  /** Members fit to serve a read needing at least `min`: fresh state, serving, least lag first. */
  private candidates(min: number): string[] {
    const now = this.c.clock.monotonicMs();
    const connected = new Set(this.c.transport.peers());
    return [...this.peers.entries()]
      .filter(
        ([p, s]) =>
          connected.has(p) &&
          now - s.seen_ms <= CLUSTER_DEFAULTS.peer_state_max_age_ms &&
          !s.draining &&
          SERVING.has(s.health) &&
          s.generation_id !== null &&
          s.artifact_manifest_id !== null &&
          this.c.isTrustedGeneration(s.generation_id, s.artifact_manifest_id) &&
          s.active_commit_seq_high >= min,
      )
      .sort(
        ([a, x], [b, y]) =>
          y.active_commit_seq_high - x.active_commit_seq_high ||
          Number(y.health === 'healthy') - Number(x.health === 'healthy') ||
          (a < b ? -1 : 1),
      )
      .map(([p]) => p);
  }

  /** A query forwarded by a peer: served here, never forwarded again. */
  private async serve(req: Uint8Array): Promise<Uint8Array[]> {
    const o = parseJsonFrame<Record<string, unknown>>(req, 'search request');
    if (typeof o !== 'object' || o === null || Array.isArray(o))
      throw new FsmeshError('invalid_input', 'search request: not an object');
    const opts: SearchOptions & ReadOptions = {
      q: o.q as string,
      k: o.k as number | undefined,
      mode: o.mode as SearchOptions['mode'],
      tier: o.tier as SearchOptions['tier'],
      as_of_commit_seq: o.as_of_commit_seq as number | undefined,
      min_commit_seq: o.min_commit_seq as number | undefined,
      timeout_ms: o.timeout_ms as number | undefined,
    };
    return [jsonFrame(await this.c.searchLocal(opts))];
  }
}
