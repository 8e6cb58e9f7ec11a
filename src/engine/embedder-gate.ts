/** §8.5 dependency drift: activation is blocked when a manifest's embedder revision is not ours. */
import { FsmeshError } from '../core/errors.ts';
import type { GenerationManifest } from '../core/manifest.ts';
import type { EngineConfig } from './engine-config.ts';

export function checkEmbedderRevision(m: GenerationManifest, config: EngineConfig): void {
  const q = m.quality_embedder;
  if (q) {
    const mine = config.quality_embedder?.revision_hash;
    if (mine !== q.revision_hash && !config.embedder_revision_overrides.includes(q.revision_hash)) {
      throw new FsmeshError(
        'embedder_mismatch',
        `generation ${m.generation_id} carries quality-tier vectors from ${q.id} revision ${q.revision_hash}; this node runs ${mine ? `revision ${mine}` : 'no quality embedder'}; activation blocked (override with that revision)`,
      );
    }
  }
  const ours = config.embedder.revision_hash;
  if (
    m.embedder.revision_hash !== ours &&
    !config.embedder_revision_overrides.includes(m.embedder.revision_hash)
  ) {
    throw new FsmeshError(
      'embedder_mismatch',
      `generation ${m.generation_id} was built with embedder ${m.embedder.id} revision ${m.embedder.revision_hash}, this node runs ${config.embedder.id} revision ${ours}; activation blocked (override with --allow-embedder-revision ${m.embedder.revision_hash})`,
    );
  }
}
