/**
 * Writer handover (failover): the operator's admin key — held off the cluster — signs
 * `{format, cluster, shard, epoch, writer, commit_seq_high, head_marker_id}` (canonical JSON,
 * ed25519). Nodes started with `--admin-pub HEX` trust the valid record with the highest epoch:
 * its `writer` is the shard's writer from then on, and every log keeps exactly the history up to
 * `commit_seq_high` / `head_marker_id` that the new writer collected from a majority; a longer
 * suffix elsewhere was never acknowledged by a quorum and is cut.
 */

import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { fromHex, toHex } from '../core/bytes.ts';
import { canonicalBytes } from '../core/canonical-json.ts';
import { FsmeshError } from '../core/errors.ts';
import { isObjectId } from '../core/ids.ts';

export interface HandoverRecord {
  format: 1;
  cluster: string;
  shard: string;
  epoch: number;
  writer: string;
  commit_seq_high: number;
  head_marker_id: string;
}

export interface SignedHandover {
  handover: HandoverRecord;
  signature: string;
}

export const MAX_HANDOVER_BYTES = 2048;

export async function signHandover(adminKey: PrivateKey, h: HandoverRecord): Promise<SignedHandover> {
  return { handover: h, signature: toHex(await adminKey.sign(canonicalBytes(h))) };
}

export function encodeSignedHandover(s: SignedHandover): Uint8Array {
  return canonicalBytes(s);
}

/** Bounded UTF-8 JSON of an admin-signed record (handover, prepare ticket), errors naming `what`. */
function parseAdminRecord<T>(bytes: Uint8Array, what: string): T {
  if (bytes.length > MAX_HANDOVER_BYTES)
    throw new FsmeshError('invalid_input', `${what} of ${bytes.length} bytes exceeds ${MAX_HANDOVER_BYTES}`);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as T;
  } catch {
    throw new FsmeshError('invalid_input', `${what}: not valid UTF-8 JSON`);
  }
}

/** Parse and structurally check (every problem named); does not check the signature. */
export function decodeSignedHandover(bytes: Uint8Array): SignedHandover {
  return checkHandover(parseAdminRecord<SignedHandover>(bytes, 'handover'));
}

export function checkHandover(s: SignedHandover): SignedHandover {
  const h = s?.handover;
  const bad = (m: string): never => {
    throw new FsmeshError('invalid_input', `handover: ${m}`);
  };
  if (!h || typeof h !== 'object') bad('missing handover');
  if (h.format !== 1) bad('format must be 1');
  for (const k of ['cluster', 'shard', 'writer'] as const)
    if (typeof h[k] !== 'string' || h[k].length === 0 || h[k].length > 128)
      bad(`${k} must be a short string`);
  if (!Number.isSafeInteger(h.epoch) || h.epoch < 1) bad('epoch must be a positive integer');
  if (!Number.isSafeInteger(h.commit_seq_high) || h.commit_seq_high < 0)
    bad('commit_seq_high must be a non-negative integer');
  if (!isObjectId(h.head_marker_id)) bad('head_marker_id must be 64 hex characters');
  if (typeof s.signature !== 'string' || !/^[0-9a-f]{128}$/.test(s.signature))
    bad('signature must be 64 bytes of hex');
  if (Object.keys(h).length !== 7) bad('unexpected fields');
  return s;
}

/** The admin public key is 32 raw ed25519 bytes, in hex (what `fsmesh admin-key` prints). */
export function verifyHandover(s: SignedHandover, adminPubHex: string): Promise<boolean> {
  return verifyAdminSigned(s.handover, s.signature, adminPubHex);
}

async function verifyAdminSigned(body: object, signatureHex: string, adminPubHex: string): Promise<boolean> {
  try {
    const pub = publicKeyFromRaw(fromHex(adminPubHex));
    return await pub.verify(canonicalBytes(body), fromHex(signatureHex));
  } catch {
    return false;
  }
}

/**
 * The promise phase of a promotion (docs/protocols.md, failover): the admin key signs
 * `{format, kind: "prepare", cluster, shard, epoch, candidate}`; a member that accepts the ticket
 * promises — on disk — to refuse replication from writers of lower epochs and says so in its head
 * answers, so a former writer stays fenced and can never again reach a quorum once a majority
 * promised. Only then does the candidate collect the history the handover will sign.
 */
export interface PrepareTicket {
  format: 1;
  kind: 'prepare';
  cluster: string;
  shard: string;
  epoch: number;
  candidate: string;
}

export interface SignedPrepareTicket {
  ticket: PrepareTicket;
  signature: string;
}

export async function signPrepareTicket(
  adminKey: PrivateKey,
  t: PrepareTicket,
): Promise<SignedPrepareTicket> {
  return { ticket: t, signature: toHex(await adminKey.sign(canonicalBytes(t))) };
}

/** Structural check, every problem named; does not check the signature. */
export function checkPrepareTicket(s: SignedPrepareTicket): SignedPrepareTicket {
  const t = s?.ticket;
  const bad = (m: string): never => {
    throw new FsmeshError('invalid_input', `prepare ticket: ${m}`);
  };
  if (!t || typeof t !== 'object') bad('missing ticket');
  if (t.format !== 1 || t.kind !== 'prepare') bad('format must be 1 and kind "prepare"');
  for (const k of ['cluster', 'shard', 'candidate'] as const)
    if (typeof t[k] !== 'string' || t[k].length === 0 || t[k].length > 128)
      bad(`${k} must be a short string`);
  if (!Number.isSafeInteger(t.epoch) || t.epoch < 1) bad('epoch must be a positive integer');
  if (typeof s.signature !== 'string' || !/^[0-9a-f]{128}$/.test(s.signature))
    bad('signature must be 64 bytes of hex');
  if (Object.keys(t).length !== 6) bad('unexpected fields');
  return s;
}

export function encodePrepareTicket(s: SignedPrepareTicket): Uint8Array {
  return canonicalBytes(s);
}

/** Parse a stored or received ticket (bounded, every problem named); does not check the signature. */
export function decodePrepareTicket(bytes: Uint8Array): SignedPrepareTicket {
  return checkPrepareTicket(parseAdminRecord<SignedPrepareTicket>(bytes, 'prepare ticket'));
}

export function verifyPrepareTicket(s: SignedPrepareTicket, adminPubHex: string): Promise<boolean> {
  return verifyAdminSigned(s.ticket, s.signature, adminPubHex);
}

export function isAdminPub(hex: unknown): hex is string {
  return typeof hex === 'string' && /^[0-9a-f]{64}$/.test(hex);
}
