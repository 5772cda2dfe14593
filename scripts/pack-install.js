#!/usr/bin/env node
// The package as users get it: npm pack, then npm install -g of the tarball into a prefix.
//
//   node scripts/pack-install.js --fresh-clone   clones this checkout's HEAD, runs npm ci and npm pack
//                                                there (the prepack build), installs the tarball into a
//                                                temporary prefix and runs the installed programs (CI)
//
// scripts/run-tests.js imports pack() and install(): it packs the tree npm test has just built (scripts
// ignored) and runs the process-level suites against the installed programs; test/package checks the
// tarball and the install. npm runs on the node that runs this (the one the build recorded, in the test
// runner), so the package's install script records that node. Dependencies come from the npm cache when
// it has them (--prefer-offline: npm ci of the checkout put them there), else from the registry.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The npm CLI script: the npm running us (npm test), else the `npm` on PATH. */
export function npmCli() {
  if (process.env.npm_execpath && existsSync(process.env.npm_execpath)) return process.env.npm_execpath;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const npm = join(dir, 'npm');
    if (!dir || !existsSync(npm)) continue;
    const real = realpathSync(npm);
    const cli = real.endsWith('.js') ? real : join(dirname(real), 'npm-cli.js');
    if (existsSync(cli)) return cli;
  }
  throw new Error('npm not found (npm_execpath unset, no npm on PATH)');
}

/** The environment without npm's own variables (npm test sets npm_config_*, which npm would read). */
function cleanEnv(env) {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^npm_/i.test(k)));
}

