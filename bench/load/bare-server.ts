/**
 * The HTTP floors for bench/http.ts: a bare `node:http` server in its own process that
 *  - answers a POST by reading its body, parsing it as JSON and answering `{"docs":N}` — what any
 *    HTTP ingest costs before it validates, encodes or commits anything;
 *  - answers a GET with a fixed body, the bytes read on stdin (the bench passes a real search
 *    answer of the node): what any HTTP query costs before it searches.
 * Prints its port on stdout once stdin is read.
 *   node bench/load/bare-server.ts < answer.json
 */
import * as http from 'node:http';

// A string, as the node's answers are written.
const answer = await new Response(process.stdin as unknown as ReadableStream).text();
const answerBytes = Buffer.byteLength(answer);

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answerBytes });
    res.end(answer);
    return;
  }
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
