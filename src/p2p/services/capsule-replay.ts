/**
 * Capsule replay (§7.3 fallback, Option A inside Option B): rebuild the writer's generation from
 * the replicated commits on top of our active generation. Builds are deterministic, so the result
 * must hash to the signed manifest id — anything else is refused, never activated.
 */
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import { decodeManifest, type GenerationManifest } from '../../core/manifest.ts';
import { decodeMarker, MARKER_BYTES } from '../../core/marker.ts';
import { startGenerationLifecycle } from '../../fsm/generation-lifecycle.ts';
import type { NodeComponents } from '../../node/services.ts';
import type { Transport } from '../../runtime/index.ts';
import { jsonFrame, PROTO } from '../protocols.ts';
import type { SignedRecord } from '../records.ts';
import { fetchManifestBytes, type ManifestFetchComponents } from './manifest-fetch.ts';

export type ReplayComponents = ManifestFetchComponents &
  Pick<NodeComponents, 'log' | 'generations' | 'gate' | 'builds' | 'health' | 'clock'> & {
    trustedWriter(): string | null;
    stopped(): boolean;
  };

export async function replayTo(c: ReplayComponents, s: SignedRecord): Promise<void> {
  const rec = s.record;
  const manifest = decodeManifest(await fetchManifestBytes(c, rec));
  const active = c.generations.active;
  if (
    (active?.generation_id ?? null) !== manifest.parent_generation_id ||
    (active?.commit_seq_high ?? 0) + 1 !== manifest.commit_range.from_commit_seq
  ) {
    throw new FsmeshError(
      'conflict',
      `replay needs parent ${manifest.parent_generation_id}; this node is on ${active?.generation_id ?? 'nothing'}`,
    );
  }
  await rebuildGeneration(c, manifest, rec.artifact_manifest_id);
}

/**
 * Rebuild one generation of the writer from local commits (pulled from the writer first when
 * missing) on top of the active one — its identity and number — and activate it only if the result
 * hashes to `expectedId`. A different result is refused, never activated.
 */
export async function rebuildGeneration(
  c: ReplayComponents,
  manifest: GenerationManifest,
  expectedId: string,
): Promise<void> {
  const writer = c.trustedWriter();
  if (writer && c.log.commitSeqHigh < manifest.commit_seq_high)
    await pullCapsules(c, writer, manifest.commit_seq_high, REBUILD_PULL);
  if (c.log.commitSeqHigh < manifest.commit_seq_high)
    throw new FsmeshError('not_found', `replay: commits up to ${manifest.commit_seq_high} are not local`);
  const lc = startGenerationLifecycle(c.clock, manifest.generation_id, expectedId);
  lc.send({ type: 'BUILD' });
  const cand = await c.builds.buildCandidate(manifest.commit_seq_high, {
    created_by: manifest.created_by,
    generation_seq: manifest.generation_seq,
  });
  if (!cand) throw new FsmeshError('internal', 'replay built nothing');
  try {
    if (cand.manifest_id !== expectedId) {
      lc.send({ type: 'FAIL', reason: 'replayed manifest differs from the signed one' });
      throw new FsmeshError(
        'conflict',
        `replayed generation ${cand.manifest_id.slice(0, 12)} differs from the signed ${expectedId.slice(0, 12)} (different build configuration?)`,
        { divergence: true, rebuilt_manifest_id: cand.manifest_id },
      );
    }
    lc.send({ type: 'BUILT', manifest_id: cand.manifest_id });
    await c.gate.activate({ manifest_id: cand.manifest_id, source: 'capsule_replay', lifecycle: lc });
    c.health.send({ type: 'CAUGHT_UP' });
  } finally {
    cand.release();
  }
}

/**
 * Pulls on the rebuild path (commit replication, replay) ask for small windows with a short
 * deadline: a rebuild waits on them, and one lost request must not stall it for 30 s (found by the
 * simulator's message drops with commit replication).
 */
const REBUILD_PULL = { max_capsules: 64, timeout_ms: 5_000 };

/** Catch the local capsule log up with the writer's (fallback when pushes were missed). */
export async function pullCapsules(
  c: Pick<ReplayComponents, 'log' | 'stopped'> & { transport: Transport },
  peer: string,
  upTo: number,
  /** Smaller windows with a shorter deadline: a lost request costs seconds, not half a minute. */
  window?: { max_capsules: number; timeout_ms: number },
): Promise<void> {
  while (c.log.commitSeqHigh < upTo && !c.stopped()) {
    const from = c.log.commitSeqHigh + 1;
    const to = window ? Math.min(upTo, from + window.max_capsules - 1) : upTo;
    const frames = await c.transport.request(peer, PROTO.capsules, jsonFrame({ from, to }), {
      timeout_ms: window?.timeout_ms ?? CLUSTER_DEFAULTS.capsules_request_timeout_ms,
    });
    if (frames.length === 0) return;
    for (const f of frames)
      await c.log.appendReplicated(decodeMarker(f.subarray(0, MARKER_BYTES)), f.slice(MARKER_BYTES));
  }
}
