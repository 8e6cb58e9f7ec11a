/**
 * The HTTP load generator, run as its own process (a server never shares its event loop with its
 * client). Queries come on stdin, one per line, and are cycled through.
 *  - latency: `--amount` sequential searches over one keep-alive connection, timed here per request
 *    (autocannon's histogram has whole-millisecond resolution, too coarse for sub-ms answers),
 *    after `--warmup` untimed ones (default 100): this process starts cold for every load, and
 *    its own start-up (module compilation, JIT) on the same two cores is not the server's cost;
 *  - throughput: autocannon with `--connections` connections for the same number of requests.
 * Prints one JSON line.
 *   node bench/load/search-load.ts --url http://127.0.0.1:PORT --amount 400 [--warmup 100]
 *     [--connections 4] [--mode hybrid]
 */
import * as http from 'node:http';
import autocannon from 'autocannon';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const url = new URL(arg('url', ''));
const mode = arg('mode', 'hybrid');
const amount = Number(arg('amount', '400'));
const warmup = Number(arg('warmup', '100'));
const queries = (await new Response(process.stdin as unknown as ReadableStream).text())
  .split('\n')
  .filter((l) => l.length > 0);
if (queries.length === 0) throw new Error('usage: --url URL, queries on stdin');
const pathOf = (i: number) =>
  `/v1/search?q=${encodeURIComponent(queries[i % queries.length])}&k=10&mode=${mode}`;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const get = (path: string) =>
  new Promise<number>((resolve, reject) => {
    http
      .get({ host: url.hostname, port: url.port, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
let non2xx = 0;
for (let i = 0; i < warmup; i++) if ((await get(pathOf(amount + i))) !== 200) non2xx++;
const lat: number[] = [];
for (let i = 0; i < amount; i++) {
  const t0 = performance.now();
  if ((await get(pathOf(i))) !== 200) non2xx++;
  lat.push(performance.now() - t0);
}
agent.destroy();
lat.sort((a, b) => a - b);
const pct = (p: number) => lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)];
const r3 = (x: number) => Math.round(x * 1000) / 1000;

let i = 0;
const ac = await autocannon({
  url: url.origin,
  connections: Number(arg('connections', '4')),
  amount,
  requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: pathOf(i++) }) }],
});
process.stdout.write(
  `${JSON.stringify({
    requests: amount,
    warmup_requests: warmup,
    non2xx: non2xx + ac.non2xx,
    p50_ms: r3(pct(50)),
    p99_ms: r3(pct(99)),
    mean_ms: r3(lat.reduce((a, b) => a + b, 0) / lat.length),
    autocannon: {
      connections: Number(arg('connections', '4')),
      req_per_s: ac.requests.average,
      latency_p99_ms: ac.latency.p99,
      errors: ac.errors,
    },
  })}\n`,
);
