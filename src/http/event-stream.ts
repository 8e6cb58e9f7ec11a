/**
 * `GET /v1/events` (docs/http.md): the node's events as Server-Sent Events — `event: <name>` and
 * `data: <the event's JSON>`, a numbered `id` — starting with the most recent ones (`?recent=N`,
 * default 50, at most 200). Bounded like everything else: at most `max_streams` open streams (503
 * beyond), a stream whose client does not read (over 1 MiB buffered) is closed, a comment line
 * every 15 s keeps proxies from timing it out, and every stream ends when the server stops.
 */
import type * as http from 'node:http';
import type { FsmeshNode } from '../node/index.ts';
import type { NodeEvent } from '../obs/events.ts';

const MAX_BUFFERED_BYTES = 1 << 20;
const HEARTBEAT_MS = 15_000;

export class EventStreams {
  private readonly open = new Map<http.ServerResponse, () => void>();
  private readonly maxStreams: number;
  private seq = 0;

  constructor(maxStreams = 16) {
    this.maxStreams = maxStreams;
  }

  get count(): number {
    return this.open.size;
  }

  /** False when the limit is reached (the caller answers 503). */
  serve(node: FsmeshNode, req: http.IncomingMessage, res: http.ServerResponse, recent: number): boolean {
    if (this.open.size >= this.maxStreams) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    let off = () => {};
    let beat: ReturnType<typeof setInterval> | undefined;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      off();
      clearInterval(beat);
      this.open.delete(res);
      res.end();
    };
    const write = (e: NodeEvent) => {
      if (ended) return;
      res.write(`id: ${++this.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e)}\n\n`);
      // A client that stopped reading would make us buffer without bound: drop it.
      if (res.writableLength > MAX_BUFFERED_BYTES) end();
    };
    this.open.set(res, end);
    req.on('close', end);
    res.on('error', end);
    for (const e of node.events.recent.slice(-recent)) write(e);
    if (ended) return true;
    off = node.events.on(write);
    beat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    beat.unref();
    return true;
  }

  /** End every open stream (the server is stopping). */
  closeAll(): void {
    for (const end of [...this.open.values()]) end();
  }
}
