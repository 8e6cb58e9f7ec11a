/** Rebuild an embedder from its spec (a worker thread's copy of the node's), cached per revision. */
import { FsmeshError } from '../../core/errors.ts';
import { type Embedder, type EmbedderSpec, HashedEmbedder } from './embedder.ts';
import { StaticEmbedder } from './static-embedder.ts';

const cache = new Map<string, Embedder>();

export function embedderFromSpec(spec: EmbedderSpec): Embedder {
  const hit = cache.get(spec.revision_hash);
  if (hit) return hit;
  const e = spec.kind === 'hashed' ? new HashedEmbedder(spec.dims) : StaticEmbedder.fromTable(spec.table);
  // The spec must rebuild exactly the revision it names, or builds would pin a wrong revision.
  if (e.revision_hash !== spec.revision_hash)
    throw new FsmeshError(
      'conflict',
      `embedder spec ${spec.kind} rebuilt revision ${e.revision_hash}, not ${spec.revision_hash}`,
    );
  // Bounded: a node has one or two embedders; a stale revision is dropped first.
  if (cache.size >= 4) cache.delete(cache.keys().next().value as string);
  cache.set(spec.revision_hash, e);
  return e;
}
