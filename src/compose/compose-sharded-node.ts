/**
 * The composition root of a multi-shard node (docs/sharding.md): one network host and identity,
 * one local node per shard under `shards/<k>/` of the data dir (the writer of `writer_of`, a
 * replica of every other shard), the ShardSet that splits writes and gathers reads, and the
 * HTTP API over all of it. The shard count is recorded in `shards.json` at first start and a
 * restart with another count is refused (documents would land on other shards).
 */
import * as path from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { canonicalBytes } from '../core/canonical-json.ts';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { FsmeshError } from '../core/errors.ts';
import { checkShardCount, checkShardIndex, shardName } from '../core/sharding.ts';
import { type HttpOptions, startHttpServer } from '../http/server.ts';
import { shardedRoutes } from '../http/sharded-routes.ts';
import type { NodeConfig } from '../node/index.ts';
import { type ClusterService, type ClusterServiceConfig, libp2pTransport } from '../p2p/cluster.ts';
import { loadOrCreateIdentity } from '../p2p/identity.ts';
import { RemoteShardTrust } from '../p2p/remote-shard.ts';
import { SharedHost } from '../p2p/shard-transport.ts';
import {
  isNotFound,
  nodeFsStorage,
  type Storage,
  subStorage,
  systemClock,
  writeFileAtomic,
} from '../runtime/index.ts';
import { type LocalShard, type RemoteShard, ShardSet } from '../shards/shard-set.ts';
import { type ComposedNode, composeNode, type HttpHandle } from './compose-node.ts';

export interface ShardedComposeOptions {
  shards: number;
  /** The shard this node writes (at most one); null: a replica of every shard. */
  writer_of: number | null;
  /**
   * The shards this node replicates besides the one it writes (`--replicate-shards`); default all.
   * The others are followed remotely: writes forwarded to their writer, reads on a member.
   */
  replicate?: number[];
  /** Shared by every shard's node (`role` and `shard` are set per shard). */
  node: NodeConfig;
  cluster: ClusterServiceConfig;
  http?: HttpOptions;
}

export interface ComposedShardedNode {
  set: ShardSet;
  shards: ComposedNode[];
  peer_id: string;
  multiaddrs(): string[];
  http: HttpHandle | null;
  stop(): Promise<void>;
}

const LAYOUT_FILE = DATA_DIR.shards_layout_file;

