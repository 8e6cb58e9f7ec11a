/**
 * User document input (JSONL / JSON arrays): `{"id","text","title"?,"fields"?}` or
 * `{"id","delete":true}`. Parsing is all-or-nothing: every problem is reported with its line
 * number and nothing from a bad batch is committed.
 */
import { type DocOp, opProblems } from './capsule.ts';
import { FsmeshError } from './errors.ts';

export function docToOp(doc: unknown, at: string): { op?: DocOp; problems: string[] } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return { problems: [`${at}: must be a JSON object`] };
  const d = doc as Record<string, unknown>;
  const problems: string[] = [];
  if (d.delete !== undefined && d.delete !== true) problems.push(`${at}.delete: must be true when present`);
  let op: DocOp;
  if (d.delete === true) {
    for (const k of Object.keys(d))
      if (k !== 'id' && k !== 'delete') problems.push(`${at}.${k}: not allowed with delete`);
    op = { op: 'delete', doc_id: d.id as string };
  } else {
    for (const k of Object.keys(d)) {
      if (!['id', 'text', 'title', 'fields'].includes(k)) problems.push(`${at}.${k}: unknown field`);
    }
    op = { op: 'upsert', doc_id: d.id as string, text: d.text as string };
    if (d.title !== undefined) op.title = d.title as string;
    if (d.fields !== undefined) op.fields = d.fields as Record<string, never>;
  }
  // Reuse the capsule's op validator, naming the input's field (`id`, not `doc_id`).
  for (const p of opProblems(op, at))
    problems.push(p.startsWith(`${at}.doc_id`) ? `${at}.id${p.slice(at.length + 7)}` : p);
  return problems.length ? { problems } : { op, problems };
}

/** One JSONL line (already trimmed, not blank) to an op, or its problems naming `source:line`. */
export function opOfLine(source: string, n: number, line: string): { op?: DocOp; problems: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch (err) {
    return { problems: [`${source}:${n}: invalid JSON (${(err as Error).message})`] };
  }
  const r = docToOp(doc, `line ${n}`);
  return r.op ? r : { problems: r.problems.map((p) => `${source}:${p.replace(/^line /, '')}`) };
}

/** The all-or-nothing error of a document file with problems. */
export function docsProblemsError(source: string, count: number, problems: string[]): FsmeshError {
  return new FsmeshError(
    'invalid_input',
    `${count} problem(s) in ${source}, nothing committed:\n  ${problems.slice(0, 50).join('\n  ')}`,
    { problems },
  );
}

/** Parse JSONL text; throws invalid_input listing every bad line (1-based). Blank lines are skipped. */
export function parseDocsJsonl(text: string, source = 'input'): DocOp[] {
  const ops: DocOp[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const r = opOfLine(source, i + 1, line);
    if (r.op) ops.push(r.op);
    else problems.push(...r.problems);
  });
  if (problems.length > 0) throw docsProblemsError(source, problems.length, problems);
  return ops;
}
