#!/usr/bin/env node
// After tsc: record the node that built NQqueue, so bin/nqqueue can find it without PATH.
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(join(root, 'dist', 'node-path'), `${process.execPath}\n`);
// Its version too: under memory limits bin/nqqueue checks them against that line's needs without running it.
writeFileSync(join(root, 'dist', 'node-version'), `${process.execPath} ${process.version}\n`);
chmodSync(join(root, 'bin', 'nqqueue'), 0o755);
