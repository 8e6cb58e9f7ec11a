/**
 * The HTTP floor for bench/http.ts: a bare `node:http` server in its own process that reads a
 * POST body, parses it as JSON and answers `{"docs":N}` — what any HTTP ingest costs before it
 * validates, encodes or commits anything. Prints its port on stdout.
 *   node bench/load/bare-ingest-server.ts
 */
import * as http from 'node:http';

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const docs = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[];
    const body = `${JSON.stringify({ docs: docs.length })}\n`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as import('node:net').AddressInfo).port}\n`);
});
