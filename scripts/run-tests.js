#!/usr/bin/env node
// Runs the whole test suite: compiles the tests, starts the scanner daemons the suites need (when
// they are installed), runs node --test over every compiled test file, stops the daemons.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const built = spawnSync(process.execPath, [tsc, '-p', join(root, 'test', 'tsconfig.json')], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2);
let files = find(join(root, 'dist-test', 'test'));
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));

const { startDaemons } = await import(join(root, 'dist-test', 'test', 'helpers', 'daemons.js'));
const daemons = await startDaemons();
function runTests(list, extraEnv) {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=3', ...list], {
    stdio: 'inherit',
    env: { ...process.env, ...daemons.env, ...extraEnv },
  });
  return new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
}

// The process-level suites run a second time against daemon mode: the same tests, bin/nqqueue-qq
// talking to `nqqueue serve`, must give the same bytes and exit codes.
const qq = join(root, 'bin', 'nqqueue-qq');
const processFiles = files.filter((f) => f.includes(`${join('test', 'process')}/`));
let code = 1;
try {
  code = await runTests(files, {});
  if (processFiles.length > 0 && !existsSync(qq)) {
    process.stdout.write(`\n# ${qq} is missing: the daemon-mode run of the process suites is skipped\n`);
    if (process.env.CI === 'true') code = 1;
  } else if (processFiles.length > 0) {
    process.stdout.write(`\n# the process-level suites again, in daemon mode (${qq})\n`);
    const second = await runTests(processFiles, { NQQ_TEST_BIN: qq });
    if (code === 0) code = second;
  }
} finally {
  await daemons.stop();
}
process.exit(code);
