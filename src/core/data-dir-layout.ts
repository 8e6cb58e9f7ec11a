/**
 * Every file and folder of a node's data directory, named once (docs/formats.md describes each):
 *
 *   FORMAT                 data format marker ("fsmesh-data v<N>")
 *   CURRENT                the activation pointer (active, previous, retained generations)
 *   log/NNNNNNNN.log       capsule log segments; `.log.id` beside a sealed one names its object
 *   objects/<kind>/..      content-addressed objects (manifests, artifacts, sealed log segments)
 *   objects/tmp/           objects being written (renamed into place after fsync)
 *   symbols/<kind>/..      repair symbols per object
 *   quarantine/            divergent manifests kept aside for inspection (§8.4)
 *   trusted-writer         the pinned writer peer id (replicas, trust on first use)
 *   known-peers            addresses of peers learned while running, redialled after a restart
 *   writer-handover        the admin-signed handover (failover) this node follows: writer and epoch
 *   writer-promise         the admin-signed prepare ticket this node promised to (refuses older writers)
 *   node.key               the node's libp2p identity (ed25519, protobuf)
 *   node.json              reserved (accepted in a pre-FORMAT directory)
 */

export const DATA_DIR = {
  format_file: 'FORMAT',
  pointer_file: 'CURRENT',
  log_dir: 'log',
  objects_dir: 'objects',
  objects_tmp_dir: 'objects/tmp',
  symbols_dir: 'symbols',
  quarantine_dir: 'quarantine',
  trusted_writer_file: 'trusted-writer',
  known_peers_file: 'known-peers',
  writer_handover_file: 'writer-handover',
  /** The promotion this node promised to (epoch, candidate), canonical JSON. */
  writer_promise_file: 'writer-promise',
  node_key_file: 'node.key',
  node_json_file: 'node.json',
  /** A multi-shard node's root: `{"format":1,"shards":S}`; each shard's data dir is under shards/<k>/. */
  shards_layout_file: 'shards.json',
  shards_dir: 'shards',
} as const;

/**
 * Names a directory may hold before it has a FORMAT file: older layouts, and the identity that
 * `fsmesh node id` creates before the node first starts (to plan seeds).
 */
export const PRE_FORMAT_ENTRIES: readonly string[] = [
  DATA_DIR.log_dir,
  DATA_DIR.objects_dir,
  DATA_DIR.pointer_file,
  DATA_DIR.node_json_file,
  DATA_DIR.node_key_file,
];

export const objectPath = (kind: string, id: string): string =>
  `${DATA_DIR.objects_dir}/${kind}/${id.slice(0, 2)}/${id}`;
export const symbolPath = (kind: string, id: string): string =>
  `${DATA_DIR.symbols_dir}/${kind}/${id.slice(0, 2)}/${id}`;
export const logSegmentPath = (name: string): string => `${DATA_DIR.log_dir}/${name}`;
export const quarantinePath = (name: string): string => `${DATA_DIR.quarantine_dir}/${name}`;