function npm(args, o) {
  const started = performance.now();
  const r = spawnSync(o.node ?? process.execPath, [o.cli ?? npmCli(), ...args], {
    cwd: o.cwd,
    env: cleanEnv(o.env ?? process.env),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: o.timeoutMs ?? 600_000,
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `${r.error.message}\n` : ''}`;
  return { ok: r.status === 0, status: r.status, stdout: r.stdout ?? '', output, ms: performance.now() - started };
}

/**
 * npm pack of `dir` into `dest`. build: run the package's prepack (the full build); without it the tree
 * must be built already, and its compiled bin/nqqueue-qq is moved aside while packing (npm packs every
 * "bin" file that is there, and the package compiles its own at install).
 */
export function pack(dir, dest, { build = false, env, node } = {}) {
  const qq = join(dir, 'bin', 'nqqueue-qq');
  const aside = join(dir, 'bin', '.nqqueue-qq.packing');
  const moved = !build && existsSync(qq);
  if (moved) renameSync(qq, aside);
  let r;
  try {
    r = npm(['pack', '--json', '--pack-destination', dest, ...(build ? [] : ['--ignore-scripts'])], { cwd: dir, env, node });
  } finally {
    if (moved) renameSync(aside, qq);
  }
  if (!r.ok) throw new Error(`npm pack failed (${r.status}):\n${r.output.trim()}`);
  // --json: an array with one entry; the lifecycle scripts' output (build) comes before it.
  const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n[') + 1 || r.stdout.indexOf('[')))[0];
  return { tarball: join(dest, info.filename), size: info.size, unpackedSize: info.unpackedSize, files: info.files.map((f) => f.path), ms: r.ms };
}

/** npm install -g of the tarball into `prefix`; the install script's lines are in output. */
export function install(tarball, prefix, { env, node } = {}) {
  const args = ['install', '-g', '--prefix', prefix, '--prefer-offline', '--foreground-scripts', '--no-audit', '--no-fund', '--loglevel=warn', tarball];
  return npm(args, { env, node });
}

function freshClone() {
  const tmp = mkdtempSync(join(tmpdir(), 'nqq-fresh-clone-'));
  // Open to others, as an installation is: the install records only a node qmail-smtpd's user can run,
  // and the clone's fetched node is the one npm runs on here.
  chmodSync(tmp, 0o755);
  const step = (what, r) => {
    if (r.status !== 0 || r.error) throw new Error(`${what} failed (${r.status ?? r.error?.message}):\n${r.output ?? `${r.stdout ?? ''}${r.stderr ?? ''}`}`);
    return r;
  };
  try {
    const clone = join(tmp, 'clone');
    const head = step('git rev-parse', spawnSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' })).stdout.trim();
    step('git clone', spawnSync('git', ['clone', '--quiet', '--no-checkout', root, clone], { encoding: 'utf8' }));
    step('git checkout', spawnSync('git', ['-C', clone, 'checkout', '--quiet', head], { encoding: 'utf8' }));
    process.stdout.write(`pack-install: npm ci in a fresh clone of ${head.slice(0, 12)} (what is committed; not the working tree)\n`);
    step('npm ci', npm(['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: clone }));
    const p = pack(clone, tmp, { build: true });
    process.stdout.write(`pack-install: npm pack (prepack build): ${p.tarball.slice(tmp.length + 1)}, ${(p.size / 1000).toFixed(1)} kB (${(p.unpackedSize / 1e6).toFixed(1)} MB unpacked, ${p.files.length} files) in ${(p.ms / 1000).toFixed(1)} s\n`);
    for (const must of ['bin/nqqueue', 'dist/cli/main.js', 'src/qq/nqqueue-qq.c', 'scripts/install.js']) {
      if (!p.files.includes(must)) step(`the tarball has no ${must}`, { status: 1, output: p.files.join('\n') });
    }
    for (const f of p.files) {
      if (/^(dist\/node-(path|version)|bin\/nqqueue-qq|\.runtime\/|test\/|dist-test\/)/.test(f)) step(`the tarball has ${f}`, { status: 1, output: '' });
    }
    // npm on the node the clone's build recorded: the install script records the node running npm.
    const node = readFileSync(join(clone, 'dist', 'node-path'), 'utf8').trim();
    const prefix = join(tmp, 'prefix');
    const i = step('npm install -g', install(p.tarball, prefix, { node }));
    process.stdout.write(`${i.output.trim()}\npack-install: installed in ${(i.ms / 1000).toFixed(1)} s\n`);
    // Out of the clone: the installed programs must not need it (but the node it recorded).
    rmSync(join(clone, 'node_modules'), { recursive: true, force: true });
    rmSync(join(clone, 'dist'), { recursive: true, force: true });
    rmSync(join(clone, 'bin'), { recursive: true, force: true });
    const version = step('nqqueue --version', spawnSync(join(prefix, 'bin', 'nqqueue'), ['--version'], { encoding: 'utf8', env: {} }));
    process.stdout.write(`pack-install: ${join('<prefix>', 'bin', 'nqqueue')} --version: ${version.stdout.trim()}\n`);
    if (!readdirSync(join(prefix, 'bin')).includes('nqqueue-qq')) step('the install made no bin/nqqueue-qq', { status: 1, output: '' });
    // With no daemon, the client runs the standalone program next to it: the installed layout works.
    // (An empty message and envelope: fd 1 is /dev/null, never a socket it would wait on.)
    const qq = spawnSync(join(prefix, 'bin', 'nqqueue-qq'), [], { encoding: 'utf8', env: {}, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    if (!/running the standalone program/.test(qq.stderr) || !/^nqqueue: .* via=fallback/m.test(qq.stderr)) {
      step('nqqueue-qq (no daemon: the standalone program next to it)', { status: 1, output: `exit ${qq.status}\n${qq.stderr}` });
    }
    process.stdout.write('pack-install: ok\n');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--fresh-clone' && process.argv.length === 3) {
    try {
      freshClone();
    } catch (e) {
      process.stderr.write(`pack-install: ${e.message}\n`);
      process.exitCode = 1;
    }
  } else {
    process.stderr.write('usage: node scripts/pack-install.js --fresh-clone\n');
    process.exit(2);
  }
}
