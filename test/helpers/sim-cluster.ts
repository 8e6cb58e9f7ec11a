/**
 * Nodes composed over the simulator's clock, disks and network, for tests that need to force a
 * replication failure precisely (withheld symbols, a failing gate) and drive virtual time.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { NodeClock, VirtualClock } from '../../sim/clock.ts';
import { SimDisk } from '../../sim/disk.ts';
import { SimNetwork } from '../../sim/network.ts';
import { composeNode } from '../../src/compose/compose-node.ts';
import type { NodeConfig } from '../../src/node/index.ts';
import type { ClusterServiceConfig } from '../../src/p2p/cluster.ts';
import { peerIdOf } from '../../src/p2p/identity.ts';
import { seededRandom } from '../../src/runtime/index.ts';

export function simCluster(seed: number, cluster: Partial<ClusterServiceConfig> = {}) {
  const rng = seededRandom(seed);
  const clock = new VirtualClock();
  const net = new SimNetwork(clock, rng.fork());
  const settle = async () => {
    for (let i = 0; i < 12; i++) await new Promise((r) => setImmediate(r));
  };
  return {
    clock,
    net,
    async node(name: string, role: 'writer' | 'replica', trusted?: string, over: Partial<NodeConfig> = {}) {
      const key = await generateKeyPairFromSeed('Ed25519', rng.bytes(32));
      const transport = net.transport(peerIdOf(key));
      const nodeClock = new NodeClock(clock); // pausable, like the simulator's nodes
      const { node } = await composeNode({
        node: {
          node_name: name,
          role,
          runtime: { clock: nodeClock, random: rng.fork(), storage: new SimDisk(rng.fork()).mount() },
          build: { batch_max_commits: 1, build_interval_ms: 10 },
          ...over,
        },
        cluster: {
          transport,
          private_key: key,
          cluster: 'c',
          durability: 'local',
          members: 2,
          trusted_writer: trusted,
          seeds: trusted ? [`/sim/${trusted}/p2p/${trusted}`] : [],
          lag_alert_commits: 100,
          announce_interval_ms: 100,
          quorum_timeout_ms: 1000,
          ...cluster,
        },
      });
      const peer = peerIdOf(key);
      return {
        node,
        transport,
        peer,
        /** Freeze the node like SIGSTOP (no timer, no message in or out) and thaw it. */
        pause: () => {
          nodeClock.pause();
          net.pause(peer);
        },
        resume: () => {
          nodeClock.resume();
          net.resume(peer);
        },
        /** Step the node's wall clock (an NTP step, a VM resumed with a stale clock); monotonic time runs on. */
        stepWallClock: (ms: number) => {
          nodeClock.skew_ms += ms;
        },
      };
    },
    /**
     * Drive virtual time for `ms`, then insist `p` settled (a hang fails here, naming the budget):
     * its value, or its error thrown.
     */
    async drive<T>(p: Promise<T>, ms: number): Promise<T> {
      let r: { ok: true; v: T } | { ok: false; e: Error } | null = null;
      p.then(
        (v) => {
          r = { ok: true, v };
        },
        (e: Error) => {
          r = { ok: false, e };
        },
      );
      const end = clock.nowMs() + ms;
      while (clock.step(end)) await settle();
      await settle();
      const done = r as { ok: true; v: T } | { ok: false; e: Error } | null;
      if (!done) throw new Error(`did not settle within ${ms} ms of virtual time`);
      if (!done.ok) throw done.e;
      return done.v;
    },
    /** Run virtual time forward, letting promises settle between timers. */
    async runFor(ms: number) {
      const end = clock.nowMs() + ms;
      while (clock.step(end)) await settle();
      await settle();
    },
  };
}
