/**
 * CommitCapsule (§3, §5.1): the content of one mutation batch. Its address, commit_id, is the
 * ObjectId of its canonical bytes: content only, never commit_seq, so it does not depend on order.
 */

import { decodeUtf8, utf8Exceeds } from './bytes.ts';
import { canonicalBytes } from './canonical-json.ts';
import { FsmeshError } from './errors.ts';
import { type ObjectId, objectIdOf } from './ids.ts';

export const CAPSULE_FORMAT = 1;
export const LIMITS = {
  doc_id_bytes: 512,
  text_bytes: 1 << 20,
  title_bytes: 4096,
  fields: 64,
  field_value_bytes: 4096,
  ops_per_capsule: 100_000,
  idempotency_key_bytes: 256,
} as const;

export type FieldValue = string | number | boolean | string[];

export interface UpsertOp {
  op: 'upsert';
  doc_id: string;
  text: string;
  title?: string;
  fields?: Record<string, FieldValue>;
}
export interface DeleteOp {
  op: 'delete';
  doc_id: string;
}
export type DocOp = UpsertOp | DeleteOp;

export interface CommitCapsule {
  format: typeof CAPSULE_FORMAT;
  shard: string;
  ops: DocOp[];
  /** Client-chosen key: a retried batch with the same key is acknowledged once, not applied twice. */
  idempotency_key?: string;
}

const SHARD_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

export function isValidShard(s: unknown): s is string {
  return typeof s === 'string' && SHARD_RE.test(s);
}

/** Returns every problem as "path: message"; empty when valid. */
export function capsuleProblems(c: unknown): string[] {
  const p: string[] = [];
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return ['$: capsule must be an object'];
  const o = c as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['format', 'shard', 'ops', 'idempotency_key'].includes(k)) p.push(`$.${k}: unknown field`);
  }
  if (o.format !== CAPSULE_FORMAT) p.push(`$.format: unsupported capsule format ${JSON.stringify(o.format)}`);
  if (!isValidShard(o.shard)) p.push('$.shard: must match [a-z0-9][a-z0-9_-]{0,63}');
  if (o.idempotency_key !== undefined) {
    if (typeof o.idempotency_key !== 'string' || o.idempotency_key.length === 0) {
      p.push('$.idempotency_key: must be a non-empty string');
    } else if (utf8Exceeds(o.idempotency_key, LIMITS.idempotency_key_bytes)) {
      p.push(`$.idempotency_key: longer than ${LIMITS.idempotency_key_bytes} bytes`);
    }
  }
  if (!Array.isArray(o.ops)) {
    p.push('$.ops: must be an array');
    return p;
  }
  if (o.ops.length === 0) p.push('$.ops: must not be empty');
  if (o.ops.length > LIMITS.ops_per_capsule) p.push(`$.ops: more than ${LIMITS.ops_per_capsule} ops`);
  o.ops.forEach((op, i) => {
    p.push(...opProblems(op, `$.ops[${i}]`));
  });
  return p;
}

export function docIdProblem(id: unknown): string | null {
  if (typeof id !== 'string' || id.length === 0) return 'must be a non-empty string';
  if (utf8Exceeds(id, LIMITS.doc_id_bytes)) return `longer than ${LIMITS.doc_id_bytes} bytes`;
  if (CONTROL_RE.test(id)) return 'must not contain control characters';
  return null;
}

/** Every problem of one op as "path: message" (`at` is its path); empty when valid. */
export function opProblems(op: unknown, at: string): string[] {
  const p: string[] = [];
  if (typeof op !== 'object' || op === null || Array.isArray(op)) return [`${at}: op must be an object`];
  const o = op as Record<string, unknown>;
  const idp = docIdProblem(o.doc_id);
  if (idp) p.push(`${at}.doc_id: ${idp}`);
  if (o.op === 'delete') {
    for (const k of Object.keys(o))
      if (k !== 'op' && k !== 'doc_id') p.push(`${at}.${k}: not allowed on delete`);
    return p;
  }
  if (o.op !== 'upsert') return [...p, `${at}.op: must be "upsert" or "delete"`];
  for (const k of Object.keys(o)) {
    if (!['op', 'doc_id', 'text', 'title', 'fields'].includes(k)) p.push(`${at}.${k}: unknown field`);
  }
  if (typeof o.text !== 'string') p.push(`${at}.text: must be a string`);
  else if (utf8Exceeds(o.text, LIMITS.text_bytes))
    p.push(`${at}.text: longer than ${LIMITS.text_bytes} bytes`);
  if (o.title !== undefined) {
    if (typeof o.title !== 'string') p.push(`${at}.title: must be a string`);
    else if (utf8Exceeds(o.title, LIMITS.title_bytes))
      p.push(`${at}.title: longer than ${LIMITS.title_bytes} bytes`);
  }
  if (o.fields !== undefined) {
    if (typeof o.fields !== 'object' || o.fields === null || Array.isArray(o.fields)) {
      p.push(`${at}.fields: must be an object`);
    } else {
      const entries = Object.entries(o.fields);
      if (entries.length > LIMITS.fields) p.push(`${at}.fields: more than ${LIMITS.fields} fields`);
      for (const [k, v] of entries) {
        const ok =
          typeof v === 'string' ||
          typeof v === 'boolean' ||
          (typeof v === 'number' && Number.isFinite(v)) ||
          (Array.isArray(v) && v.every((x) => typeof x === 'string'));
        if (!ok) p.push(`${at}.fields.${k}: must be a string, finite number, boolean or array of strings`);
        else if (utf8Exceeds(JSON.stringify(v), LIMITS.field_value_bytes)) {
          p.push(`${at}.fields.${k}: longer than ${LIMITS.field_value_bytes} bytes`);
        }
      }
    }
  }
  return p;
}

export function validateCapsule(c: unknown): CommitCapsule {
  const problems = capsuleProblems(c);
  if (problems.length > 0) {
    throw new FsmeshError('invalid_input', `invalid commit capsule: ${problems.join('; ')}`, { problems });
  }
  return c as CommitCapsule;
}

export function encodeCapsule(c: CommitCapsule): Uint8Array {
  validateCapsule(c);
  return canonicalBytes(c);
}

export function decodeCapsule(bytes: Uint8Array): CommitCapsule {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decodeUtf8(bytes, 'capsule'));
  } catch (err) {
    if (err instanceof FsmeshError) throw err;
    throw new FsmeshError('corrupt_data', 'capsule: not valid JSON');
  }
  const problems = capsuleProblems(parsed);
  if (problems.length > 0) throw new FsmeshError('corrupt_data', `capsule: ${problems.join('; ')}`);
  return parsed as CommitCapsule;
}

export function commitIdOf(capsuleBytes: Uint8Array): ObjectId {
  return objectIdOf('capsule', capsuleBytes);
}
