/**
 * The five request/response protocols a node serves (docs/protocols.md): head (commit head, the
 * current signed record, peer exchange), manifest, symbols, capsules, replicate. Each request is
 * validated before any work proportional to it.
 */

import { UNSAFE } from '../../core/buggify.ts';
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import { decodeMarker, MARKER_BYTES } from '../../core/marker.ts';
import type { NodeComponents, RoutingState } from '../../node/services.ts';
import type { Transport } from '../../runtime/index.ts';
import type { SignedHandover, SignedPrepareTicket } from '../handover.ts';
import {
  jsonFrame,
  MAX_CAPSULES_PER_REQUEST,
  MAX_SYMBOLS_PER_REQUEST,
  PROTO,
  parseJsonFrame,
  symbolFrames,
} from '../protocols.ts';
import type { SignedRecord } from '../records.ts';
import { framesBytes, type ServeRateLimit } from '../serve-rate.ts';

export type ProtocolServerComponents = Pick<
  NodeComponents,
  'log' | 'objects' | 'symbols' | 'metrics' | 'generations'
> & {
  transport: Transport;
  /** The node's role now (it changes on failover). */
  role(): 'writer' | 'replica';
  /** The writer we trust (replicas), for head answers and to refuse foreign replication. */
  trustedWriter(): string | null;
  /** The signed record of the generation we would hand a new peer. */
  currentRecord(): SignedRecord | null;
  /** Health, draining, active commit: what peers route queries by. */
  routingState(): RoutingState;
  handover(): SignedHandover | null;
  /** The upload cap (`--serve-rate-limit`), if any. */
  serveRate?: ServeRateLimit;
  /** The signed prepare ticket this node promised to (failover's promise phase), if above its epoch. */
  promise(): SignedPrepareTicket | null;
  /** A prepare ticket carried by a head request: promise or throw why not. */
  acceptPrepare(ticket: unknown): Promise<void>;
  /** Run a replicated append (refused after a promise, never interleaved with one). */
  replicate<T>(append: () => Promise<T>, from: string): Promise<T>;
  /** True while this replica fetches its first generation: pushed commits wait until it is active. */
  deferReplication?(): boolean;
};

export function serveProtocols(c: ProtocolServerComponents): void {
  const { transport } = c;
  transport.handle(PROTO.head, async (req) => {
    // A head request may carry a prepare ticket (failover's promise phase): promise first, so the
    // head answered below is final for writers of older epochs.
    let promise_refused: string | undefined;
    if (req.length > 2) {
      if (req.length > 4096) throw new FsmeshError('invalid_input', 'head request: larger than 4096 bytes');
      const r = parseJsonFrame<{ prepare?: unknown }>(req, 'head request');
      if (r && typeof r === 'object' && 'prepare' in r)
        await c.acceptPrepare(r.prepare).catch((err: Error) => {
          promise_refused = err.message.slice(0, 200);
        });
    }
    const promise = c.promise();
    return [await headFrame(c, transport, promise, promise_refused)];
  });
  transport.handle(PROTO.manifest, async (req) => {
    const r = parseJsonFrame<{ artifact_manifest_id?: unknown; generation_id?: unknown }>(
      req,
      'manifest request',
    );
    // By generation id (commit replication walks the chain of parents): a retained one, else none.
    if (r.generation_id !== undefined) {
      if (typeof r.generation_id !== 'string' || !/^gen-[1-9]\d{0,15}$/.test(r.generation_id))
        throw new FsmeshError('invalid_input', 'manifest request: generation_id must be "gen-<n>"');
      const ref = c.generations.retained.find((g) => g.generation_id === r.generation_id);
      return ref ? [await c.objects.get('manifest', ref.artifact_manifest_id)] : [];
    }
    if (typeof r.artifact_manifest_id !== 'string' || !/^[0-9a-f]{64}$/.test(r.artifact_manifest_id))
      throw new FsmeshError('invalid_input', 'manifest request: artifact_manifest_id must be 64 hex digits');
    return [await c.objects.get('manifest', r.artifact_manifest_id)];
  });
  // Bulk bytes (symbols, capsules) go through the upload cap, when one is set.
  const capped = async (frames: Uint8Array[]) => {
    await c.serveRate?.take(framesBytes(frames));
    return frames;
  };
  transport.handle(PROTO.symbols, async (req) => capped(await serveSymbols(c, req)));
  transport.handle(PROTO.capsules, async (req) => {
    const r = parseJsonFrame<{ from: number; to: number }>(req, 'capsules request');
    if (!Number.isSafeInteger(r.from) || !Number.isSafeInteger(r.to) || r.from < 1 || r.to < r.from)
      throw new FsmeshError('invalid_input', 'capsules request: bad range');
    const out: Uint8Array[] = [];
    // Records as stored (checksummed), not decoded: the receiver validates every capsule.
    for await (const rec of c.log.rangeRecords(r.from, Math.min(r.to, r.from + MAX_CAPSULES_PER_REQUEST - 1)))
      out.push(rec.body);
    return capped(out);
  });
  transport.handle(PROTO.replicate, async (req, from) => {
    if (c.role() !== 'replica') throw new FsmeshError('conflict', 'not a replica');
    // Only the shard's trusted writer may extend our log (found by the simulator: an empty
    // replica would otherwise accept a rogue writer's chain starting at genesis).
    const trusted = c.trustedWriter();
    if ((!trusted || from !== trusted) && !UNSAFE.skip_marker_chain_check) {
      throw new FsmeshError('conflict', `replicate refused: ${from} is not the trusted writer`);
    }
    if (req.length <= MARKER_BYTES) throw new FsmeshError('invalid_input', 'replicate: frame too short');
    // §7.2: the commit stream begins once the first generation is active (step 5). The writer
    // retries with back-off; the replica also pulls as soon as it activates (replica-sync).
    if (c.deferReplication?.())
      throw new FsmeshError(
        'busy',
        'replicate deferred: this replica is fetching its first generation; the commit stream starts once it is active',
      );
    const marker = decodeMarker(req.subarray(0, MARKER_BYTES));
    return c.replicate(async () => {
      const head = c.log.commitSeqHigh;
      if (marker.commit_seq > head + 1) return [jsonFrame({ gap: head })];
      // appendReplicated refuses anything that does not extend our chain exactly.
      const ack = await c.log.appendReplicated(marker, req.slice(MARKER_BYTES));
      c.metrics.commit_seq_high.set(c.log.commitSeqHigh);
      return [jsonFrame({ ok: true, commit_seq: ack.commit_seq })];
    }, from);
  });
}

