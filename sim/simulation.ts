/**
 * Deterministic cluster simulation (issue 8): the production node (actors, machines, engine,
 * cluster protocol) runs over a virtual clock, seeded randomness, simulated disks and a simulated
 * network. A seeded workload mixes ingest, deletes and queries in every read mode with faults
 * (crashes, data loss, bit flips, partitions, a rogue writer). Invariants are checked as the run
 * goes and at the end; the trace hash makes a run reproducible: same seed, same hash.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { composeNode } from '../src/compose/compose-node.ts';
import { toHex } from '../src/core/bytes.ts';
import { decodeMarker, MARKER_BYTES } from '../src/core/marker.ts';
import type { FsmeshNode } from '../src/node/index.ts';
import type { ClusterService } from '../src/p2p/cluster.ts';
import { signHandover, signPrepareTicket } from '../src/p2p/handover.ts';
import { peerIdOf } from '../src/p2p/identity.ts';
import { jsonFrame, PROTO } from '../src/p2p/protocols.ts';
import { handoverOf } from '../src/p2p/services/failover.ts';
import { type Random, seededRandom } from '../src/runtime/index.ts';
import { NodeClock, VirtualClock } from './clock.ts';
import { SimDisk } from './disk.ts';
import { driver, RunLog, SIM_NODE, type SimResult, settle, type Violation } from './harness.ts';
import { SimNetwork } from './network.ts';

export const FAULTS = [
  'crash',
  'wipe',
  'corrupt',
  'partition',
  'rogue_writer',
  'drop',
  'enospc',
  'slow_disk',
  'failover',
  'pause',
  'clock_skew',
  'hostile_member',
] as const;
/**
 * Faults a swarm configuration draws after everything else: they joined the default mix later, so
 * every seed keeps the configuration it had before them. The hostile member found real weaknesses
 * (a forged promise fenced the writer; silent peers stalled sync; acks counted per message) and
 * joined once 1,800 seeds with it passed.
 */
export const LATE_FAULTS: readonly string[] = ['hostile_member'];
/** Faults that run only when asked for (`--faults ...` or `--extra-faults ...`): none today. */
export const OPT_IN_FAULTS = [] as const;
export type Fault = (typeof FAULTS)[number] | (typeof OPT_IN_FAULTS)[number];

export interface SimConfig {
  seed: number;
  nodes: number;
  steps: number;
  faults: Fault[];
  /** Virtual ms between workload steps. */
  step_ms?: number;
  /** Virtual ms allowed for convergence after faults stop (liveness bound). */
  quiet_ms?: number;
  /** The writer's durability: `quorum` acknowledges once a majority of the nodes hold a commit. */
  durability?: 'local' | 'quorum';
  /**
   * How replicas get generations: `artifacts` (Option B, default), `commits` (Option A: every
   * replica rebuilds from the commit stream) or `mixed` (odd-numbered replicas rebuild).
   */
  replication?: 'artifacts' | 'commits' | 'mixed';
}

export type { SimResult, Violation } from './harness.ts';

interface SimNodeSlot {
  name: string;
  role: 'writer' | 'replica';
  disk: SimDisk;
  key: PrivateKey;
  peer_id: string;
  node: FsmeshNode | null;
  cluster: ClusterService | null;
  down_until: number | null;
  rogue?: boolean;
  /** Wall-clock offset of this node (clock_skew). */
  skew_ms: number;
  /** The running incarnation's view of time (paused with the node). */
  clock: NodeClock | null;
  /** `--trusted-writer` of a replica: the original writer, until an operator re-provisions it. */
  trusted_writer?: string;
  /** `commit_seq:marker_id` of every commit a killed incarnation held, for the quorum-ack check. */
  killed_held: Set<string>;
}

const simAddr = (peer: string) => `/sim/${peer}/p2p/${peer}`;

