/**
 * Canonicalization and tokenization (§3 pipeline step 1). NFKC folds compatibility forms
 * (ﬁ → fi, full-width digits), lower-casing folds case, and tokens are runs of letters,
 * digits and '_' (so identifiers like snake_case stay whole). Deterministic on every machine.
 */
export const MAX_TOKEN_CHARS = 64;

export function canonicalize(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();
}

const TOKEN_RE = /[\p{L}\p{N}_]+/gu;

export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of canonicalize(text).matchAll(TOKEN_RE)) {
    const t = m[0];
    if (t.length <= MAX_TOKEN_CHARS) out.push(t);
  }
  return out;
}

/** Term -> count, in first-seen order. */
export function termFrequencies(tokens: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of tokens) m.set(t, (m.get(t) ?? 0) + 1);
  return m;
}
