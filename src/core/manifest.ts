/**
 * Generation manifest (§5.2): everything a node needs to verify and activate one search
 * generation. Canonical JSON; artifact_manifest_id = BLAKE3("fsmesh/manifest/v1\0" || bytes).
 * The validator reports every problem with its field path, not only the first.
 */

import { decodeUtf8 } from './bytes.ts';
import { canonicalBytes } from './canonical-json.ts';
import { isValidShard } from './capsule.ts';
import { FsmeshError } from './errors.ts';
import { isObjectId, type ObjectId, objectIdOf } from './ids.ts';

export const MANIFEST_VERSION = 1;

export type Quantization = 'f16' | 'f32';

export interface EmbedderIdentity {
  id: string;
  revision_hash: string;
  dims: number;
}

export interface VectorArtifact {
  object_id: ObjectId;
  /** 'fsvi': vector shard; 'hnsw': graph over the shard named by `shard_object_id`. */
  role: 'fsvi' | 'hnsw';
  /** The lexical segment whose documents this shard embeds (same doc order). */
  segment_object_id: ObjectId;
  shard_object_id?: ObjectId;
  /** 'quality': a shard of the quality-tier embedder (TwoTierSearcher); absent = fast tier. */
  tier?: 'quality';
  dims: number;
  quantization: Quantization;
  count: number;
  size_bytes: number;
}

export interface LexicalArtifact {
  object_id: ObjectId;
  /** 'segment': immutable lexical segment; 'deletes': the generation's deleted-document bitmap. */
  role: 'segment' | 'deletes';
  size_bytes: number;
  /** crc32 of the object bytes, "crc32:xxxxxxxx": a cheap read-time check; object_id is the strong one. */
  checksum: string;
  doc_count: number;
}

export interface RepairDescriptor {
  object_id: ObjectId;
  length: number;
  symbol_size: number;
  source_blocks: number;
  source_symbols: number;
  repair_symbols: number;
  overhead: number;
}

export interface ActivationInvariants {
  /** Every listed artifact must be present locally and hash to its object id. */
  require_all_artifacts: true;
  /** The node's embedder revision must equal this (or be explicitly overridden). */
  require_embedder_revision: string;
  /** The generation may only replace one whose commit_seq_high is <= this one's. */
  min_commit_seq_high: number;
  /** The parent generation this one was built on, or null for the first. */
  require_parent_generation_id: string | null;
}

export interface GenerationManifest {
  manifest_version: typeof MANIFEST_VERSION;
  shard: string;
  generation_id: string;
  generation_seq: number;
  parent_generation_id: string | null;
  created_by: string;
  /** Window of commits this generation added on top of its parent: parent high + 1 .. commit_seq_high. */
  commit_range: { from_commit_seq: number; to_commit_seq: number };
  commit_seq_high: number;
  /** marker_id of commit_seq_high: ties the generation to the commit chain. */
  head_marker_id: ObjectId;
  doc_count: number;
  embedder: EmbedderIdentity;
  /** The quality-tier (semantic) embedder, when the generation carries quality shards. */
  quality_embedder?: EmbedderIdentity;
  vector_artifacts: VectorArtifact[];
  lexical_artifacts: LexicalArtifact[];
  repair: { symbol_size: number; overhead_ratio: number; descriptors: RepairDescriptor[] };
  activation_invariants: ActivationInvariants;
}

export function generationIdFor(seq: number): string {
  return `gen-${seq}`;
}

