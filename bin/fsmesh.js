#!/usr/bin/env node
// Entry point of the `fsmesh` command. The sources are TypeScript run by Node's type stripping
// (Node >= 22.18; `npm ci` installs a pinned Node 24 and npm scripts put it first on PATH).
await import('../src/cli/main.ts');
