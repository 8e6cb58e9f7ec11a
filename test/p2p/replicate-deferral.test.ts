/**
 * §7.2 step 5: a replica fetching its first generation defers the writer's commit stream until
 * that generation is active (pushes are answered `busy`, the writer retries, the replica pulls once
 * it has flipped). A push from anyone but the trusted writer is still refused as a conflict first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FsmeshError } from '../../src/core/errors.ts';
import { MARKER_BYTES } from '../../src/core/marker.ts';
import { serveProtocols } from '../../src/p2p/services/protocol-server.ts';
import type { Transport } from '../../src/runtime/index.ts';

function replicateHandler(deferring: { now: boolean }, appended: string[]) {
  const handlers = new Map<string, (req: Uint8Array, from: string) => Promise<Uint8Array[]>>();
  const transport = { handle: (p: string, h: never) => handlers.set(p, h) } as unknown as Transport;
  serveProtocols({
    transport,
    role: () => 'replica',
    trustedWriter: () => 'writer-peer',
    deferReplication: () => deferring.now,
    replicate: async (_append: unknown, from: string) => {
      appended.push(from);
      return [] as never;
    },
  } as unknown as Parameters<typeof serveProtocols>[0]);
  return handlers.get('/fsmesh/replicate/1.0.0')!;
}

test('pushes wait while the first generation is fetched; the trust check comes first', async () => {
  const deferring = { now: true };
  const appended: string[] = [];
  const push = replicateHandler(deferring, appended);
  const body = new Uint8Array(MARKER_BYTES + 10);
  await assert.rejects(
    push(body, 'writer-peer'),
    (e: FsmeshError) => e.code === 'busy' && /first generation/.test(e.message),
  );
  await assert.rejects(push(body, 'stranger'), (e: FsmeshError) => e.code === 'conflict');
  assert.equal(appended.length, 0, 'nothing appended while deferring');
  // Once the generation is active, pushes reach the log again (the marker check follows).
  deferring.now = false;
  const out = await push(body, 'writer-peer').then(
    () => 'appended',
    (e: FsmeshError) => e.code,
  );
  assert.ok(out === 'appended' ? appended.includes('writer-peer') : out !== 'busy', out);
});
