/** User documents → capsule ops, with per-item errors ("docs[3].text: must be a string"). */

import { utf8 } from '../core/bytes.ts';
import { type DocOp, LIMITS } from '../core/capsule.ts';
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
  if (docs.length > LIMITS.ops_per_capsule)
    throw new FsmeshError(
      'invalid_input',
      `documents: ${docs.length} in one batch, at most ${LIMITS.ops_per_capsule}; split the batch`,
    );
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

/** An idempotency key is a string of at most LIMITS.idempotency_key_bytes bytes (checked before any actor). */
export function checkIdempotencyKey(key: unknown): void {
  if (key === undefined) return;
  if (typeof key !== 'string' || key === '')
    throw new FsmeshError('invalid_input', 'idempotency_key: must be a non-empty string');
  const n = utf8.encode(key).length;
  if (n > LIMITS.idempotency_key_bytes)
    throw new FsmeshError(
      'invalid_input',
      `idempotency_key: ${n} bytes, at most ${LIMITS.idempotency_key_bytes}`,
    );
}
