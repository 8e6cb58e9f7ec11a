/**
 * Node identity: a persistent ed25519 key per data directory (`node.key`, libp2p protobuf
 * encoding), created on first start. The peer id is derived from it; the writer signs manifest
 * records with it, and replicas verify with the public key embedded in the writer's peer id.
 */
import { generateKeyPairFromSeed, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { toHex } from '../core/bytes.ts';
import { DATA_DIR } from '../core/data-dir-layout.ts';
import { FsmeshError } from '../core/errors.ts';
import { blake3Hex } from '../core/ids.ts';
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

type PublicKeyOf = NonNullable<ReturnType<typeof peerIdFromString>['publicKey']>;

/**
 * Verified signatures, remembered (bounded, oldest out): the same signed records and heads arrive
 * again and again (gossip, heads, pushes), and an ed25519 verification costs ~50 µs where a lookup
 * costs nothing — it was the largest item in the simulator's profile. Only successes are kept
 * (a hostile peer cannot fill the cache with failures), keyed by signer, signature *and* data,
 * so a remembered success never vouches for other bytes.
 */
const VERIFIED_MAX = 4096;
const verified = new Set<string>();
const publicKeys = new Map<string, PublicKeyOf | null>();

function publicKeyOf(peerId: string): PublicKeyOf | null {
  let pub = publicKeys.get(peerId);
  if (pub !== undefined) return pub;
  try {
    pub = peerIdFromString(peerId).publicKey ?? null;
  } catch {
    pub = null;
  }
  if (publicKeys.size >= VERIFIED_MAX) publicKeys.delete(publicKeys.keys().next().value as string);
  publicKeys.set(peerId, pub);
  return pub;
}

/** Verify an ed25519 signature made by the key behind `peerId` (ed25519 peer ids embed the public key). */
export async function verifyByPeerId(
  peerId: string,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const pub = publicKeyOf(peerId);
  if (!pub) return false;
  const key = `${peerId}|${toHex(signature)}|${blake3Hex(data)}`;
  if (verified.has(key)) return true;
  let ok = false;
  try {
    ok = await pub.verify(data, signature);
  } catch {
    return false;
  }
  if (ok) {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.values().next().value as string);
    verified.add(key);
  }
  return ok;
}