const GEN_ID_RE = /^gen-[1-9][0-9]{0,15}$/;
const CRC_RE = /^crc32:[0-9a-f]{8}$/;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isNat(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkKeys(
  o: Record<string, unknown>,
  at: string,
  required: string[],
  optional: string[],
  p: string[],
): void {
  for (const k of required) if (!(k in o)) p.push(`${at}.${k}: missing`);
  for (const k of Object.keys(o))
    if (!required.includes(k) && !optional.includes(k)) p.push(`${at}.${k}: unknown field`);
}

/** Every problem as "path: message"; [] when the manifest is valid. Table-like: one check per field. */
export function manifestProblems(m: unknown): string[] {
  const p: string[] = [];
  if (!isObj(m)) return ['$: manifest must be a JSON object'];
  if (m.manifest_version !== MANIFEST_VERSION) {
    if (isNat(m.manifest_version) && m.manifest_version > MANIFEST_VERSION) {
      return [
        `$.manifest_version: unsupported version ${m.manifest_version} (this build reads ${MANIFEST_VERSION}); upgrade fsmesh`,
      ];
    }
    p.push(`$.manifest_version: must be ${MANIFEST_VERSION}`);
  }
  checkKeys(
    m,
    '$',
    [
      'manifest_version',
      'shard',
      'generation_id',
      'generation_seq',
      'parent_generation_id',
      'created_by',
      'commit_range',
      'commit_seq_high',
      'head_marker_id',
      'doc_count',
      'embedder',
      'vector_artifacts',
      'lexical_artifacts',
      'repair',
      'activation_invariants',
    ],
    ['quality_embedder'],
    p,
  );
  let qdims = -1;
  if (m.quality_embedder !== undefined) {
    const q = m.quality_embedder;
    if (
      !isObj(q) ||
      typeof q.id !== 'string' ||
      typeof q.revision_hash !== 'string' ||
      !/^[0-9a-f]{16,64}$/.test(q.revision_hash) ||
      !(isNat(q.dims) && q.dims >= 1 && q.dims <= 4096)
    ) {
      p.push('$.quality_embedder: must be {id, revision_hash (16-64 hex), dims (1..4096)}');
    } else qdims = q.dims as number;
  }
  if ('shard' in m && !isValidShard(m.shard)) p.push('$.shard: must match [a-z0-9][a-z0-9_-]{0,63}');
  if ('generation_seq' in m && !(isNat(m.generation_seq) && m.generation_seq >= 1))
    p.push('$.generation_seq: must be an integer >= 1');
  if ('generation_id' in m) {
    if (typeof m.generation_id !== 'string' || !GEN_ID_RE.test(m.generation_id))
      p.push('$.generation_id: must look like "gen-<n>"');
    else if (isNat(m.generation_seq) && m.generation_id !== generationIdFor(m.generation_seq)) {
      p.push(
        `$.generation_id: must be ${generationIdFor(m.generation_seq)} for generation_seq ${m.generation_seq}`,
      );
    }
  }
  if ('parent_generation_id' in m) {
    const pg = m.parent_generation_id;
    if (pg !== null && (typeof pg !== 'string' || !GEN_ID_RE.test(pg)))
      p.push('$.parent_generation_id: must be null or "gen-<n>"');
    if (isNat(m.generation_seq)) {
      // After a rollback the next generation builds on an older parent, so only order is required.
      if (m.generation_seq === 1 && pg !== null)
        p.push('$.parent_generation_id: must be null for generation_seq 1');
      if (
        m.generation_seq > 1 &&
        (typeof pg !== 'string' || !GEN_ID_RE.test(pg) || Number(pg.slice(4)) >= m.generation_seq)
      ) {
        p.push('$.parent_generation_id: must name an earlier generation');
      }
    }
  }
  if (
    'created_by' in m &&
    (typeof m.created_by !== 'string' || m.created_by.length === 0 || m.created_by.length > 128)
  ) {
    p.push('$.created_by: must be a non-empty string of at most 128 characters');
  }
  if ('commit_seq_high' in m && !isNat(m.commit_seq_high))
    p.push('$.commit_seq_high: must be a non-negative integer');
  if ('commit_range' in m) {
    const r = m.commit_range;
    if (!isObj(r)) p.push('$.commit_range: must be an object');
    else {
      checkKeys(r, '$.commit_range', ['from_commit_seq', 'to_commit_seq'], [], p);
      if (!(isNat(r.from_commit_seq) && r.from_commit_seq >= 1))
        p.push('$.commit_range.from_commit_seq: must be an integer >= 1');
      if (!isNat(r.to_commit_seq)) p.push('$.commit_range.to_commit_seq: must be a non-negative integer');
      if (isNat(r.from_commit_seq) && isNat(r.to_commit_seq) && r.to_commit_seq < r.from_commit_seq - 1) {
        p.push('$.commit_range: to_commit_seq must be >= from_commit_seq - 1');
      }
      if (isNat(r.to_commit_seq) && isNat(m.commit_seq_high) && r.to_commit_seq !== m.commit_seq_high) {
        p.push('$.commit_range.to_commit_seq: must equal commit_seq_high');
      }
    }
  }
  if ('head_marker_id' in m && !isObjectId(m.head_marker_id))
    p.push('$.head_marker_id: must be 64 lowercase hex characters');
  if ('doc_count' in m && !isNat(m.doc_count)) p.push('$.doc_count: must be a non-negative integer');
  let dims = -1;
  if ('embedder' in m) {
    const e = m.embedder;
    if (!isObj(e)) p.push('$.embedder: must be an object');
    else {
      checkKeys(e, '$.embedder', ['id', 'revision_hash', 'dims'], [], p);
      if (typeof e.id !== 'string' || e.id.length === 0) p.push('$.embedder.id: must be a non-empty string');
      if (typeof e.revision_hash !== 'string' || !/^[0-9a-f]{16,64}$/.test(e.revision_hash))
        p.push('$.embedder.revision_hash: must be 16-64 lowercase hex characters');
      if (!(isNat(e.dims) && e.dims >= 1 && e.dims <= 4096))
        p.push('$.embedder.dims: must be an integer in 1..4096');
      else dims = e.dims;
    }
  }
  const artifactIds = new Set<string>();
  const segmentIds = new Set<string>();
  if ('lexical_artifacts' in m) {
    const la = m.lexical_artifacts;
    if (!Array.isArray(la)) p.push('$.lexical_artifacts: must be an array');
    else {
      let deletes = 0;
      la.forEach((a, i) => {
        const at = `$.lexical_artifacts[${i}]`;
        if (!isObj(a)) return p.push(`${at}: must be an object`);
        checkKeys(a, at, ['object_id', 'role', 'size_bytes', 'checksum', 'doc_count'], [], p);
        if (!isObjectId(a.object_id)) p.push(`${at}.object_id: must be 64 lowercase hex characters`);
        else if (artifactIds.has(a.object_id)) p.push(`${at}.object_id: listed twice`);
        else artifactIds.add(a.object_id);
        if (a.role !== 'segment' && a.role !== 'deletes')
          p.push(`${at}.role: must be "segment" or "deletes"`);
        if (a.role === 'segment' && isObjectId(a.object_id)) segmentIds.add(a.object_id);
        if (a.role === 'deletes') deletes++;
        if (!isNat(a.size_bytes)) p.push(`${at}.size_bytes: must be a non-negative integer`);
        if (typeof a.checksum !== 'string' || !CRC_RE.test(a.checksum))
          p.push(`${at}.checksum: must look like "crc32:xxxxxxxx"`);
        if (!isNat(a.doc_count)) p.push(`${at}.doc_count: must be a non-negative integer`);
      });
      if (deletes > 1) p.push('$.lexical_artifacts: at most one "deletes" artifact');
    }
  }
  if ('vector_artifacts' in m) {
    const va = m.vector_artifacts;
    if (!Array.isArray(va)) p.push('$.vector_artifacts: must be an array');
    else {
      const shardIds = new Set<string>();
      va.forEach((a) => {
        if (isObj(a) && a.role === 'fsvi' && isObjectId(a.object_id)) shardIds.add(a.object_id);
      });
      va.forEach((a, i) => {
        const at = `$.vector_artifacts[${i}]`;
        if (!isObj(a)) return p.push(`${at}: must be an object`);
        checkKeys(
          a,
          at,
          ['object_id', 'role', 'segment_object_id', 'dims', 'quantization', 'count', 'size_bytes'],
          ['shard_object_id', 'tier'],
          p,
        );
        if (a.tier !== undefined && (a.tier !== 'quality' || a.role !== 'fsvi' || qdims < 0)) {
          p.push(`${at}.tier: only "quality" on an fsvi shard of a manifest with quality_embedder`);
        }
        if (!isObjectId(a.object_id)) p.push(`${at}.object_id: must be 64 lowercase hex characters`);
        else if (artifactIds.has(a.object_id)) p.push(`${at}.object_id: listed twice`);
        else artifactIds.add(a.object_id);
        if (a.role !== 'fsvi' && a.role !== 'hnsw') p.push(`${at}.role: must be "fsvi" or "hnsw"`);
        if (!isObjectId(a.segment_object_id) || !segmentIds.has(a.segment_object_id)) {
          p.push(`${at}.segment_object_id: must name a lexical segment of this manifest`);
        }
        if (a.role === 'hnsw' && (!isObjectId(a.shard_object_id) || !shardIds.has(a.shard_object_id))) {
          p.push(`${at}.shard_object_id: an hnsw artifact must name an fsvi shard of this manifest`);
        }
        const wantDims = a.tier === 'quality' ? qdims : dims;
        if (!isNat(a.dims) || (wantDims > 0 && a.dims !== wantDims)) {
          p.push(`${at}.dims: must equal ${a.tier === 'quality' ? 'quality_embedder' : 'embedder'}.dims`);
        }
        if (a.quantization !== 'f16' && a.quantization !== 'f32')
          p.push(`${at}.quantization: must be "f16" or "f32"`);
        if (!isNat(a.count)) p.push(`${at}.count: must be a non-negative integer`);
        if (!isNat(a.size_bytes)) p.push(`${at}.size_bytes: must be a non-negative integer`);
      });
    }
  }
  if ('repair' in m) p.push(...repairProblems(m.repair, artifactIds));
  if ('activation_invariants' in m) {
    const ai = m.activation_invariants;
    const at = '$.activation_invariants';
    if (!isObj(ai)) p.push(`${at}: must be an object`);
    else {
      checkKeys(
        ai,
        at,
        [
          'require_all_artifacts',
          'require_embedder_revision',
          'min_commit_seq_high',
          'require_parent_generation_id',
        ],
        [],
        p,
      );
      if (ai.require_all_artifacts !== true) p.push(`${at}.require_all_artifacts: must be true`);
      if (isObj(m.embedder) && ai.require_embedder_revision !== m.embedder.revision_hash) {
        p.push(`${at}.require_embedder_revision: must equal embedder.revision_hash`);
      }
      if (
        !isNat(ai.min_commit_seq_high) ||
        (isNat(m.commit_seq_high) && ai.min_commit_seq_high > m.commit_seq_high)
      ) {
        p.push(`${at}.min_commit_seq_high: must be an integer <= commit_seq_high`);
      }
      if (ai.require_parent_generation_id !== m.parent_generation_id)
        p.push(`${at}.require_parent_generation_id: must equal parent_generation_id`);
    }
  }
  return p;
}

function repairProblems(r: unknown, artifactIds: Set<string>): string[] {
  const p: string[] = [];
  const at = '$.repair';
  if (!isObj(r)) return [`${at}: must be an object`];
  checkKeys(r, at, ['symbol_size', 'overhead_ratio', 'descriptors'], [], p);
  const symbolSizeOk =
    isNat(r.symbol_size) && r.symbol_size >= 64 && r.symbol_size <= 65536 && r.symbol_size % 8 === 0;
  if (!symbolSizeOk) p.push(`${at}.symbol_size: must be a multiple of 8 in 64..65536`);
  if (typeof r.overhead_ratio !== 'number' || !(r.overhead_ratio >= 0 && r.overhead_ratio <= 4))
    p.push(`${at}.overhead_ratio: must be a number in 0..4`);
  if (!Array.isArray(r.descriptors)) return [...p, `${at}.descriptors: must be an array`];
  const described = new Set<string>();
  r.descriptors.forEach((d: unknown, i: number) => {
    const dat = `${at}.descriptors[${i}]`;
    if (!isObj(d)) return p.push(`${dat}: must be an object`);
    checkKeys(
      d,
      dat,
      ['object_id', 'length', 'symbol_size', 'source_blocks', 'source_symbols', 'repair_symbols', 'overhead'],
      [],
      p,
    );
    if (!isObjectId(d.object_id) || !artifactIds.has(d.object_id))
      p.push(`${dat}.object_id: must name an artifact of this manifest`);
    else if (described.has(d.object_id)) p.push(`${dat}.object_id: described twice`);
    else described.add(d.object_id);
    if (!isNat(d.length)) p.push(`${dat}.length: must be a non-negative integer`);
    if (d.symbol_size !== r.symbol_size) p.push(`${dat}.symbol_size: must equal repair.symbol_size`);
    for (const k of ['source_blocks', 'source_symbols', 'repair_symbols'] as const) {
      if (!isNat(d[k])) p.push(`${dat}.${k}: must be a non-negative integer`);
    }
    if (isNat(d.length) && symbolSizeOk && isNat(d.source_symbols)) {
      const expect = Math.max(1, Math.ceil(d.length / (r.symbol_size as number)));
      if (d.source_symbols !== expect)
        p.push(`${dat}.source_symbols: must be ceil(length / symbol_size) = ${expect}`);
    }
    if (isNat(d.source_blocks) && isNat(d.repair_symbols) && d.repair_symbols < 2 * d.source_blocks) {
      p.push(`${dat}.repair_symbols: must be at least 2 per source block`);
    }
    if (typeof d.overhead !== 'number' || !(d.overhead >= 0))
      p.push(`${dat}.overhead: must be a non-negative number`);
    else if (
      isNat(d.source_symbols) &&
      isNat(d.repair_symbols) &&
      d.source_symbols > 0 &&
      Math.abs(d.overhead - d.repair_symbols / d.source_symbols) > 1e-9
    ) {
      p.push(`${dat}.overhead: must equal repair_symbols / source_symbols`);
    }
  });
  for (const id of artifactIds)
    if (!described.has(id)) p.push(`${at}.descriptors: no descriptor for artifact ${id}`);
  return p;
}

export function validateManifest(m: unknown): GenerationManifest {
  const problems = manifestProblems(m);
  if (problems.length) {
    const unsupported = problems.length === 1 && problems[0].includes('unsupported version');
    throw new FsmeshError(
      unsupported ? 'unsupported_version' : 'invalid_manifest',
      `invalid manifest:\n  ${problems.join('\n  ')}`,
      { problems },
    );
  }
  return m as GenerationManifest;
}

export function encodeManifest(m: GenerationManifest): Uint8Array {
  validateManifest(m);
  return canonicalBytes(m);
}

export function decodeManifest(bytes: Uint8Array): GenerationManifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decodeUtf8(bytes, 'manifest'));
  } catch (err) {
    if (err instanceof FsmeshError) throw err;
    throw new FsmeshError('invalid_manifest', `manifest: not valid JSON (${(err as Error).message})`, {
      problems: ['$: not valid JSON'],
    });
  }
  return validateManifest(parsed);
}

export function manifestIdOf(bytes: Uint8Array): ObjectId {
  return objectIdOf('manifest', bytes);
}
