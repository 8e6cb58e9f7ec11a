/**
 * A remote node's generations, manifests only (`fsmesh audit --peer`, docs/replication.md): a
 * short-lived libp2p client dials the peer, takes its head's signed record, fetches that manifest
 * (it must hash to the signed id) and walks `parent_generation_id` back while the peer retains
 * them (`/fsmesh/manifest/1.0.0` by generation id; each must end just before its child). Oldest
 * first. Every wait has a deadline; every answer is bounded and decoded strictly.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { CLUSTER_DEFAULTS } from '../core/defaults.ts';
import { FsmeshError } from '../core/errors.ts';
import { decodeManifest, type GenerationManifest, manifestIdOf } from '../core/manifest.ts';
import { jsonFrame, PROTO, parseJsonFrame } from './protocols.ts';
import type { SignedRecord } from './records.ts';

/** At most this many generations are walked (a peer cannot make the audit walk forever). */
const MAX_GENERATIONS = 10_000;

export async function fetchPeerChain(
  peerAddr: string,
  clusterKey?: Uint8Array,
): Promise<{ peer_id: string; chain: { id: string; manifest: GenerationManifest }[] }> {
  const peer = peerAddr.split('/p2p/')[1];
  if (!peer)
    throw new FsmeshError(
      'invalid_input',
      `--peer: expected /ip4/HOST/tcp/PORT/p2p/PEER_ID, got ${peerAddr}`,
    );
  const { Libp2pTransport } = await import('./libp2p-transport.ts');
  const t = new Libp2pTransport({
    privateKey: await generateKeyPair('Ed25519'),
    listen: [],
    seeds: [],
    cluster_key: clusterKey,
  });
  await t.start();
  try {
    await t.dial(peerAddr);
    const opts = { timeout_ms: CLUSTER_DEFAULTS.manifest_request_timeout_ms, max_response_bytes: 16 << 20 };
    const [h] = await t.request(peer, PROTO.head, jsonFrame({}), opts);
    const head = parseJsonFrame<{ record: SignedRecord | null }>(h, 'head response');
    if (!head.record) throw new FsmeshError('not_found', `${peer} has no generation yet`);
    const rec = head.record.record;
    const [top] = await t.request(
      peer,
      PROTO.manifest,
      jsonFrame({ artifact_manifest_id: rec.artifact_manifest_id }),
      opts,
    );
    if (!top || manifestIdOf(top) !== rec.artifact_manifest_id)
      throw new FsmeshError(
        'invalid_manifest',
        `${peer} served a manifest that does not hash to its signed record`,
      );
    const chain = [{ id: rec.artifact_manifest_id, manifest: decodeManifest(top) }];
    while (chain.length < MAX_GENERATIONS) {
      const child = chain[0].manifest;
      if (child.parent_generation_id === null) break;
      const [f] = await t.request(
        peer,
        PROTO.manifest,
        jsonFrame({ generation_id: child.parent_generation_id }),
        opts,
      );
      if (!f) break; // no longer retained there: the chain starts at `child`
      const m = decodeManifest(f);
      if (
        m.generation_id !== child.parent_generation_id ||
        m.commit_seq_high + 1 !== child.commit_range.from_commit_seq
      )
        throw new FsmeshError(
          'invalid_manifest',
          `${peer} served ${m.generation_id} as the parent of ${child.generation_id}`,
        );
      chain.unshift({ id: manifestIdOf(f), manifest: m });
    }
    return { peer_id: peer, chain };
  } finally {
    await t.stop();
  }
}
