/**
 * Benchmark corpus: paragraphs of the text documentation already on this machine (Debian
 * /usr/share/doc, Python and Rust docs, node_modules READMEs), split on blank lines, in sorted
 * path order — deterministic for a given machine, no download. Cached in .bench-data/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';

const ROOTS = [
  '/usr/share/man/man1',
  '/usr/share/man/man3',
  '/usr/share/man/man7',
  '/usr/share/man/man8',
  '/usr/share/doc',
  '/usr/lib/python3',
  '/usr/local/lib',
  '/root/.rustup/toolchains',
  '/usr/share/common-licenses',
  path.resolve('node_modules'),
];
const EXT = /\.(md|txt|rst|markdown|[1-8][a-z]*\.gz)$|^README|^NEWS|^changelog$/i;

function walk(dir: string, out: string[], depth = 0): void {
  if (depth > 12 || out.length > 60000) return;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out, depth + 1);
    else if (e.isFile() && EXT.test(e.name)) out.push(p);
  }
}

export interface CorpusDoc {
  id: string;
  title: string;
  text: string;
}

/** The corpus as a JSONL file (`fsmesh ingest` input), written on first use. */
export function corpusFile(target = 50_000): string {
  const cache = path.resolve('.bench-data', `corpus-${target}.jsonl`);
  if (!fs.existsSync(cache)) loadCorpus(target);
  return cache;
}

export function loadCorpus(target = 50_000): CorpusDoc[] {
  const cache = path.resolve('.bench-data', `corpus-${target}.jsonl`);
  if (fs.existsSync(cache))
    return fs
      .readFileSync(cache, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  const files: string[] = [];
  for (const r of ROOTS) walk(r, files);
  const docs: CorpusDoc[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    let text: string;
    try {
      text = f.endsWith('.gz')
        ? manToText(gunzipSync(fs.readFileSync(f)).toString('utf8'))
        : fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    if (text.includes('\u0000')) continue;
    const title = path.basename(path.dirname(f)) + '/' + path.basename(f);
    let n = 0;
    for (const para of text.split(/\n\s*\n/)) {
      const t = para.replace(/\s+/g, ' ').trim();
      const words = t.split(' ').length;
      if (words < 12 || t.length > 4000 || seen.has(t)) continue;
      seen.add(t);
      docs.push({ id: `${title}#${n++}`, title, text: t });
      if (docs.length >= target) break;
    }
    if (docs.length >= target) break;
  }
  fs.mkdirSync(path.dirname(cache), { recursive: true });
  fs.writeFileSync(cache, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  return docs;
}

/** Rough troff → text: drop requests and font escapes, make .PP/.SH paragraph breaks. */
function manToText(src: string): string {
  return src
    .split('\n')
    .map((l) =>
      /^\.(PP|P|LP|SH|SS|TP|IP|sp|br)\b/.test(l) ? '' : l.startsWith('.') || l.startsWith("'") ? ' ' : l,
    )
    .join('\n')
    .replace(/\\f[BIRP]|\\f\(..|\\\(..|\\[-&e]|\\s[-+]?\d/g, (m) => (m === '\\-' ? '-' : ''));
}
