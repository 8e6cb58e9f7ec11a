/**
 * Option A, commit-stream replication (`node start --replication commits`, docs/replication.md): a
 * replica keeps receiving and fsyncing the writer's commits exactly as an artifact replica does, but
 * builds every generation itself — at the writer's boundaries, with its identity and number — and
 * activates it only when the result hashes to the writer's manifest id. The chain of manifests from
 * the signed target back to our active generation comes from the trusted writer (by generation id);
 * only their boundaries are used, and each rebuilt generation must hash to the manifest served, the
 * last one to the signed record. A different result is a divergence: a critical event, the writer's
 * manifest quarantined, nothing activated.
 */
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import { decodeManifest, type GenerationManifest, manifestIdOf } from '../../core/manifest.ts';
import type { Transport } from '../../runtime/index.ts';
import { jsonFrame, PROTO } from '../protocols.ts';
import type { SignedRecord } from '../records.ts';
import { type ReplayComponents, rebuildGeneration } from './capsule-replay.ts';
import { fetchManifestBytes } from './manifest-fetch.ts';

/** Generations rebuilt in one catch-up at most (a longer gap bootstraps from artifacts instead). */
const MAX_CHAIN = 1000;

export type CommitReplicationComponents = ReplayComponents & { transport: Transport };

/** The manifest of `generationId` from the trusted writer, checked against the child it precedes. */
async function parentManifest(
  c: CommitReplicationComponents,
  writer: string,
  generationId: string,
  child: GenerationManifest,
): Promise<{ manifest: GenerationManifest; id: string; bytes: Uint8Array }> {
  const [bytes] = await c.transport.request(
    writer,
    PROTO.manifest,
    jsonFrame({ generation_id: generationId }),
    {
      timeout_ms: CLUSTER_DEFAULTS.manifest_request_timeout_ms,
    },
  );
  if (!bytes) throw new FsmeshError('not_found', `the writer no longer retains ${generationId}`);
  const manifest = decodeManifest(bytes);
  if (
    manifest.generation_id !== generationId ||
    manifest.commit_seq_high + 1 !== child.commit_range.from_commit_seq ||
    manifest.shard !== child.shard
  )
    throw new FsmeshError(
      'invalid_manifest',
      `the writer served a manifest for ${generationId} that does not precede ${child.generation_id}`,
    );
  return { manifest, id: manifestIdOf(bytes), bytes };
}

/**
 * Rebuild every generation from our active one up to the signed record's. Throws `not_found` when
 * the writer no longer retains a generation of the chain (the caller bootstraps from artifacts).
 */
export async function rebuildTo(c: CommitReplicationComponents, s: SignedRecord): Promise<number> {
  const writer = c.trustedWriter();
  if (!writer) throw new FsmeshError('unavailable', 'no trusted writer yet');
  const targetBytes = await fetchManifestBytes(c, s.record);
  const chain = [
    { manifest: decodeManifest(targetBytes), id: s.record.artifact_manifest_id, bytes: targetBytes },
  ];
  // Walk back to our active generation, compared by manifest id: after a failover, generation ids
  // repeat across histories, and a rebuild on a same-named parent from the other history differs
  // (found by the simulator: false divergences on commits replicas after a promotion).
  const active = c.generations.active;
  for (;;) {
    const first = chain[0].manifest;
    const parent = first.parent_generation_id;
    if (parent === null) {
      if (active === null) break;
      throw new FsmeshError(
        'conflict',
        `the writer's history does not contain this node's ${active.generation_id}`,
      );
    }
    if (active && first.generation_seq <= active.generation_seq)
      throw new FsmeshError(
        'conflict',
        `the writer's history does not contain this node's ${active.generation_id}`,
      );
    if (chain.length >= MAX_CHAIN)
      throw new FsmeshError('not_found', `more than ${MAX_CHAIN} generations behind`);
    const p = await parentManifest(c, writer, parent, first);
    if (active && p.id === active.artifact_manifest_id) break;
    chain.unshift(p);
  }
  for (const link of chain) {
    try {
      await rebuildGeneration(c, link.manifest, link.id);
    } catch (err) {
      if ((err as FsmeshError).details?.divergence) {
        await c.membership.quarantine(
          link.bytes,
          'a rebuild from the commit stream differs (commit replication)',
        );
        c.events.emit('manifest_divergence_detected', {
          generation_id: link.manifest.generation_id,
          commit_seq: link.manifest.commit_range.from_commit_seq,
          signed_manifest_id: link.id,
          rebuilt_manifest_id: (err as FsmeshError).details.rebuilt_manifest_id,
          reason: "commit replication: the rebuilt generation differs from the writer's",
        });
      }
      throw err;
    }
  }
  return chain.length;
}
