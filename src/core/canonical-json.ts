/**
 * Canonical JSON: object keys sorted by UTF-16 code unit order, no whitespace, UTF-8, only
 * finite numbers. JSON.stringify's number formatting is fixed by ECMA-262, so the bytes are the
 * same on every machine. Used for capsules, manifests and pointer records (docs/formats.md).
 */

import { utf8 } from './bytes.ts';
import { FsmeshError } from './errors.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function canonicalStringify(value: unknown): string {
  try {
    return fast(value);
  } catch (err) {
    if (err !== NOT_JSON) throw err;
    // Walk again keeping paths, only to name what was wrong.
    return write(value, '$');
  }
}

const NOT_JSON = new Error('not canonical JSON');

/** The writer for valid input (every capsule, manifest and record): no paths, no closures. */
function fast(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw NOT_JSON;
      return JSON.stringify(v);
    case 'string':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) {
        let s = '[';
        for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ',') + fast(v[i]);
        return `${s}]`;
      }
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).sort();
      let s = '{';
      for (const k of keys) {
        const x = o[k];
        if (x === undefined) continue;
        s += `${s.length === 1 ? '' : ','}${JSON.stringify(k)}:${fast(x)}`;
      }
      return `${s}}`;
    }
    default:
      throw NOT_JSON;
  }
}

function write(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new FsmeshError('invalid_input', `${path}: number must be finite`);
      return JSON.stringify(Object.is(v, -0) ? 0 : v);
    case 'string':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x, i) => write(x, `${path}[${i}]`)).join(',')}]`;
      const keys = Object.keys(v as object)
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${write((v as Record<string, unknown>)[k], `${path}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new FsmeshError('invalid_input', `${path}: ${typeof v} is not JSON`);
  }
}

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8.encode(canonicalStringify(value));
}
