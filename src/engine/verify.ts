/** `fsmesh verify`: re-hash every stored object; every object a retained generation names must exist. */
import type { ObjectId } from '../core/ids.ts';
import type { GenerationStore } from '../storage/generations.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export interface VerifyReport {
  objects_checked: number;
  corrupt: { kind: string; object_id: ObjectId }[];
  missing: { kind: string; object_id: ObjectId }[];
  commit_seq_high: number;
}

export async function verifyObjects(
  objects: ObjectStore,
  generations: GenerationStore,
  commit_seq_high: number,
): Promise<VerifyReport> {
  const corrupt: { kind: string; object_id: ObjectId }[] = [];
  const missing: { kind: string; object_id: ObjectId }[] = [];
  let checked = 0;
  for (const kind of ['manifest', 'artifact'] as const) {
    for (const id of await objects.list(kind)) {
      checked++;
      if ((await objects.check(kind, id)) === 'corrupt') corrupt.push({ kind, object_id: id });
    }
  }
  for (const r of generations.retained) {
    if ((await objects.check('manifest', r.artifact_manifest_id)) !== 'ok') {
      if (!corrupt.some((c) => c.object_id === r.artifact_manifest_id))
        missing.push({ kind: 'manifest', object_id: r.artifact_manifest_id });
      continue;
    }
    const m = await generations.loadManifest(r.artifact_manifest_id);
    for (const a of [...m.lexical_artifacts, ...m.vector_artifacts]) {
      if (!(await objects.has('artifact', a.object_id)) && !missing.some((x) => x.object_id === a.object_id))
        missing.push({ kind: 'artifact', object_id: a.object_id });
    }
  }
  return { objects_checked: checked, corrupt, missing, commit_seq_high };
}
