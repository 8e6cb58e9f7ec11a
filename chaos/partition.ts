/**
 * Network partitions between real processes without root tools (docs/runbook.md, "Chaos"): every
 * node listens on a private port and announces (`--announce`) the port of a TCP proxy owned by the
 * chaos runner, so every libp2p connection between two nodes crosses exactly one proxy — the one of
 * the node that was dialed. The proxy learns which process dialed from the kernel (the client
 * socket's inode in /proc/net/tcp, found among the node processes' file descriptors), so a cut
 * between two groups of nodes refuses new connections and resets the existing ones in both
 * directions. Linux only, like the rest of the chaos runner's process control.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

/** Which node process (by name) owns the client end of a loopback connection to `serverPort`. */
export function ownerOfLoopbackClient(
  clientPort: number,
  serverPort: number,
  pids: ReadonlyMap<string, number>,
): string | null {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  const local = `0100007F:${hex(clientPort)}`;
  const remote = `0100007F:${hex(serverPort)}`;
  let inode = '';
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) {
      inode = f[9];
      break;
    }
  }
  if (!inode || inode === '0') return null;
  const want = `socket:[${inode}]`;
  for (const [name, pid] of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited meanwhile
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === want) return name;
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}

interface Link {
  from: string | null;
  client: net.Socket;
  upstream: net.Socket;
}

/** One proxy in front of one node's libp2p port. */
class NodeProxy {
  readonly links = new Set<Link>();
  private server: net.Server | null = null;
  readonly owner: string;
  readonly port: number;
  private readonly target: () => number;
  private readonly net_: PartitionNet;

  constructor(owner: string, port: number, target: () => number, net_: PartitionNet) {
    this.owner = owner;
    this.port = port;
    this.target = target;
    this.net_ = net_;
  }

  async start(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private accept(client: net.Socket): void {
    const from = ownerOfLoopbackClient(client.remotePort ?? 0, this.port, this.net_.pids());
    if (from !== null && this.net_.blocked(from, this.owner)) {
      this.net_.refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: this.target() });
    const link: Link = { from, client, upstream };
    this.links.add(link);
    const end = () => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.once('connect', () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }

  /** Reset every connection that now crosses a cut. */
  enforce(): number {
    let cut = 0;
    for (const l of this.links)
      if (l.from !== null && this.net_.blocked(l.from, this.owner)) {
        cut++;
        l.client.resetAndDestroy();
        l.upstream.resetAndDestroy();
        this.links.delete(l);
      }
    return cut;
  }

  async stop(): Promise<void> {
    for (const l of this.links) {
      l.client.destroy();
      l.upstream.destroy();
    }
    const s = this.server;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** All the proxies of one chaos cluster and the current cut (a set of isolated groups). */
export class PartitionNet {
  private readonly proxies = new Map<string, NodeProxy>();
  private group = new Map<string, number>();
  refused = 0;
  private readonly pidOf: () => ReadonlyMap<string, number>;

  constructor(pidOf: () => ReadonlyMap<string, number>) {
    this.pidOf = pidOf;
  }

  pids(): ReadonlyMap<string, number> {
    return this.pidOf();
  }

  /** Put a proxy on `proxyPort` in front of the node `owner`, whose real port is `target()`. */
  async add(owner: string, proxyPort: number, target: () => number): Promise<void> {
    const p = new NodeProxy(owner, proxyPort, target, this);
    await p.start();
    this.proxies.set(owner, p);
  }

  blocked(a: string, b: string): boolean {
    const ga = this.group.get(a);
    const gb = this.group.get(b);
    return ga !== undefined && gb !== undefined && ga !== gb;
  }

  /** Split the nodes into groups that cannot reach each other; returns the connections reset. */
  split(groups: string[][]): number {
    this.group = new Map(groups.flatMap((g, i) => g.map((n) => [n, i] as [string, number])));
    let cut = 0;
    for (const p of this.proxies.values()) cut += p.enforce();
    return cut;
  }

  heal(): void {
    this.group = new Map();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.stop()));
  }
}
