/**
 * Import rules (docs/architecture.md "Layers"): a module imports only from its own layer or the
 * layers below it. Type-only imports count. `npm run lint` runs these rules; CI fails on a
 * violation. Bottom to top:
 */
const LAYERS = [
  ['core'],
  ['runtime'],
  ['fsm', 'obs'], // siblings: neither imports the other
  ['codec'],
  ['storage'],
  ['search'],
  ['engine'],
  ['actors'],
  ['node'], // the local node: engine + actors + machines, no network
  ['p2p'], // cluster services over libp2p
  ['shards'], // a multi-shard node: write splitting and scatter-gather over its shards' nodes
  ['http'],
  ['compose'], // the composition root: one function builds node + services + HTTP
  ['cli', 'index.ts'], // the command line and the package entry
];

const rank = new Map();
LAYERS.forEach((names, i) => {
  for (const n of names) rank.set(n, i);
});
const esc = (s) => s.replace(/[.]/g, '\\.');
const pathOf = (n) => `^src/${esc(n)}${n.endsWith('.ts') ? '$' : '/'}`;

const forbidden = [];
LAYERS.forEach((names, i) => {
  for (const n of names) {
    // Everything above this layer, plus same-layer siblings (they stay independent).
    const notAllowed = [...rank.entries()]
      .filter(([m, r]) => m !== n && r >= i)
      .map(([m]) => pathOf(m));
    if (notAllowed.length === 0) continue;
    forbidden.push({
      name: `layer-${n.replace('.ts', '')}`,
      comment: `src/${n} may import only from lower layers (docs/architecture.md)`,
      severity: 'error',
      from: { path: pathOf(n) },
      to: { path: notAllowed },
    });
  }
});

forbidden.push(
  {
    name: 'no-sim-in-src',
    comment: 'src/ never imports the simulator, except the CLI through a lazy import()',
    severity: 'error',
    from: { path: '^src/', pathNot: '^src/cli/' },
    to: { path: '^sim/' },
  },
  {
    name: 'cli-imports-sim-lazily',
    comment: 'the CLI loads the simulator only when `fsmesh sim` runs',
    severity: 'error',
    from: { path: '^src/cli/' },
    to: { path: '^sim/', dynamic: false },
  },
  {
    name: 'no-circular',
    comment: 'no import cycles, type-only ones included',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
    exclude: { path: '(^|/)node_modules/' },
  },
};
