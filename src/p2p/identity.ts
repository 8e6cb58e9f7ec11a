/**
 * Node identity: a persistent ed25519 key per data directory (`node.key`, libp2p protobuf
 * encoding), created on first start. The peer id is derived from it; the writer signs manifest
 * records with it, and replicas verify with the public key embedded in the writer's peer id.
 */
import { generateKeyPairFromSeed, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { FsmeshError } from '../core/errors.ts';
import { isNotFound, type Storage, secureRandomBytes, writeFileAtomic } from '../runtime/index.ts';

export const KEY_FILE = DATA_DIR.node_key_file;

export async function loadOrCreateIdentity(storage: Storage, seed?: Uint8Array): Promise<PrivateKey> {
  try {
    return privateKeyFromProtobuf(await storage.readFile(KEY_FILE));
  } catch (err) {
    if (!isNotFound(err))
      throw new FsmeshError(
        'corrupt_data',
        `${KEY_FILE}: not a valid libp2p private key (${(err as Error).message})`,
      );
  }
  const key = await generateKeyPairFromSeed('Ed25519', seed ?? secureRandomBytes(32));
  await writeFileAtomic(storage, KEY_FILE, privateKeyToProtobuf(key));
  return key;
}

export function peerIdOf(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString();
}

export async function sign(key: PrivateKey, data: Uint8Array): Promise<Uint8Array> {
  return key.sign(data);
}

/** Verify an ed25519 signature made by the key behind `peerId` (ed25519 peer ids embed the public key). */
export async function verifyByPeerId(
  peerId: string,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  let pub: ReturnType<typeof peerIdFromString>['publicKey'];
  try {
    pub = peerIdFromString(peerId).publicKey;
  } catch {
    return false;
  }
  if (!pub) return false;
  try {
    return await pub.verify(data, signature);
  } catch {
    return false;
  }
}
