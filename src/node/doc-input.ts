/** User documents → capsule ops, with per-item errors ("docs[3].text: must be a string"). */
import type { DocOp } from '../core/capsule.ts';
import { docToOp } from '../core/docs-input.ts';
import { FsmeshError } from '../core/errors.ts';

export type DocInput = {
  id: string;
  text?: string;
  title?: string;
  fields?: Record<string, unknown>;
  delete?: true;
};

/** Turn user docs into ops with per-item errors ("docs[3].text: must be a string"). */
export function docsToOps(docs: unknown): DocOp[] {
  if (!Array.isArray(docs)) throw new FsmeshError('invalid_input', 'documents: must be an array');
  if (docs.length === 0) throw new FsmeshError('invalid_input', 'documents: must not be empty');
  const ops: DocOp[] = [];
  const problems: string[] = [];
  docs.forEach((d, i) => {
    const r = docToOp(d, `docs[${i}]`);
    if (r.op) ops.push(r.op);
    else problems.push(...r.problems);
  });
  if (problems.length)
    throw new FsmeshError(
      'invalid_input',
      `${problems.length} problem(s), nothing committed: ${problems.slice(0, 20).join('; ')}`,
      { problems },
    );
  return ops;
}
