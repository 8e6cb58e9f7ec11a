/**
 * The manifest a signed record names, from the local store or any peer. Its bytes must hash to
 * the signed id; a peer serving anything else is reported and its bytes quarantined (§8.4).
 */
import { CLUSTER_DEFAULTS } from '../../core/defaults.ts';
import { FsmeshError } from '../../core/errors.ts';
import { manifestIdOf } from '../../core/manifest.ts';
import type { NodeComponents } from '../../node/services.ts';
import type { Transport } from '../../runtime/index.ts';
import { jsonFrame, PROTO } from '../protocols.ts';
import type { SignedRecord } from '../records.ts';
import type { Membership } from './membership.ts';

export type ManifestFetchComponents = Pick<NodeComponents, 'objects' | 'events'> & {
  transport: Transport;
  membership: Pick<Membership, 'quarantine'>;
};

export async function fetchManifestBytes(
  c: ManifestFetchComponents,
  rec: SignedRecord['record'],
): Promise<Uint8Array> {
  if (await c.objects.has('manifest', rec.artifact_manifest_id))
    return c.objects.get('manifest', rec.artifact_manifest_id);
  for (const p of c.transport.peers()) {
    try {
      const [f] = await c.transport.request(
        p,
        PROTO.manifest,
        jsonFrame({ artifact_manifest_id: rec.artifact_manifest_id }),
        { timeout_ms: CLUSTER_DEFAULTS.manifest_request_timeout_ms },
      );
      if (manifestIdOf(f) === rec.artifact_manifest_id) return f;
      await c.membership.quarantine(f, `peer ${p} served bytes that do not hash to the signed manifest id`);
      c.events.emit('manifest_divergence_detected', {
        generation_id: rec.generation_id,
        commit_seq: rec.commit_seq_high,
        signed_manifest_id: rec.artifact_manifest_id,
        served_manifest_id: manifestIdOf(f),
        from: p,
      });
    } catch {
      // try the next peer
    }
  }
  throw new FsmeshError('not_found', `no peer served manifest ${rec.artifact_manifest_id}`);
}
