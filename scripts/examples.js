#!/usr/bin/env node
// Writes etc/examples/: the starter files `nqqueue init` writes (src/ops/starter.ts, after the build), for
// a host where clamd and spamd answer at their usual places and rspamd is not running. Run it after a
// change to src/ops/starter.ts; test/ops/starter.test.ts fails until the two are equal again.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { EXAMPLE_BACKENDS, STARTER_FILES, starterFiles } = await import(join(root, 'dist', 'ops', 'starter.js'));
const dir = join(root, 'etc', 'examples');
mkdirSync(dir, { recursive: true });
const files = starterFiles(EXAMPLE_BACKENDS);
for (const name of STARTER_FILES) writeFileSync(join(dir, name), files[name]);
process.stdout.write(`examples: wrote ${STARTER_FILES.map((n) => join('etc', 'examples', n)).join(', ')}\n`);
