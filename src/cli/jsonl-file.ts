/**
 * A JSONL document file read as a stream (`fsmesh ingest`): memory stays bounded by one chunk and
 * one line whatever the file's size (a whole-file string also stops at V8's ~512 MB limit).
 * Ingest reads it twice: once to check every line (nothing is committed if one is bad: the
 * all-or-nothing contract of a file), once to commit; a content hash taken on both passes proves
 * the file did not change in between.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { DocOp } from '../core/capsule.ts';
import { docsProblemsError, opOfLine } from '../core/docs-input.ts';
import { FsmeshError } from '../core/errors.ts';

/** Longest line accepted (a document's JSON), bytes: well above any document the capsule allows. */
export const MAX_LINE_BYTES = 64 << 20;

export interface JsonlPass {
  docs: number;
  /** sha-256 of the file's bytes as read on this pass. */
  content_hash: string;
}

/** Every non-blank line as (1-based line number, text), with the hash of all bytes read. */
async function* lines(file: string, hash: ReturnType<typeof createHash>): AsyncGenerator<[number, string]> {
  const decoder = new TextDecoder();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let n = 0;
  let stream: fs.ReadStream;
  try {
    stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject));
  } catch (err) {
    throw new FsmeshError('invalid_input', `cannot read ${file}: ${(err as Error).message}`);
  }
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    let from = 0;
    for (let nl = chunk.indexOf(10, from); nl >= 0; nl = chunk.indexOf(10, from)) {
      pending.push(chunk.subarray(from, nl));
      const line = decoder.decode(Buffer.concat(pending)).trim();
      pending = [];
      pendingBytes = 0;
      n++;
      from = nl + 1;
      if (line !== '') yield [n, line];
    }
    pending.push(chunk.subarray(from));
    pendingBytes += chunk.length - from;
    if (pendingBytes > MAX_LINE_BYTES)
      throw new FsmeshError('invalid_input', `${file}:${n + 1}: line longer than ${MAX_LINE_BYTES} bytes`);
  }
  const last = decoder.decode(Buffer.concat(pending)).trim();
  if (last !== '') yield [n + 1, last];
}

/** First pass: check every line; throws invalid_input listing the problems (nothing committed). */
export async function checkJsonlFile(file: string, source: string): Promise<JsonlPass> {
  const hash = createHash('sha256');
  const problems: string[] = [];
  let count = 0;
  let docs = 0;
  for await (const [n, line] of lines(file, hash)) {
    const r = opOfLine(source, n, line);
    if (r.op) docs++;
    else {
      count += r.problems.length;
      if (problems.length < 50) problems.push(...r.problems);
    }
  }
  if (count > 0) throw docsProblemsError(source, count, problems);
  return { docs, content_hash: hash.digest('hex') };
}

/**
 * Second pass: the ops in batches of `batch`, to `commit` with at most `inFlight` batches
 * unacknowledged (group commit still sees concurrent writers). Throws if the file changed since
 * `checked` (a line no longer valid, or other bytes), naming what was committed before it noticed.
 */
export async function commitJsonlFile(
  file: string,
  source: string,
  checked: JsonlPass,
  opts: { batch: number; inFlight: number; commit: (ops: DocOp[]) => Promise<unknown> },
): Promise<number> {
  const hash = createHash('sha256');
  const running = new Set<Promise<unknown>>();
  let committed = 0;
  let batch: DocOp[] = [];
  const changed = (what: string) =>
    new FsmeshError(
      'invalid_input',
      `${source} changed while it was being ingested (${what}); ${committed} document(s) were committed before that`,
    );
  const send = async () => {
    const part = batch;
    batch = [];
    const p = opts.commit(part).then(() => {
      committed += part.length;
      running.delete(p);
    });
    p.catch(() => {}); // awaited below (race / all); this only marks it handled meanwhile
    running.add(p);
    if (running.size >= opts.inFlight) await Promise.race(running);
  };
  for await (const [n, line] of lines(file, hash)) {
    const r = opOfLine(source, n, line);
    if (!r.op) {
      await Promise.all(running);
      throw changed(r.problems[0]);
    }
    batch.push(r.op);
    if (batch.length >= opts.batch) await send();
  }
  if (batch.length > 0) await send();
  await Promise.all(running);
  if (hash.digest('hex') !== checked.content_hash) throw changed('its bytes differ from the checked ones');
  return committed;
}
