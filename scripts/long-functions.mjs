// Lists functions longer than a limit (default 80 lines) under the given folders: the structure
// rule of docs/architecture.md. Uses the TypeScript 5 parser (devDependency `typescript-5`).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript-5';

const limit = Number(process.env.MAX_FUNCTION_LINES ?? 80);
const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['src'];
const files = [];
const walk = (d) => {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) files.push(p);
  }
};
for (const r of roots) walk(r);
const long = [];
for (const f of files) {
  const src = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    // Table-like code (a validator's list of checks, a list of metric definitions) may say so in
    // the comment above it and be longer.
    const leading = src.text.slice(node.getFullStart(), node.getStart());
    if (ts.isFunctionLike(node) && node.body && !/table-like/i.test(leading)) {
      const start = src.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = src.getLineAndCharacterOfPosition(node.end).line;
      const name = node.name?.getText(src) ?? '(anonymous)';
      if (end - start + 1 > limit) long.push({ file: f, line: start + 1, name, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
}
for (const l of long) console.log(`${l.file}:${l.line} ${l.name} ${l.lines} lines`);
process.exitCode = long.length ? 1 : 0;
