/**
 * The tokenizer's ASCII fast path must give exactly the tokens of the Unicode path (NFKC, lower
 * case, runs of \p{L}\p{N}_ up to 64 chars): segments built before the fast path existed are read
 * with query tokens from it, and writers of either version must build identical segments.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../src/runtime/index.ts';
import { tokenize, tokenizeUnicode } from '../../src/search/text.ts';

test('ASCII fast path agrees with the Unicode tokenizer on random and edge-case text', () => {
  const rng = seededRandom(99);
  const alphabet = 'abcXYZ019_ -.,;:!?\'"()[]{}<>/\\|@#$%^&*+=~`\t\n\r';
  const cases = [
    '',
    ' ',
    '___',
    'Hello, World!',
    'snake_case and CamelCase v1.2.3',
    `${'a'.repeat(64)} ${'b'.repeat(65)} c`,
    'tab\tsep\nnew\rline',
    'x',
    '123 4_5',
  ];
  for (let i = 0; i < 5000; i++) {
    const len = rng.int(80);
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[rng.int(alphabet.length)];
    cases.push(s);
  }
  for (const c of cases) assert.deepEqual(tokenize(c), tokenizeUnicode(c), JSON.stringify(c));
});

test('non-ASCII text takes the Unicode path: NFKC folds, letters of every script count', () => {
  assert.deepEqual(tokenize('ﬁle Ｆｕｌｌ café ÉCOLE naïve'), ['file', 'full', 'café', 'école', 'naïve']);
  assert.deepEqual(tokenize('日本語 テキスト'), ['日本語', 'テキスト']);
  assert.deepEqual(tokenize('a\u00a0b'), ['a', 'b']);
});
