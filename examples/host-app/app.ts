/**
 * A host application that already runs its own nact actor system and embeds an fsmesh node in
 * it: the node's actors (ingest, builder, repair, query) are spawned under the host's own
 * supervisor actor, and the app serves its own route (`/app/notes`) next to fsmesh's search API.
 *
 *   node examples/host-app/app.ts --data /tmp/host-app --port 8090
 */
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { dispatch, query, spawn, start, stop } from 'nact';
// By package name, as a host app that installed fsmesh does (here it resolves to this package's
// own build, dist/, made by `npm ci` / `npm run build`).
import { composeNode, createHttpHandler } from 'fsmesh';

const { values } = parseArgs({
  options: { data: { type: 'string' }, port: { type: 'string', default: '0' } },
});
if (!values.data) {
  process.stderr.write('usage: node examples/host-app/app.ts --data DIR [--port N]\n');
  process.exit(2);
}

// The host's own actor system and supervisor, as an existing nact application would have.
const system = start();
const hostSupervisor = spawn(system, (state: null) => state, 'host-app');
// One of the host's own actors: counts notes it has seen.
type NoteMsg = { type: 'seen'; n: number } | { type: 'count'; sender: any };
const noteCounter = spawn(
  hostSupervisor,
  (count: number, msg: NoteMsg) => {
    if (msg.type === 'seen') return count + msg.n;
    dispatch(msg.sender, count);
    return count;
  },
  'note-counter',
  { initialState: 0 },
);

// The fsmesh node, its actors spawned under the host's supervisor.
const { node } = await composeNode({
  node: {
    data_dir: values.data,
    node_name: 'host-app',
    actor_parent: hostSupervisor,
    build: { build_interval_ms: 20 },
  },
});
const fsmesh = createHttpHandler(node, {
  extraRoutes: async (req, res, url) => {
    if (url.pathname !== '/app/notes') return false;
    if (req.method === 'POST') {
      let body = '';
      for await (const c of req) body += c;
      const notes = JSON.parse(body) as { id: string; text: string }[];
      const ack = await node.ingest(notes);
      dispatch(noteCounter, { type: 'seen', n: notes.length });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ stored: notes.length, commit_seq: ack.commit_seq }));
      return true;
    }
    const count = await query(noteCounter, (sender) => ({ type: 'count', sender }) as NoteMsg, 1000);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ notes_seen: count, search_generation: node.status().generation_id }));
    return true;
  },
});
const server = http.createServer((req, res) => void fsmesh(req, res));
server.listen(Number(values.port), '127.0.0.1', () => {
  const addr = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ ready: true, url: `http://127.0.0.1:${addr.port}` })}\n`);
});

const shutdown = async () => {
  server.close();
  await node.stop();
  stop(system);
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
