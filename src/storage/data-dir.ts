/**
 * Data directory format marker: `FORMAT` holds "fsmesh-data v<N>\n". A directory written by a
 * newer format is refused with a clear message instead of being misread.
 */
import { decodeUtf8, utf8 } from '../core/bytes.ts';
import { DATA_DIR, PRE_FORMAT_ENTRIES } from '../core/data-dir-layout.ts';
import { FsmeshError } from '../core/errors.ts';
import { isNotFound, type Storage, writeFileAtomic } from '../runtime/index.ts';

export const DATA_FORMAT_VERSION = 1;
const FORMAT_FILE = DATA_DIR.format_file;

export async function openDataDir(storage: Storage): Promise<void> {
  await storage.mkdirp('');
  let text: string;
  try {
    text = decodeUtf8(await storage.readFile(FORMAT_FILE), FORMAT_FILE);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    const entries = (await storage.list('')).filter((n) => !n.startsWith('.'));
    if (entries.includes(DATA_DIR.shards_layout_file))
      throw new FsmeshError(
        'invalid_input',
        `${storage.root} is a multi-shard node's data directory: each shard's data is in ${storage.root}/shards/<k> (pass that), or ask the running node over HTTP`,
      );
    if (entries.length > 0 && !entries.every((n) => PRE_FORMAT_ENTRIES.includes(n))) {
      throw new FsmeshError(
        'invalid_input',
        `${storage.root} is not empty and is not an fsmesh data directory (no FORMAT file)`,
      );
    }
    await writeFileAtomic(storage, FORMAT_FILE, utf8.encode(`fsmesh-data v${DATA_FORMAT_VERSION}\n`));
    return;
  }
  checkFormatText(storage, text);
}

/** Read-only: the FORMAT marker must exist and name a version this build reads. */
export async function checkDataDirFormat(storage: Storage): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = await storage.readFile(FORMAT_FILE);
  } catch (err) {
    // Only when FORMAT is missing: is this a multi-shard node's root?
    if (isNotFound(err) && (await storage.exists(DATA_DIR.shards_layout_file)))
      throw new FsmeshError(
        'invalid_input',
        `${storage.root} is a multi-shard node's data directory: each shard's data is in ${storage.root}/shards/<k> (pass that)`,
      );
    throw err;
  }
  checkFormatText(storage, decodeUtf8(bytes, FORMAT_FILE));
}

function checkFormatText(storage: Storage, text: string): void {
  const m = /^fsmesh-data v(\d+)\n?$/.exec(text);
  if (!m) throw new FsmeshError('corrupt_data', `${storage.root}/FORMAT is not an fsmesh format marker`);
  const v = Number(m[1]);
  if (v > DATA_FORMAT_VERSION) {
    throw new FsmeshError(
      'unsupported_version',
      `${storage.root} was written by a newer fsmesh (data format v${v}; this build reads up to v${DATA_FORMAT_VERSION}). Upgrade fsmesh or use another directory.`,
    );
  }
}
