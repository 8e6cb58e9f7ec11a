/** Node configuration: what `createNode` accepts, and its validation (every problem named). */
import type { Ref } from 'nact';
import type { BuildPolicy } from '../actors/context.ts';
import type { RepairHooks } from '../actors/repair-actor.ts';
import type { RestartPolicy } from '../actors/supervision.ts';
import type { EngineConfig } from '../engine/local-engine.ts';
import type { HealthPolicy } from '../fsm/node-health.ts';
import type { Runtime } from '../runtime/index.ts';
import type { ServiceFactory } from './services.ts';

export interface NodeConfig {
  /** Data directory (required unless `runtime.storage` is given). */
  data_dir?: string;
  node_name?: string;
  shard?: string;
  role?: 'writer' | 'replica';
  /** `fsync` acks each commit after its own fsync; `group` shares fsyncs within group_commit_ms. */
  fsync?: 'per_commit' | 'group';
  group_commit_ms?: number;
  build?: Partial<BuildPolicy>;
  scrub_interval_ms?: number;
  scrub_bytes_per_s?: number;
  /**
   * With scrubbing on, the first scrub runs this long after start (or after scrub_interval_ms if
   * that is shorter), then every scrub_interval_ms.
   */
  first_scrub_delay_ms?: number;
  mailbox_bound?: number;
  restart_policy?: Partial<RestartPolicy>;
  health_policy?: Partial<HealthPolicy>;
  engine?: Partial<EngineConfig>;
  /** Injected effects (the simulator passes its own). */
  runtime?: Partial<Runtime>;
  /** A host application's nact system or actor to spawn the node's actors under. */
  actor_parent?: Ref<any>;
  repair_hooks?: RepairHooks;
  /** Capabilities composed into the node (the cluster, ...), each built from the node's components. */
  services?: ServiceFactory[];
}

const KNOWN_KEYS = new Set<string>([
  'data_dir',
  'node_name',
  'shard',
  'role',
  'fsync',
  'group_commit_ms',
  'build',
  'scrub_interval_ms',
  'scrub_bytes_per_s',
  'first_scrub_delay_ms',
  'mailbox_bound',
  'restart_policy',
  'health_policy',
  'engine',
  'runtime',
  'actor_parent',
  'repair_hooks',
  'services',
]);

export function validateNodeConfig(c: NodeConfig): string[] {
  const p: string[] = [];
  if (typeof c !== 'object' || c === null) return ['config: must be an object'];
  for (const k of Object.keys(c)) if (!KNOWN_KEYS.has(k)) p.push(`${k}: unknown option`);
  if (c.data_dir === undefined && !c.runtime?.storage) p.push('data_dir: required (or pass runtime.storage)');
  if (c.data_dir !== undefined && (typeof c.data_dir !== 'string' || c.data_dir === ''))
    p.push('data_dir: must be a non-empty path');
  if (
    c.node_name !== undefined &&
    (typeof c.node_name !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(c.node_name))
  )
    p.push('node_name: 1-128 of [A-Za-z0-9._-]');
  if (c.shard !== undefined && (typeof c.shard !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(c.shard)))
    p.push('shard: must match [a-z0-9][a-z0-9_-]{0,63}');
  if (c.role !== undefined && c.role !== 'writer' && c.role !== 'replica')
    p.push('role: must be "writer" or "replica"');
  if (c.fsync !== undefined && c.fsync !== 'per_commit' && c.fsync !== 'group')
    p.push('fsync: must be "per_commit" or "group"');
  const nat = (v: unknown, k: string, min = 0) => {
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min))
      p.push(`${k}: must be an integer >= ${min}`);
  };
  nat(c.group_commit_ms, 'group_commit_ms');
  nat(c.scrub_interval_ms, 'scrub_interval_ms');
  nat(c.scrub_bytes_per_s, 'scrub_bytes_per_s');
  nat(c.first_scrub_delay_ms, 'first_scrub_delay_ms');
  nat(c.mailbox_bound, 'mailbox_bound', 1);
  nat(c.build?.batch_max_commits, 'build.batch_max_commits', 1);
  nat(c.build?.build_interval_ms, 'build.build_interval_ms');
  return p;
}
