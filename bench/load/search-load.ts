/**
 * The HTTP load generator, run as its own process (the server never shares a CPU's event loop
 * with its client): autocannon sends `--amount` search requests over `--connections` connections,
 * cycling through the queries given on stdin (one per line), and prints autocannon's latency
 * summary as one JSON line.
 *   node bench/load/search-load.ts --url http://127.0.0.1:PORT --amount 400 [--connections 1] [--mode hybrid]
 */
import autocannon from 'autocannon';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const url = arg('url', '');
const mode = arg('mode', 'hybrid');
const token = arg('token', '');
const queries = (await new Response(process.stdin as unknown as ReadableStream).text())
  .split('\n')
  .filter((l) => l.length > 0);
if (!url || queries.length === 0) throw new Error('usage: --url URL, queries on stdin');
let i = 0;
const result = await autocannon({
  url,
  connections: Number(arg('connections', '1')),
  amount: Number(arg('amount', '400')),
  headers: token ? { authorization: `Bearer ${token}` } : {},
  requests: [
    {
      method: 'GET',
      setupRequest: (req) => ({
        ...req,
        path: `/v1/search?q=${encodeURIComponent(queries[i++ % queries.length])}&k=10&mode=${mode}`,
      }),
    },
  ],
});
const l = result.latency;
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    p50_ms: l.p50,
    p90_ms: l.p90,
    p99_ms: l.p99,
    mean_ms: l.average,
    req_per_s: result.requests.average,
  })}\n`,
);
