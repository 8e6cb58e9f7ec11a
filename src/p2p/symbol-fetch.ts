/**
 * Fetch one object as symbols from several peers in parallel (§7.2): source-symbol ranges are
 * spread round-robin over the peers; a failed range moves to another peer; when some block still
 * lacks symbols, repair symbols are asked for; decoding stops as soon as every block can be
 * reconstructed. No peer is a single point: any peer holding the object can serve any symbol.
 */
import { layoutFor, type SymbolLayout } from '../codec/symbols.ts';
import { CLUSTER_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';
import type { ObjectId } from '../core/ids.ts';
import type { RepairDescriptor } from '../core/manifest.ts';
import type { Transport } from '../runtime/index.ts';
import type { ObjectAssembly, SymbolRun } from '../storage/object-assembly.ts';
import type { SymbolStore } from '../storage/symbol-store.ts';
import { jsonFrame, MAX_SYMBOLS_PER_REQUEST, PROTO, parseJsonFrame, parseSymbolRun } from './protocols.ts';

export interface SymbolHeader {
  length: number;
  symbol_size: number;
  overhead_ratio: number;
  max_block_symbols: number;
  min_repair_per_block: number;
  source_symbols: number;
  repair_symbols: number;
}

export interface FetchProgress {
  bytes: number;
  peers: Set<string>;
}

/** Symbols per request: 1 MiB at 4 KiB symbols, so even a small object spreads over several peers. */
const CHUNK = 256;
/** Requests in flight to each holder at once. */
const IN_FLIGHT_PER_PEER = 4;
/** How long a capped peer's last lane waits after `busy` before asking again. */
const BUSY_RETRY_MS = 500;
const MAX_BUSY_RETRIES = 120;
/** A symbol header answer is small JSON. */
const HEADER_MAX_BYTES = 4096;

export interface FetchOptions {
  progress?: (p: FetchProgress) => void;
  /** Wraps the decode step (tracing). */
  decodeWrap?: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * The node's clock sleep: a capped peer's last lane waits this long on `busy` and asks again
   * (backpressure, not a failure). Without it, `busy` counts as a failure.
   */
  sleep?: (ms: number) => Promise<void>;
}

export async function fetchObjectFromPeers(
  transport: Transport,
  symbols: SymbolStore,
  /** The object's repair descriptor from a verified manifest: peers' headers must agree with it. */
  expected: RepairDescriptor,
  peers: string[],
  opts: FetchOptions = {},
): Promise<void> {
  const { progress, decodeWrap = (fn) => fn(), sleep } = opts;
  const objectId = expected.object_id;
  if (peers.length === 0) throw new FsmeshError('not_found', `no peers to fetch ${objectId} from`);
  // 1. Who holds it, with a layout that agrees with the manifest's descriptor.
  const { header, holders } = await findHolders(transport, expected, peers);
  const layout = layoutOf(header, objectId);
  // Symbols go to disk as they arrive: memory holds the requests in flight, not the object.
  const got = await symbols.assemble(objectId, layout);
  try {
    return await fetchInto(got, holders, transport, symbols, progress, decodeWrap, sleep);
  } catch (err) {
    await got.abandon();
    throw err;
  }
}

async function fetchInto(
  got: ObjectAssembly,
  holders: string[],
  transport: Transport,
  symbols: SymbolStore,
  progress: ((p: FetchProgress) => void) | undefined,
  decodeWrap: <T>(fn: () => Promise<T>) => Promise<T>,
  sleep: ((ms: number) => Promise<void>) | undefined,
): Promise<void> {
  const { layout, object_id: objectId } = got;
  const prog: FetchProgress = { bytes: 0, peers: new Set() };
  const ask = (peer: string, from: number, to: number) =>
    requestRange(transport, objectId, layout, peer, from, to, got, prog, progress);
  // 2. Source symbols: every holder keeps a few requests in flight, each pulling the next range
  //    from one queue — a faster or less loaded peer serves more of the object. A failed range goes
  //    back to the queue; a peer that failed twice in a row is dropped.
  const queue: [number, number][] = [];
  for (let s = 0; s < layout.source_symbols; s += CHUNK)
    queue.push([s, Math.min(layout.source_symbols, s + CHUNK)]);
  // Lanes start round-robin over the holders (lane 1 of every peer, then lane 2, ...): each takes
  // its first range as it starts, so an object of a few ranges is spread over peers instead of all
  // going to the first one.
  const lanes = holders.map(() => ({ failures: 0, open: IN_FLIGHT_PER_PEER, busy: 0 }));
  const running: Promise<void>[] = [];
  for (let i = 0; i < IN_FLIGHT_PER_PEER; i++)
    holders.forEach((peer, h) => running.push(pullRanges(peer, lanes[h], queue, ask, sleep)));
  await Promise.all(running);
  // Ranges that every holder failed: the retrying fetcher, which also tries dropped peers again.
  const fetchRange = rangeFetcher(holders, ask);
  for (const [a, b] of queue.splice(0)) await fetchRange(a, b);
  // 3. Blocks still short of source symbols: ask for their repair symbols.
  for (const b of layout.blocks) {
    let have = 0;
    for (let i = 0; i < b.source_count; i++) if (got.has(b.source_start + i)) have++;
    if (have < b.source_count)
      await fetchRange(
        b.repair_start,
        Math.min(b.repair_start + b.repair_count, b.repair_start + MAX_SYMBOLS_PER_REQUEST),
      );
  }
  // 4. Decode what is missing, verify against the id, store (replacing any corrupt local copy).
  const done = await decodeWrap(() => symbols.completeAssembly(got));
  if (!done)
    throw new FsmeshError('not_found', `not enough symbols for ${objectId} from ${holders.length} peer(s)`);
  // Its own repair symbols are the caller's to queue (SymbolStore.ensureLater) once off its path:
  // encoding while the rest of a generation arrives took a core from the fetch and activation.
}

/**
 * Ask every peer for the object's symbol header (no symbols): who holds it (first to answer
 * first), and its layout.
 */
export async function findHolders(
  transport: Transport,
  expected: RepairDescriptor,
  peers: string[],
): Promise<{ header: SymbolHeader; holders: string[] }> {
  const objectId = expected.object_id;
  let header: SymbolHeader | null = null;
  const holders: string[] = [];
  await Promise.all(
    peers.map(async (p) => {
      try {
        const frames = await transport.request(
          p,
          PROTO.symbols,
          jsonFrame({ object_id: objectId, kind: 'artifact', ranges: [] }),
          { timeout_ms: CLUSTER_DEFAULTS.symbols_request_timeout_ms, max_response_bytes: HEADER_MAX_BYTES },
        );
        const h = parseJsonFrame<SymbolHeader>(frames[0], 'symbol header');
        // A hostile header must not choose our layout: it has to describe exactly the object the
        // manifest names (length, symbol size, counts), else this peer is not used.
        if (!headerMatches(h, expected)) return;
        header ??= h;
        holders.push(p);
      } catch {
        // this peer does not hold it (or is unreachable)
      }
    }),
  );
  if (!header || holders.length === 0) throw new FsmeshError('not_found', `no peer holds object ${objectId}`);
  return { header, holders };
}

function headerMatches(h: SymbolHeader, d: RepairDescriptor): boolean {
  return (
    typeof h === 'object' &&
    h !== null &&
    h.length === d.length &&
    h.symbol_size === d.symbol_size &&
    h.source_symbols === d.source_symbols &&
    h.repair_symbols === d.repair_symbols &&
    Number.isSafeInteger(h.max_block_symbols) &&
    h.max_block_symbols >= 1 &&
    Number.isSafeInteger(h.min_repair_per_block) &&
    h.min_repair_per_block >= 0 &&
    typeof h.overhead_ratio === 'number' &&
    h.overhead_ratio >= 0 &&
    h.overhead_ratio <= 4
  );
}

/** The layout a header implies; its own counts must agree with it. */
function layoutOf(h: SymbolHeader, objectId: ObjectId): SymbolLayout {
  const layout = layoutFor(h.length, {
    symbol_size: h.symbol_size,
    overhead_ratio: h.overhead_ratio,
    max_block_symbols: h.max_block_symbols,
    min_repair_per_block: h.min_repair_per_block,
  });
  if (
    layout.source_symbols !== h.source_symbols ||
    layout.repair_symbols !== h.repair_symbols ||
    layout.blocks.length === 0
  ) {
    throw new FsmeshError('corrupt_data', `peer described ${objectId} with an inconsistent symbol layout`);
  }
  return layout;
}

type AskRange = (peer: string, from: number, to: number) => Promise<void>;

/** One peer's request lane: take ranges from the queue until it is empty or the peer gives up. */
async function pullRanges(
  peer: string,
  lane: { failures: number; open: number; busy: number },
  queue: [number, number][],
  ask: AskRange,
  sleep: ((ms: number) => Promise<void>) | undefined,
): Promise<void> {
  try {
    while (queue.length > 0 && lane.failures < 2) {
      const range = queue.shift()!;
      try {
        await ask(peer, range[0], range[1]);
        lane.failures = 0;
      } catch (err) {
        queue.push(range);
        // A capped peer (--serve-rate-limit) refuses what it cannot send soon: fewer requests in
        // flight to it, not a failure — unless this is its last lane.
        if (err instanceof FsmeshError && err.code === 'busy') {
          if (lane.open > 1) return;
          // Its last lane waits for the link and asks again: a slow link is not a failing peer.
          // Bounded: a peer that says busy for a minute is treated as failing (a hostile one could).
          if (sleep && lane.busy++ < MAX_BUSY_RETRIES) {
            await sleep(BUSY_RETRY_MS);
            continue;
          }
        }
        lane.failures++;
      }
    }
  } finally {
    lane.open--;
  }
}

/** One request for symbols [from, to) to one peer, into `got`; rejects when the peer fails. */
async function requestRange(
  transport: Transport,
  objectId: ObjectId,
  layout: SymbolLayout,
  peer: string,
  from: number,
  to: number,
  got: ObjectAssembly,
  prog: FetchProgress,
  progress?: (p: FetchProgress) => void,
): Promise<void> {
  const frames = await transport.request(
    peer,
    PROTO.symbols,
    jsonFrame({ object_id: objectId, kind: 'artifact', ranges: [[from, to]], runs: true }),
    {
      timeout_ms: CLUSTER_DEFAULTS.symbols_request_timeout_ms,
      // What we asked for, framed, and no more.
      max_response_bytes: HEADER_MAX_BYTES + (to - from) * (layout.symbol_size + 12),
    },
  );
  const size = layout.symbol_size;
  const keep: SymbolRun[] = [];
  for (let i = 1; i < frames.length; i++) {
    // Whole symbols only (else the answer fails and the range goes to another peer), and only the
    // part of a run inside what we asked for: a peer cannot push arbitrary symbols.
    const run = parseSymbolRun(frames[i], size);
    const a = Math.max(from, run.first);
    const b = Math.min(to, run.first + run.count);
    if (a >= b) continue;
    keep.push({ first: a, data: run.data.subarray((a - run.first) * size, (b - run.first) * size) });
    prog.bytes += (b - a) * size;
  }
  await got.putRuns(keep);
  prog.peers.add(peer);
  progress?.(prog);
}

/**
 * Fetch one symbol range from some holder. A lost message or a slow peer is not fatal: retry,
 * moving to another holder; a peer is only skipped after two failures in a row, and if every
 * holder failed we try them all again.
 */
function rangeFetcher(holders: string[], ask: AskRange): (from: number, to: number) => Promise<void> {
  const bad = new Set<string>();
  const failures = new Map<string, number>();
  let rr = 0;
  const pickPeer = (): string | null => {
    const good = holders.filter((p) => !bad.has(p));
    if (good.length === 0) return null;
    return good[rr++ % good.length];
  };
  return async (from, to) => {
    for (let attempt = 0; attempt < Math.max(4, 3 * holders.length); attempt++) {
      if (holders.every((p) => bad.has(p))) bad.clear();
      const peer = pickPeer();
      if (!peer) return;
      try {
        await ask(peer, from, to);
        failures.delete(peer);
        return;
      } catch {
        const n = (failures.get(peer) ?? 0) + 1;
        failures.set(peer, n);
        if (n >= 2) bad.add(peer);
      }
    }
  };
}
