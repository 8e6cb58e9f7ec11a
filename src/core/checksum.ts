/** Artifact checksums written into manifests (`crc32:<8 hex>`): a cheap first check before BLAKE3. */
import { crc32 } from 'node:zlib';

export function crc32Checksum(bytes: Uint8Array): string {
  return `crc32:${crc32(bytes).toString(16).padStart(8, '0')}`;
}
