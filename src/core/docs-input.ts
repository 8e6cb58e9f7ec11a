/**
 * User document input (JSONL / JSON arrays): `{"id","text","title"?,"fields"?}` or
 * `{"id","delete":true}`. Parsing is all-or-nothing: every problem is reported with its line
 * number and nothing from a bad batch is committed.
 */
import { capsuleProblems, type DocOp } from './capsule.ts';
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
  // Reuse the capsule validator for the op itself, mapping its paths to the input's names.
  const inner = capsuleProblems({ format: 1, shard: 'x', ops: [op] })
    .filter((p) => p.startsWith('$.ops[0]'))
    .map((p) => p.replace('$.ops[0].doc_id', `${at}.id`).replace('$.ops[0]', at));
  problems.push(...inner);
  return problems.length ? { problems } : { op, problems };
}

/** Parse JSONL text; throws invalid_input listing every bad line (1-based). Blank lines are skipped. */
export function parseDocsJsonl(text: string, source = 'input'): DocOp[] {
  const ops: DocOp[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const at = `${source}:${i + 1}`;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch (err) {
      problems.push(`${at}: invalid JSON (${(err as Error).message})`);
      return;
    }
    const r = docToOp(doc, `line ${i + 1}`);
    if (r.op) ops.push(r.op);
    else problems.push(...r.problems.map((p) => `${source}:${p.replace(/^line /, '')}`));
  });
  if (problems.length > 0) {
    throw new FsmeshError(
      'invalid_input',
      `${problems.length} problem(s) in ${source}, nothing committed:\n  ${problems.slice(0, 50).join('\n  ')}`,
      {
        problems,
      },
    );
  }
  return ops;
}