export async function runSimulation(cfg: SimConfig): Promise<SimResult> {
  const rng: Random = seededRandom(cfg.seed);
  const clock = new VirtualClock();
  const net = new SimNetwork(clock, rng.fork());
  const stepMs = cfg.step_ms ?? 50;
  const quietMs = cfg.quiet_ms ?? 30_000;
  const run = new RunLog(clock);
  const stats: Record<string, number> = {
    ingests: 0,
    acked: 0,
    queries: 0,
    query_errors: 0,
    crashes: 0,
    wipes: 0,
    corruptions: 0,
    partitions: 0,
    activations: 0,
  };
  const log = (s: string) => run.log(s);
  const violate = (kind: Violation['kind'], invariant: string, detail: string) =>
    run.violate(kind, invariant, detail);
  const has = (f: Fault) => cfg.faults.includes(f);

  const slots: SimNodeSlot[] = [];
  // Skews from their own stream, so adding the fault moved no other random draw of a seed.
  const skewRng = seededRandom(cfg.seed ^ 0xc10c);
  for (let i = 0; i < cfg.nodes + (has('rogue_writer') ? 1 : 0); i++) {
    const key = await generateKeyPairFromSeed('Ed25519', rng.bytes(32));
    const rogue = i === cfg.nodes;
    const disk = new SimDisk(rng.fork());
    disk.sleep = (ms) => clock.sleep(ms);
    slots.push({
      name: rogue ? 'rogue' : i === 0 ? 'writer' : `replica-${i}`,
      role: i === 0 || rogue ? 'writer' : 'replica',
      disk,
      key,
      peer_id: peerIdOf(key),
      node: null,
      cluster: null,
      down_until: null,
      rogue,
      skew_ms: has('clock_skew') ? skewRng.int(20_001) - 10_000 : 0,
      killed_held: new Set(),
      clock: null,
    });
  }
  const writerId = slots[0].peer_id;
  // Failover: the operator's admin key (off the cluster) and which slot writes now.
  // From its own stream, so adding failover did not move every other random draw of a seed.
  const adminKey = await generateKeyPairFromSeed('Ed25519', seededRandom(cfg.seed ^ 0xad317).bytes(32));
  const adminPub = toHex(adminKey.publicKey.raw);
  let writerIdx = 0;
  let failovers = 0;
  let currentEpoch = 0;
  let ticketEpoch = 0;
  const ackedMarkers = new Map<number, string>(); // commit_seq -> marker_id of every acknowledged write
  const isWriter = (s: SimNodeSlot) => s === slots[writerIdx];
  /** Option A or B for a node (the role it plays later does not matter: a writer ignores it). */
  const replicationOf = (name: string): 'artifacts' | 'commits' => {
    const mode = cfg.replication ?? 'artifacts';
    if (mode !== 'mixed') return mode;
    return Number(/\d+$/.exec(name)?.[0] ?? 0) % 2 === 1 ? 'commits' : 'artifacts';
  };
  const honest = () => slots.filter((x) => !x.rogue);
  const hostile = has('hostile_member') ? await hostileMember(net, cfg.seed) : null;
  /** Each node's view of the cluster, for a violation's detail. */
  const describeNodes = () =>
    honest()
      .map((x) => {
        const st = x.cluster?.status() as Record<string, unknown> | undefined;
        return `${x.name}${isWriter(x) ? '*' : ''}: ${st ? `role ${st.role} epoch ${st.epoch} trusts ${String(st.trusted_writer).slice(-6)} peers ${(st.peers as string[]).length} log ${x.node?.engine.log.commitSeqHigh}` : 'down'}`;
      })
      .join('; ');
  /** Does this node hold commit `seq` with `marker` (now, or in an incarnation since killed)? */
  const holds = (x: SimNodeSlot, seq: number, marker: string) => {
    const l = x.node?.engine.log;
    return (
      (l !== undefined && l.commitSeqHigh >= seq && l.markerIdAt(seq) === marker) ||
      x.killed_held.has(`${seq}:${marker}`)
    );
  };
  const noteAck = (ack: { commit_seq: number; marker_id: string }, by: SimNodeSlot) => {
    maxAcked = Math.max(maxAcked, ack.commit_seq);
    ackedMarkers.set(ack.commit_seq, ack.marker_id);
    // Quorum durability means the commit was on ⌊members/2⌋ other members' disks when the writer
    // acknowledged it — not that ⌊members/2⌋ peers said so (a hostile member's acks are free).
    if (cfg.durability !== 'quorum') return;
    const holders = honest().filter((x) => x !== by && holds(x, ack.commit_seq, ack.marker_id)).length;
    if (holders < Math.floor(cfg.nodes / 2))
      violate(
        'safety',
        'quorum_ack_held_by_majority',
        `${by.name} acknowledged commit ${ack.commit_seq} held by ${holders} other members (${describeNodes()})`,
      );
  };
  const trustedManifests = new Set<string>(); // manifests the trusted writer activated
  const answers = new Map<string, string>(); // manifest|query -> hits
  let maxAcked = 0;

  async function boot(s: SimNodeSlot): Promise<void> {
    try {
      await bootOnce(s);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOSPC') {
        // A full disk refuses the restart with a clear error; try again later.
        log(`${s.name} restart refused: disk full`);
        s.down_until = clock.nowMs() + 500;
        return;
      }
      // A node that cannot reopen its own data directory lost or corrupted accepted state.
      violate(
        'safety',
        'node_restarts_from_its_data',
        `${s.name} failed to restart: ${(err as Error).message.slice(0, 160)}`,
      );
      s.down_until = null;
    }
  }

  async function bootOnce(s: SimNodeSlot): Promise<void> {
    const nodeClock = new NodeClock(clock);
    nodeClock.skew_ms = s.skew_ms;
    s.clock = nodeClock;
    const { node, cluster } = await composeNode({
      node: {
        node_name: s.name,
        role: s.role,
        runtime: { clock: nodeClock, random: rng.fork(), storage: s.disk.mount() },
        ...SIM_NODE,
      },
      cluster: {
        transport: net.transport(s.peer_id),
        private_key: s.key,
        cluster: 'sim',
        role: s.role,
        durability: cfg.durability ?? 'local',
        replication: replicationOf(s.name),
        members: cfg.nodes,
        // The honest nodes by name (the secure configuration): acks from anyone else never count.
        member_ids: honest()
          .map((x) => x.peer_id)
          .filter((id) => id !== s.peer_id),
        trusted_writer: s.role === 'replica' ? (s.trusted_writer ?? writerId) : undefined,
        // The rogue plays by no rule of the failover protocol (no fence holds it back).
        admin_pub: s.rogue ? undefined : adminPub,
        // Replicas dial every honest node (the rogue too: a hostile member reaches everyone); the
        // writer dials nobody at first and finds its peers again after a restart through the
        // addresses it remembered.
        seeds:
          s.name === 'writer' && s.role === 'writer'
            ? []
            : honest()
                .filter((x) => x !== s)
                .map((x) => simAddr(x.peer_id)),
        lag_alert_commits: 1000,
        announce_interval_ms: 200,
        quorum_timeout_ms: 5000,
      },
    });
    node.events.on((e) => {
      if (e.event === 'generation_activation_succeeded') {
        stats.activations++;
        // The writer of the current epoch (its own view: role and epoch) is the trusted one; a
        // promoted writer may activate before the harness records its promotion.
        const st = s.rogue
          ? undefined
          : (s.cluster?.status() as { role?: string; epoch?: number } | undefined);
        if (st?.role === 'writer' && (st.epoch ?? 0) >= currentEpoch)
          trustedManifests.add(String(e.artifact_manifest_id));
        log(`${s.name} activated ${e.generation_id} ${String(e.artifact_manifest_id).slice(0, 12)}`);
      }
      if (e.event === 'generation_activation_failed')
        log(`${s.name} activation of ${e.generation_id} failed: ${String(e.reason).slice(0, 100)}`);
    });
    s.node = node;
    s.cluster = cluster!;
    s.down_until = null;
    log(
      `${s.name} up (log ${node.engine.log.commitSeqHigh}, active ${node.engine.generations.active?.generation_id ?? '-'})`,
    );
    if (isWriter(s) && node.engine.log.commitSeqHigh < maxAcked) {
      violate(
        'safety',
        'acknowledged_commits_never_lost',
        `writer restarted with log head ${node.engine.log.commitSeqHigh} < acknowledged ${maxAcked}`,
      );
    }
  }

  async function kill(s: SimNodeSlot, how: 'crash' | 'wipe'): Promise<void> {
    if (!s.node) return;
    const node = s.node;
    const capsules = node.engine.log;
    for (let seq = 1; seq <= capsules.commitSeqHigh; seq++)
      s.killed_held.add(`${seq}:${capsules.markerIdAt(seq)}`);
    s.node = null;
    s.cluster = null;
    unpause(s); // a paused process can be killed too; the next incarnation starts running
    // Crash first, so nothing of the dying incarnation reaches the disk afterwards.
    if (how === 'crash') s.disk.crash(rng.next() < 0.5);
    else {
      s.disk.wipe();
      // The node lost the handover and the promise it kept: the operator starts it again as a
      // replica of the writer now (docs/runbook.md). With the original writer's flags it would
      // confirm that writer, deposed, on its return and lift its fence (seeds 284 and 889).
      s.role = 'replica';
      s.trusted_writer = slots[writerIdx].peer_id;
    }
    // A crash is not a graceful stop: stop() detaches the cluster from the network and cancels the
    // node's timers synchronously, first thing; whatever was still in flight fails on the dead disk.
    void node.stop().catch(() => {});
    await settle();
    log(`${s.name} ${how}`);
  }

  function unpause(s: SimNodeSlot): void {
    if (!s.clock?.isPaused) return;
    s.clock.resume();
    net.resume(s.peer_id);
    log(`${s.name} resumed`);
  }

  const drive = driver(clock);

  for (const s of slots) await drive(boot(s));
  // Give the rogue writer something of its own to announce.
  const rogue = slots.find((s) => s.rogue);

  const docText = (i: number) =>
    `simulated document ${i} about ${['rivers', 'hills', 'lakes', 'roads', 'towns'][i % 5]} number ${i % 17}`;
  let docCounter = 0;
  const pending: Promise<unknown>[] = [];

  const checkActive = () => {
    for (const s of slots) {
      if (!s.node || s.rogue) continue;
      const a = s.node.engine.generations.active;
      if (a && !isWriter(s) && !trustedManifests.has(a.artifact_manifest_id)) {
        violate(
          'safety',
          'only_trusted_signed_manifests_activate',
          `${s.name} activated ${a.generation_id} ${a.artifact_manifest_id.slice(0, 12)} which the trusted writer never activated`,
        );
      }
    }
  };

  const query = (s: SimNodeSlot) => {
    const node = s.node!;
    const mode = (['lexical', 'vector', 'hybrid'] as const)[rng.int(3)];
    const q = ['rivers', 'hills number 3', 'lakes roads', 'towns', 'document 12'][rng.int(5)];
    const k = 1 + rng.int(10);
    const readMode = rng.int(3);
    const head = node.engine.generations.active?.commit_seq_high ?? 0;
    const opts =
      readMode === 1
        ? { min_commit_seq: Math.max(1, head), timeout_ms: 2000 }
        : readMode === 2 && head > 0
          ? { as_of_commit_seq: rng.int(head + 1) }
          : {};
    stats.queries++;
    const p = node
      .search({ q, mode, k, ...opts })
      .then((r) => {
        const key = `${r.artifact_manifest_id}|${q}|${mode}|${k}`;
        const hits = JSON.stringify(r.hits.map((h) => [h.doc_id, Number(h.score.toFixed(9))]));
        const seen = answers.get(key);
        if (seen === undefined) answers.set(key, hits);
        else if (seen !== hits)
          violate('safety', 'same_generation_same_answer', `${s.name} ${key}: ${hits} != ${seen}`);
        if ('min_commit_seq' in opts && r.commit_seq_high < (opts.min_commit_seq as number))
          violate(
            'safety',
            'strict_read_respects_min_commit_seq',
            `${s.name} answered from ${r.commit_seq_high} < ${opts.min_commit_seq}`,
          );
        if ('as_of_commit_seq' in opts && r.commit_seq_high > (opts.as_of_commit_seq as number))
          violate(
            'safety',
            'time_travel_not_after_as_of',
            `${s.name} answered from ${r.commit_seq_high} > ${opts.as_of_commit_seq}`,
          );
        if (!s.rogue && !isWriter(s) && !trustedManifests.has(r.artifact_manifest_id))
          violate(
            'safety',
            'only_trusted_signed_manifests_activate',
            `${s.name} answered from untrusted manifest ${r.artifact_manifest_id.slice(0, 12)}`,
          );
        log(
          `${s.name} q "${q}" ${mode} k${k} ${JSON.stringify(opts)} -> ${r.generation_id} [${r.hits.map((h) => h.doc_id).join(',')}]`,
        );
      })
      .catch((err) => {
        stats.query_errors++;
        log(`${s.name} q error ${(err as Error).message.slice(0, 80)}`);
      });
    pending.push(p);
  };

  /**
   * The operator's failover: the writer dies (it may come back later, unchanged, and must follow),
   * a live replica is promoted with the admin key. No acknowledged commit may be lost.
   */
  async function failover(): Promise<void> {
    const old = slots[writerIdx];
    const candidates = honest().filter((x) => x !== old && x.node);
    if (!candidates.length) return;
    const next = candidates[rng.int(candidates.length)];
    // Stay within the fault budget: when wipes left the writer as the only live holder of an
    // acknowledged commit, losing the writer too is a double failure no quorum survives (an
    // operator restores the writer's disk instead). Found with seed 803.
    for (const [seq, marker] of [...ackedMarkers].sort((a, b) => a[0] - b[0])) {
      const held = candidates.some((x) => {
        const l = x.node!.engine.log;
        return l.commitSeqHigh >= seq && l.markerIdAt(seq) === marker;
      });
      if (!held) {
        log(`failover skipped: only the writer holds acknowledged commit ${seq} (beyond the fault budget)`);
        return;
      }
    }
    if (old.clock?.isPaused) {
      // Paused, not dead (a long GC, SIGSTOP): the operator fails over around it, and it comes
      // back later believing it still writes — the zombie writer the promise phase must stop.
      log(`${old.name} is paused: failing over around a zombie writer`);
    } else if (old.node) {
      stats.crashes++;
      await kill(old, 'crash');
      old.down_until = clock.nowMs() + 500 + rng.int(2000);
    }
    await promoteTo(next);
  }

  /** `fsmesh promote` against `next`: ticket, prepare, sign the plan, promote. True if it writes now. */
  async function promoteTo(next: SimNodeSlot): Promise<boolean> {
    if (!next.node || !next.cluster) return false;
    const cluster = next.cluster;
    // The operator's admin key signs the prepare ticket (promise phase); a refused promotion leaves
    // promises behind, so every attempt takes a fresh epoch.
    ticketEpoch = Math.max(ticketEpoch, currentEpoch) + 1;
    const ticket = await signPrepareTicket(adminKey, {
      format: 1,
      kind: 'prepare',
      cluster: 'sim',
      shard: next.node!.status().shard,
      epoch: ticketEpoch,
      candidate: next.peer_id,
    });
    const plan = await drive(
      cluster.preparePromotion(ticket).catch((e: Error) => {
        log(`promotion of ${next.name} refused: ${e.message.slice(0, 240)}`);
        return null;
      }),
      10_000,
    );
    if (!plan || !next.node) return false;
    const signed = await signHandover(adminKey, handoverOf(plan));
    const done = await drive(
      cluster.promote(signed).then(
        () => true,
        (e: Error) => {
          log(`promote ${next.name} failed: ${e.message.slice(0, 80)}`);
          return false;
        },
      ),
      10_000,
    );
    if (!done || !next.node) return false;
    failovers++;
    currentEpoch = plan.epoch;
    writerIdx = slots.indexOf(next);
    log(`failover: ${next.name} writes, epoch ${plan.epoch}, history up to ${plan.commit_seq_high}`);
    const l = next.node.engine.log;
    for (const [seq, marker] of [...ackedMarkers].sort((a, b) => a[0] - b[0])) {
      if (seq > l.commitSeqHigh || l.markerIdAt(seq) !== marker) {
        violate(
          'safety',
          'acknowledged_commits_survive_failover',
          `${next.name} history lacks acknowledged commit ${seq}`,
        );
        break;
      }
    }
    return true;
  }

  // ---------------- workload with faults ----------------
  for (let step = 0; step < cfg.steps; step++) {
    const up = slots.filter((s) => s.node && !s.rogue);
    const r = rng.next();
    const writer = slots[writerIdx];
    if (r < 0.45 && writer.node) {
      const ops = Array.from({ length: 1 + rng.int(4) }, () => {
        const i = docCounter++;
        return rng.next() < 0.15 && i > 5
          ? { op: 'delete' as const, doc_id: `d${rng.int(i)}` }
          : { op: 'upsert' as const, doc_id: `d${i % 60}`, text: docText(i) };
      });
      stats.ingests++;
      const node = writer.node;
      pending.push(
        node.ingestOps(ops).then(
          (ack) => {
            stats.acked++;
            noteAck(ack, writer);
            log(`writer ack ${ack.commit_seq}`);
          },
          (err) => log(`writer ingest error ${(err as Error).message.slice(0, 60)}`),
        ),
      );
    } else if (r < 0.8 && up.length) {
      query(up[rng.int(up.length)]);
    } else if (r < 0.9 && cfg.faults.length) {
      const f = cfg.faults[rng.int(cfg.faults.length)];
      const victim = slots[rng.int(cfg.nodes)];
      if (f === 'crash' && victim.node) {
        stats.crashes++;
        await kill(victim, 'crash');
        victim.down_until = clock.nowMs() + 200 + rng.int(2000);
      } else if (f === 'wipe' && victim.node && !isWriter(victim)) {
        stats.wipes++;
        await kill(victim, 'wipe');
        victim.down_until = clock.nowMs() + 200 + rng.int(1000);
      } else if (f === 'corrupt') {
        const p = victim.disk.flipBitInArtifact();
        if (p) {
          stats.corruptions++;
          log(`${victim.name} bit flip ${p.slice(-16)}`);
        }
      } else if (f === 'partition') {
        const other = slots[rng.int(cfg.nodes)];
        if (other !== victim) {
          stats.partitions++;
          net.partition(victim.peer_id, other.peer_id, rng.next() < 0.3);
          log(`partition ${victim.name} / ${other.name}`);
          clock.setTimeout(() => {
            net.heal();
            log('heal');
          }, 500 + rng.int(3000));
        }
      } else if (f === 'enospc') {
        // The disk fills up for a while: appends, builds and fetches fail cleanly, nothing acknowledged is lost.
        victim.disk.enospc = true;
        log(`${victim.name} disk full`);
        clock.setTimeout(() => {
          victim.disk.enospc = false;
          log(`${victim.name} disk has space again`);
        }, 300 + rng.int(2000));
      } else if (f === 'slow_disk') {
        victim.disk.slow_ms = 5 + rng.int(50);
        log(`${victim.name} disk slow ${victim.disk.slow_ms} ms/op`);
        clock.setTimeout(() => {
          victim.disk.slow_ms = 0;
        }, 500 + rng.int(3000));
      } else if (f === 'failover' && cfg.durability === 'quorum' && failovers < 2) {
        await failover();
      } else if (f === 'pause' && victim.node && victim.clock && !victim.clock.isPaused) {
        // A process frozen (SIGSTOP, a long GC): no timer fires, no message in or out.
        victim.clock.pause();
        net.pause(victim.peer_id);
        stats.pauses = (stats.pauses ?? 0) + 1;
        const ms = 500 + rng.int(14_500);
        log(`${victim.name} paused for ${ms} ms`);
        clock.setTimeout(() => unpause(victim), ms);
      } else if (f === 'clock_skew' && victim.clock) {
        // Besides a fixed offset per node, wall clocks step (NTP, a VM resumed with a stale clock):
        // anything that measures a duration must use monotonic time.
        const step = rng.int(20_001) - 10_000;
        victim.skew_ms += step;
        victim.clock.skew_ms = victim.skew_ms;
        log(`${victim.name} wall clock steps ${step} ms`);
      } else if (f === 'drop') {
        net.faults = { ...net.faults, drop: 0.05, duplicate: 0.05 };
      } else if (f === 'rogue_writer' && rogue?.node) {
        pending.push(
          rogue.node
            .ingestOps([{ op: 'upsert', doc_id: `rogue${step}`, text: 'rogue content rivers' }])
            .catch(() => {}),
        );
        log('rogue writer commits');
      }
    }
    // The hostile member keeps (re)connecting to everyone, and now and then sends oversized requests.
    if (hostile) {
      for (const s of honest()) if (s.node) net.connect(hostile.peerId, s.peer_id);
      if (rng.next() < 0.05) hostile.probe(honest()[rng.int(cfg.nodes)].peer_id);
    }
    // Restart nodes whose downtime is over.
    for (const s of slots)
      if (!s.node && s.down_until !== null && s.down_until <= clock.nowMs()) await drive(boot(s));
    const end = clock.nowMs() + stepMs;
    while (clock.step(end)) await settle();
    await settle();
    checkActive();
  }

  // ---------------- quiet period: liveness ----------------
  net.heal();
  for (const s of slots) unpause(s);
  net.faults = { ...net.faults, drop: 0, duplicate: 0 };
  for (const s of slots) {
    s.disk.enospc = false;
    s.disk.slow_ms = 0;
  }
  for (const s of slots) if (!s.node) await drive(boot(s));
  log('faults stopped');
  // A promotion refused during the faults left promises and no new writer: the operator runs
  // `fsmesh promote` again (docs/runbook.md), here on the node that wrote last, now back up.
  for (let attempt = 0; attempt < 3 && ticketEpoch > currentEpoch; attempt++) {
    log(`operator completes the promotion (attempt ${attempt + 1})`);
    if (await promoteTo(slots[writerIdx])) break;
    await drive(clock.sleep(1000));
  }
  // Liveness: once faults heal, a write is acknowledged within the bound (connections must heal
  // for a quorum write; a writer that cannot reach its replicas never acknowledges one).
  const resumeBoundMs = 15_000;
  // A client retries refused writes (busy, Retry-After) until the bound, as a real one would.
  const resumeDeadline = clock.nowMs() + resumeBoundMs;
  const writeUntilAcknowledged = async (): Promise<boolean> => {
    for (let i = 0; clock.nowMs() < resumeDeadline; i++) {
      const by = slots[writerIdx];
      const node = by.node;
      const ok = node
        ? await node
            .ingestOps([{ op: 'upsert', doc_id: `after-faults-${i}`, text: 'written once faults healed' }])
            .then(
              (ack) => {
                noteAck(ack, by);
                return true;
              },
              () => false,
            )
        : false;
      if (ok) return true;
      await clock.sleep(500);
    }
    return false;
  };
  const resumed = await drive(writeUntilAcknowledged(), resumeBoundMs + 1000);
  if (!resumed)
    violate(
      'liveness',
      'writes_resume_after_faults_heal',
      `writer could not acknowledge a write within ${resumeBoundMs} ms of the faults healing; ${describeNodes()}`,
    );
  const quietEnd = clock.nowMs() + quietMs;
  const converged = () => {
    const w = slots[writerIdx].node?.engine;
    if (!w) return false;
    if (w.generations.active?.commit_seq_high !== w.log.commitSeqHigh) return false;
    const target = w.generations.active?.artifact_manifest_id;
    return slots.every((s) => s.rogue || s.node?.engine.generations.active?.artifact_manifest_id === target);
  };
  let lastScrub = 0;
  while (clock.nowMs() < quietEnd && !converged()) {
    if (!clock.step(quietEnd)) break;
    await settle();
    if (clock.nowMs() - lastScrub > 2000) {
      lastScrub = clock.nowMs();
      for (const s of slots) if (s.node && !s.rogue) pending.push(s.node.scrub().catch(() => {}));
    }
  }
  await drive(Promise.allSettled(pending));
  await settle();
  checkActive();
  if (!converged()) {
    const w = slots[writerIdx].node!.engine;
    violate(
      'liveness',
      'healthy_nodes_converge',
      `after ${quietMs} ms quiet: writer ${w.generations.active?.generation_id}@${w.generations.active?.commit_seq_high}/${w.log.commitSeqHigh}; ${slots
        .filter((s) => !s.rogue)
        .map((s) => `${s.name}=${s.node?.engine.generations.active?.generation_id ?? '-'}`)
        .join(' ')}`,
    );
  } else {
    // Converged nodes hold byte-identical objects for the generation (content-addressed + verified).
    const w = slots[writerIdx].node!.engine;
    const m = await w.generations.loadManifest(w.generations.active!.artifact_manifest_id);
    for (const s of slots) {
      if (s.rogue || !s.node) continue;
      for (const a of [...m.lexical_artifacts, ...m.vector_artifacts]) {
        if ((await s.node.engine.objects.check('artifact', a.object_id)) !== 'ok') {
          // A bit flip the scrub has not reached yet is repaired at read time; check by reading.
          const rep = await drive(s.node.engine.symbols.checkAndRepairLocally('artifact', a.object_id));
          if (
            rep?.outcome !== 'repaired' &&
            (await drive(s.node.requestRepair(a.object_id))) !== 'repaired'
          ) {
            violate(
              'liveness',
              'converged_nodes_hold_identical_objects',
              `${s.name} cannot produce a verified copy of ${a.object_id.slice(0, 12)}`,
            );
          }
        }
      }
    }
  }
  // Commit history: replicas' markers equal the writer's (gap-free, same chain).
  const wlog = slots[writerIdx].node!.engine.log;
  for (const s of slots) {
    if (s.rogue || !s.node || isWriter(s)) continue;
    const l = s.node.engine.log;
    for (let seq = 1; seq <= Math.min(l.commitSeqHigh, wlog.commitSeqHigh); seq++) {
      if (l.markerIdAt(seq) !== wlog.markerIdAt(seq)) {
        violate(
          'safety',
          'commit_history_matches_writer',
          `${s.name} commit_seq ${seq} marker differs from the writer's`,
        );
        break;
      }
    }
    if (l.commitSeqHigh > wlog.commitSeqHigh)
      violate(
        'safety',
        'commit_history_matches_writer',
        `${s.name} log is ahead of the writer (${l.commitSeqHigh} > ${wlog.commitSeqHigh})`,
      );
  }
  if (wlog.commitSeqHigh < maxAcked)
    violate(
      'safety',
      'acknowledged_commits_never_lost',
      `writer log ${wlog.commitSeqHigh} < acknowledged ${maxAcked}`,
    );
  // Every acknowledged commit is in the final writer's history, as acknowledged (across failovers).
  for (const [seq, marker] of [...ackedMarkers].sort((x, y) => x[0] - y[0])) {
    if (seq <= wlog.commitSeqHigh && wlog.markerIdAt(seq) !== marker) {
      violate(
        'safety',
        'acknowledged_commits_never_lost',
        `commit ${seq} was acknowledged as another record`,
      );
      break;
    }
  }
  stats.failovers = failovers;
  for (const s of slots) {
    if (s.node) {
      await drive(s.node.stop());
    }
  }
  stats.virtual_ms = clock.nowMs() - 1_700_000_000_000;
  stats.messages = net.messages;
  stats.messages_dropped = net.dropped;
  stats.max_acked_commit_seq = maxAcked;
  return run.result(cfg.seed, cfg.steps, stats);
}

