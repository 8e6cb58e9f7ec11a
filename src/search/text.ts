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

// Printable ASCII plus tab/newline/CR: NFKC leaves it unchanged, so the fast path below applies.
const ASCII_RE = /^[\t\n\r\x20-\x7e]*$/;

export function tokenize(text: string): string[] {
  if (ASCII_RE.test(text)) return tokenizeAscii(text);
  return tokenizeUnicode(text);
}

/**
 * Same tokens as tokenizeUnicode for ASCII input (NFKC is the identity there, \p{L}\p{N}_ is
 * [A-Za-z0-9_]), without normalization, regex match objects or the whitespace pass: most
 * of a build's tokenizing time. test/search/text.test.ts checks the two agree.
 */
function tokenizeAscii(text: string): string[] {
  const out: string[] = [];
  const lower = text.toLowerCase();
  let start = -1;
  const n = lower.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? lower.charCodeAt(i) : 32;
    // a-z, 0-9, '_' (upper case is already folded)
    const word = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95;
    if (word) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      if (i - start <= MAX_TOKEN_CHARS) out.push(lower.slice(start, i));
      start = -1;
    }
  }
  return out;
}

export function tokenizeUnicode(text: string): string[] {
  const out: string[] = [];
  for (const m of canonicalize(text).matchAll(TOKEN_RE)) {
    const t = m[0];
    if (t.length <= MAX_TOKEN_CHARS) out.push(t);
  }
  return out;
}
