/**
 * A free TCP port on 127.0.0.1 for a process that must come back at the same address (a restarted
 * node, the chaos runner, the demo). Picked below the kernel's ephemeral range (32768–60999 on
 * Linux), so no process that binds port 0 can be handed it between the pick and the bind, or while
 * its owner is down for a restart (seen as a rare EADDRINUSE or a failed restart when test files
 * run concurrently). Random within the range, and checked by binding it.
 */
import * as net from 'node:net';

const LOW = 20_000;
const HIGH = 32_000;

function tryPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * Ports this process has handed out: never twice. A caller often picks several before binding any
 * (a node's HTTP and p2p ports, a cluster's nodes); a repeat among them — about 1 in 12,000 per pair,
 * so ~1 % of suite runs — was seen as EADDRINUSE at start.
 */
const handedOut = new Set<number>();

export async function freeLoopbackPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await tryPort(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on 127.0.0.1 in ${LOW}..${HIGH - 1}`);
}