/**
 * A hostile member (fault `hostile_member`): it connects to everyone and lies. Its head answer
 * claims an enormous commit head, a healthy generation nobody signed, and a promise without a
 * ticket; it acknowledges every replicated commit without storing it (spoofed acks); it never
 * answers anything else (a silent peer: every wait on it needs a deadline); and it sends oversized
 * requests. The guards: heads attributed to their sender, routing only to trusted generations,
 * promises only with the admin's signature, acks only from named members, bounded requests.
 */
async function hostileMember(net: SimNetwork, seed: number) {
  const key = await generateKeyPairFromSeed('Ed25519', seededRandom(seed ^ 0x4057).bytes(32));
  const t = net.transport(peerIdOf(key));
  await t.start();
  const forever = () => new Promise<Uint8Array[]>(() => {});
  t.handle(PROTO.head, async () => [
    jsonFrame({
      commit_seq_high: 1e12,
      head_marker_id: 'ab'.repeat(32),
      health: 'healthy',
      draining: false,
      active_commit_seq_high: 1e12,
      generation_id: 'gen-999999',
      artifact_manifest_id: 'cd'.repeat(32),
      repairing: [],
      record: null,
      writer: t.peerId,
      handover: null,
      promised_epoch: 1e6,
      promised_to: t.peerId,
      peers: [],
    }),
  ]);
  t.handle(PROTO.replicate, async (req) => {
    const marker = decodeMarker(req.subarray(0, MARKER_BYTES));
    return [jsonFrame({ ok: true, commit_seq: marker.commit_seq })];
  });
  for (const p of [PROTO.manifest, PROTO.symbols, PROTO.capsules, PROTO.search]) t.handle(p, forever);
  return {
    peerId: t.peerId,
    /** Oversized and absurd requests: each must be refused cleanly, nothing allocated for them. */
    probe(peer: string) {
      const ignore = () => {};
      t.request(peer, PROTO.head, jsonFrame({ prepare: 'x'.repeat(8192) }), { timeout_ms: 1000 }).catch(
        ignore,
      );
      t.request(
        peer,
        PROTO.symbols,
        jsonFrame({ object_id: 'ab'.repeat(32), kind: 'artifact', ranges: [[0, 2 ** 32]] }),
        { timeout_ms: 1000 },
      ).catch(ignore);
      t.request(peer, PROTO.capsules, jsonFrame({ from: 1, to: 1e15 }), { timeout_ms: 1000 }).catch(ignore);
    },
  };
}