/** The head answer: commit head, routing state, record, writer, handover, promise, peers. */
async function headFrame(
  c: ProtocolServerComponents,
  transport: Transport,
  promise: SignedPrepareTicket | null,
  promise_refused: string | undefined,
): Promise<Uint8Array> {
  return jsonFrame({
    commit_seq_high: c.log.commitSeqHigh,
    head_marker_id: c.log.headMarker,
    ...c.routingState(),
    record: c.currentRecord(),
    // The shard writer says so; the stream is authenticated, so `writer === peer` cannot be forged.
    writer: c.role() === 'writer' ? transport.peerId : c.trustedWriter(),
    // Failover: the newest signed handover this node knows, so every peer learns it (anti-entropy).
    handover: c.handover(),
    // Failover's promise phase: a writer of an older epoch that sees this stays fenced.
    // The signed ticket itself, so a peer can check the promise is the admin's and not a claim.
    ...(promise
      ? { promised_epoch: promise.ticket.epoch, promised_to: promise.ticket.candidate, promise }
      : {}),
    ...(promise_refused ? { promise_refused } : {}),
    // Peer exchange: replicas learn each other, so symbols can come from several peers.
    peers: (await transport.peerAddrs())
      .filter((a) => a.startsWith('/ip') || a.startsWith('/sim'))
      .slice(0, CLUSTER_DEFAULTS.peer_exchange_max_addrs),
  });
}

async function serveSymbols(c: ProtocolServerComponents, req: Uint8Array): Promise<Uint8Array[]> {
  const r = parseJsonFrame<{ object_id: string; kind: string; ranges: [number, number][]; runs?: unknown }>(
    req,
    'symbols request',
  );
  const ids = symbolIdsOf(r);
  if (!(await c.objects.has('artifact', r.object_id)))
    throw new FsmeshError('not_found', `object ${r.object_id} not held here`);
  await c.symbols.ensure('artifact', r.object_id);
  const layout = await c.symbols.layout('artifact', r.object_id);
  const p = c.symbols.params;
  const header = jsonFrame({
    length: layout.length,
    symbol_size: layout.symbol_size,
    overhead_ratio: p.overhead_ratio,
    max_block_symbols: p.max_block_symbols,
    min_repair_per_block: p.min_repair_per_block,
    source_symbols: layout.source_symbols,
    repair_symbols: layout.repair_symbols,
  });
  // A client that reads run frames gets consecutive symbols in one frame each (read straight into
  // it); older clients get one frame per symbol, as before.
  if (r.runs === true && ids.length) {
    if (new Set(ids).size !== ids.length)
      throw new FsmeshError('invalid_input', 'symbols request: ranges overlap');
    return [header, ...(await c.symbols.getSymbolRuns('artifact', r.object_id, r.ranges))];
  }
  const syms = ids.length ? await c.symbols.getSymbols('artifact', r.object_id, ids) : new Map();
  return [header, ...symbolFrames(syms)];
}

/**
 * The symbol ids a request asks for, validated before anything proportional to the peer's numbers:
 * at most MAX_RANGES ranges of safe integers below 2^32, at most MAX_SYMBOLS_PER_REQUEST in all.
 */
export function symbolIdsOf(r: { object_id?: unknown; kind?: unknown; ranges?: unknown }): number[] {
  if (typeof r !== 'object' || r === null)
    throw new FsmeshError('invalid_input', 'symbols request: not an object');
  if (typeof r.object_id !== 'string' || !/^[0-9a-f]{64}$/.test(r.object_id))
    throw new FsmeshError('invalid_input', 'symbols request: object_id must be 64 hex digits');
  if (r.kind !== 'artifact' || !Array.isArray(r.ranges))
    throw new FsmeshError('invalid_input', 'symbols request: kind must be "artifact" and ranges an array');
  if (r.ranges.length > MAX_RANGES)
    throw new FsmeshError('invalid_input', `symbols request: more than ${MAX_RANGES} ranges`);
  let total = 0;
  for (const rg of r.ranges as unknown[]) {
    if (
      !Array.isArray(rg) ||
      rg.length !== 2 ||
      !Number.isSafeInteger(rg[0]) ||
      !Number.isSafeInteger(rg[1]) ||
      rg[0] < 0 ||
      rg[1] < rg[0] ||
      rg[1] > 0xffffffff
    )
      throw new FsmeshError('invalid_input', `symbols request: bad range ${JSON.stringify(rg).slice(0, 64)}`);
    total += rg[1] - rg[0];
    if (total > MAX_SYMBOLS_PER_REQUEST)
      throw new FsmeshError('invalid_input', `symbols request: more than ${MAX_SYMBOLS_PER_REQUEST} symbols`);
  }
  const ids: number[] = [];
  for (const [from, to] of r.ranges as [number, number][]) for (let i = from; i < to; i++) ids.push(i);
  return ids;
}

const MAX_RANGES = 64;
