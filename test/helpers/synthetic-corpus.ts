/** A seeded corpus with a skewed vocabulary (w0 common … w399 rare): idf differs per shard. */
export function syntheticDocs(n: number, seed = 7, prefix = 'doc-') {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
  const word = () => `w${Math.floor(400 * rnd() ** 3)}`;
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    title: Array.from({ length: 1 + Math.floor(rnd() * 3) }, word).join(' '),
    text: Array.from({ length: 5 + Math.floor(rnd() * 40) }, word).join(' '),
  }));
}