/** The shard count this data dir was created with, written at first start. */
async function checkLayout(storage: Storage, shards: number): Promise<void> {
  try {
    const v = JSON.parse(new TextDecoder().decode(await storage.readFile(LAYOUT_FILE)));
    if (v?.shards !== shards)
      throw new FsmeshError(
        'invalid_input',
        `--shards ${shards}: this data dir holds a collection of ${v?.shards} shards (fixed for its life; ${LAYOUT_FILE})`,
      );
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await writeFileAtomic(storage, LAYOUT_FILE, canonicalBytes({ format: 1, shards }));
}

async function baseTransport(o: ShardedComposeOptions, storage: Storage) {
  const key = o.cluster.private_key ?? (await loadOrCreateIdentity(storage));
  return { key, transport: o.cluster.transport ?? (await libp2pTransport(o.cluster, key)) };
}

interface HostParts {
  root: Storage;
  key: PrivateKey;
  host: SharedHost;
}

/** One carried shard: a whole node under `shards/<k>/`, over the host's view for shard k. */
function composeShard(o: ShardedComposeOptions, k: number, p: HostParts): Promise<ComposedNode> {
  const role = k === o.writer_of ? 'writer' : 'replica';
  const name = shardName(k);
  return composeNode({
    node: {
      ...o.node,
      data_dir: undefined,
      shard: name,
      role,
      runtime: { ...o.node.runtime, storage: subStorage(p.root, `${DATA_DIR.shards_dir}/${name}`) },
    },
    cluster: {
      ...o.cluster,
      role,
      shards: checkShardCount(o.shards),
      transport: p.host.view(name),
      private_key: p.key,
    },
  });
}

/** A shard not carried here: its writer and signed generations, followed on its gossip topic. */
async function followShard(
  o: ShardedComposeOptions,
  k: number,
  p: Omit<HostParts, 'key'> & { local: LocalShard[] },
): Promise<RemoteShard> {
  const name = shardName(k);
  const transport = p.host.view(name);
  const trust = new RemoteShardTrust({
    transport,
    storage: subStorage(p.root, `${DATA_DIR.shards_dir}/${name}`),
    events: p.local[0].node.events,
    cluster: p.local[0].cluster.opts.cluster,
    shard: name,
    shards: checkShardCount(o.shards),
    seed_peer_ids: (o.cluster.seeds ?? []).map((s) => s.split('/p2p/')[1]).filter(Boolean),
    admin_pub: o.cluster.admin_pub,
  });
  await trust.start();
  return { shard: k, transport, trust };
}

/** The shards this node carries: those it replicates (default: all) and the one it writes. */
function carriedShards(o: ShardedComposeOptions, shards: number): Set<number> {
  const carried = new Set([...(o.replicate ?? Array.from({ length: shards }, (_, k) => k))]);
  for (const k of carried) checkShardIndex(k, shards, 'replicate');
  if (o.writer_of !== null) carried.add(o.writer_of);
  if (carried.size === 0)
    throw new FsmeshError('invalid_input', 'a multi-shard node carries at least one shard');
  return carried;
}

/** The HTTP API over the shard set; the routes it does not answer are those of `first`'s node. */
function shardedHttp(
  set: ShardSet,
  first: LocalShard,
  peerId: string,
  http: HttpOptions,
): Promise<HttpHandle> {
  const statusExtra = () => ({
    node: first.node.name,
    peer_id: peerId,
    multiaddrs: first.cluster.status().multiaddrs,
    cluster: first.cluster.opts.cluster,
  });
  return startHttpServer(first.node, {
    ...http,
    statusExtra,
    extraRoutes: shardedRoutes(set, { max_body_bytes: http.max_body_bytes, statusExtra }),
  });
}

export async function composeShardedNode(o: ShardedComposeOptions): Promise<ComposedShardedNode> {
  const shards = checkShardCount(o.shards);
  if (shards < 2) throw new FsmeshError('invalid_input', 'shards: a multi-shard node has 2 or more shards');
  if (o.writer_of !== null) checkShardIndex(o.writer_of, shards, 'writer_of');
  const root = o.node.runtime?.storage ?? nodeFsStorage(path.resolve(o.node.data_dir!));
  await checkLayout(root, shards);
  const { key, transport } = await baseTransport(o, root);
  const host = new SharedHost(transport);
  const carried = carriedShards(o, shards);
  const composed: ComposedNode[] = [];
  const stopAll = async () => {
    for (const c of [...composed].reverse()) await c.stop();
    await host.stop();
  };
  const local: LocalShard[] = [];
  const remote: RemoteShard[] = [];
  try {
    for (let k = 0; k < shards; k++) {
      if (!carried.has(k)) continue;
      const c = await composeShard(o, k, { root, key, host });
      composed.push(c);
      local.push({
        shard: k,
        node: c.node,
        cluster: c.cluster as ClusterService,
        transport: host.view(shardName(k)),
      });
    }
    for (let k = 0; k < shards; k++)
      if (!carried.has(k)) remote.push(await followShard(o, k, { root, host, local }));
  } catch (err) {
    await stopAll();
    throw err;
  }
  const set = new ShardSet({
    shards,
    writer_of: o.writer_of,
    self: transport.peerId,
    clock: o.node.runtime?.clock ?? systemClock,
    local,
    remote,
  });
  const first = local.find((l) => l.shard === o.writer_of) ?? local[0];
  let http: HttpHandle | null = null;
  try {
    if (o.http) http = await shardedHttp(set, first, transport.peerId, o.http);
  } catch (err) {
    await stopAll();
    throw err;
  }
  let stopping: Promise<void> | null = null;
  return {
    set,
    shards: composed,
    peer_id: transport.peerId,
    multiaddrs: () => first.cluster.status().multiaddrs as string[],
    http,
    stop: () => {
      stopping ??= (async () => {
        await http?.close();
        await stopAll();
      })();
      return stopping;
    },
  };
}
