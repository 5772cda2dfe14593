#!/usr/bin/env node
// Runs the whole test suite on the node the build recorded: compiles the tests, starts the scanner daemons the suites need (when
// they are installed), runs node --test over every compiled test file, stops the daemons.
import { spawnSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// The suites run on the node the build recorded (dist/node-path): the one bin/nqqueue runs on, which
// may be a Node.js the build fetched because the system's is too old. This script starts again on it.
let recorded;
try {
  recorded = readFileSync(join(root, 'dist', 'node-path'), 'utf8').trim();
} catch {
  process.stderr.write('run-tests: dist/node-path is missing: run npm run build first\n');
  process.exit(1);
}
if (recorded !== process.execPath) {
  if (process.env.NQQ_TEST_REEXEC) {
    process.stderr.write(`run-tests: started on ${recorded} but running on ${process.execPath}\n`);
    process.exit(1);
  }
  const again = spawnSync(recorded, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, NQQ_TEST_REEXEC: '1' },
  });
  if (again.error) process.stderr.write(`run-tests: cannot run ${recorded} (dist/node-path): ${again.error.message}\n`);
  process.exit(again.status ?? 1);
}
// NQQ_NODE asks the build for a line: a suite on another one would test the wrong Node.js.
const line = (process.env.NQQ_NODE ?? '').trim();
if (line !== '' && !line.split('.').every((p, i) => p === process.versions.node.split('.')[i])) {
  process.stderr.write(`run-tests: NQQ_NODE=${line} but dist/node-path is Node.js ${process.version}: run npm run build with it\n`);
  process.exit(1);
}
process.stdout.write(`# Node.js ${process.version} (${process.execPath})\n`);
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
  // TAP on every line (Node 23+ defaults to the spec reporter): the same summary lines on 22 and 24.
  const child = spawn(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=3', ...list], {
    stdio: 'inherit',
    env: { ...process.env, ...daemons.env, ...extraEnv },
  });
  return new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
}

// The process-level suites run against the package as users install it: the tree just built, packed
// (npm pack, its scripts ignored: npm test has built it) and installed with npm install -g into a
// temporary prefix — first against its nqqueue (standalone), then a second time against its nqqueue-qq
// talking to its `nqqueue serve` (daemon mode), which must give the same bytes and exit codes. The other
// suites run against the checkout; test/package checks the tarball and the install (NQQ_TEST_TARBALL,
// NQQ_TEST_PREFIX). Under CI=true a package that does not pack or install fails the run; elsewhere the
// process-level suites then run against the checkout's bin/, and the run says so.
const processFiles = files.filter((f) => f.includes(`${join('test', 'process')}/`));
const otherFiles = files.filter((f) => !processFiles.includes(f));
const packageTests = files.some((f) => f.includes(`${join('test', 'package')}/`));
let installed;
let packFailed = false;
let work;
if (processFiles.length > 0 || packageTests) {
  const { pack, install } = await import('./pack-install.js');
  work = mkdtempSync(join(tmpdir(), 'nqq-package-'));
  // Readable by all, as an installed package is: some suites run it as another user (nobody).
  chmodSync(work, 0o755);
  try {
    const p = pack(root, work);
    const prefix = join(work, 'prefix');
    const i = install(p.tarball, prefix);
    if (!i.ok) throw new Error(`npm install -g ${p.tarball} failed (${i.status}):\n${i.output.trim()}`);
    process.stdout.write(
      `# package: ${p.tarball.slice(work.length + 1)}, ${(p.size / 1000).toFixed(1)} kB (${(p.unpackedSize / 1e6).toFixed(1)} MB unpacked, ` +
        `${p.files.length} files), packed in ${(p.ms / 1000).toFixed(1)} s; npm install -g in ${(i.ms / 1000).toFixed(1)} s into ${prefix}\n` +
        i.output.trim().split('\n').filter((l) => l.startsWith('nqqueue install:') || l.startsWith('build-qq:')).map((l) => `#   ${l}\n`).join(''),
    );
    installed = { tarball: p.tarball, prefix, nqqueue: join(prefix, 'bin', 'nqqueue'), qq: join(prefix, 'bin', 'nqqueue-qq') };
  } catch (e) {
    packFailed = true;
    process.stdout.write(`\n# the package could not be packed or installed, the process-level suites run against the checkout's bin/:\n# ${String(e.message).split('\n').join('\n# ')}\n`);
  }
}
const packageEnv = installed ? { NQQ_TEST_TARBALL: installed.tarball, NQQ_TEST_PREFIX: installed.prefix } : {};
const standalone = installed ? { NQQ_TEST_BIN: installed.nqqueue, NQQ_TEST_NQQUEUE: installed.nqqueue } : {};
const qq = installed ? installed.qq : join(root, 'bin', 'nqqueue-qq');
const daemonMode = installed ? { NQQ_TEST_BIN: installed.qq, NQQ_TEST_NQQUEUE: installed.nqqueue } : { NQQ_TEST_BIN: qq };
let code = 1;
try {
  if (installed) {
    code = otherFiles.length > 0 ? await runTests(otherFiles, packageEnv) : 0;
    if (processFiles.length > 0) {
      process.stdout.write(`\n# the process-level suites, standalone (${installed.nqqueue})\n`);
      const first = await runTests(processFiles, standalone);
      if (code === 0) code = first;
    }
  } else {
    code = await runTests(files, {});
  }
  if (packFailed && process.env.CI === 'true') code = 1;
  if (processFiles.length > 0 && !existsSync(qq)) {
    process.stdout.write(`\n# ${qq} is missing: the daemon-mode run of the process suites is skipped\n`);
    if (process.env.CI === 'true') code = 1;
  } else if (processFiles.length > 0) {
    process.stdout.write(`\n# the process-level suites again, in daemon mode (${qq})\n`);
    const second = await runTests(processFiles, daemonMode);
    if (code === 0) code = second;
  }
} finally {
  await daemons.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}
process.exit(code);
