// The npm package: what the tarball holds, and what npm install -g of it gives — with a C compiler
// (bin/nqqueue-qq compiled at install) and without one (a loud line; the standalone nqqueue works).
// scripts/run-tests.js passes the tarball and the prefix it installed (NQQ_TEST_TARBALL,
// NQQ_TEST_PREFIX); run alone, this file packs and installs them itself.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { REPO, SAMPLE, setupsForThisFile } from '../helpers/nqq.js';
import { envelopeOf, runSmtpd } from '../helpers/smtpd.js';

interface Packed {
  tarball: string;
}
interface Installed {
  ok: boolean;
  status: number | null;
  output: string;
}
interface PackInstall {
  pack(dir: string, dest: string): Packed;
  install(tarball: string, prefix: string, o?: { env?: NodeJS.ProcessEnv }): Installed;
}

const setup = setupsForThisFile();
const work = mkdtempSync(join(tmpdir(), 'nqq-package-test-'));
// Open to others, as an installation's directories are (the install records only a node qmaild can run).
chmodSync(work, 0o755);
after(() => rmSync(work, { recursive: true, force: true }));

let tools: PackInstall;
let tarball: string;
let prefix: string;
before(async () => {
  tools = (await import(pathToFileURL(join(REPO, 'scripts', 'pack-install.js')).href)) as PackInstall;
  tarball = process.env.NQQ_TEST_TARBALL || tools.pack(REPO, work).tarball;
  prefix = process.env.NQQ_TEST_PREFIX || '';
  if (!prefix) {
    prefix = join(work, 'prefix');
    const r = tools.install(tarball, prefix);
    assert.ok(r.ok, r.output);
  }
});

function entries(): string[] {
  const r = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((p) => p.replace(/^package\//, ''));
}

/** One message through `bin` as qmail-smtpd runs it; the stand-in qmail-queue must have it. */
async function delivers(bin: string) {
  const s = setup();
  const r = await runSmtpd({ bin, message: SAMPLE, envelope: envelopeOf('sender@client.example', ['rcpt@example.com']), env: s.env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.standIn.deliveries().length, 1, r.stderr);
  return r;
}

/** An ELF file's type (2 a fixed executable, 3 a PIE or library) and whether it names a program interpreter. */
function elf(path: string): { type: number; interpreter: boolean } {
  const b = readFileSync(path);
  assert.equal(b.subarray(0, 4).toString('latin1'), '\x7fELF', `${path} is an ELF file`);
  assert.equal(b[4], 2, '64-bit');
  const phoff = Number(b.readBigUInt64LE(32));
  const size = b.readUInt16LE(54);
  let interpreter = false;
  for (let i = 0; i < b.readUInt16LE(56); i++) if (b.readUInt32LE(phoff + i * size) === 3) interpreter = true;
  return { type: b.readUInt16LE(16), interpreter };
}

test('the tarball: the built program, the C source of nqqueue-qq, the install script; nothing of this machine', () => {
  const files = entries();
  for (const must of ['package.json', 'README.md', 'COPYING', 'bin/nqqueue', 'dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', 'src/qq/nqqueue-qq.c', 'src/qq/nqqueue-qq.h', 'scripts/install.js', 'scripts/build-qq.js', 'etc/examples/nqqueue.conf', 'docs/daemon-protocol.md', 'dist/man/nqqueue.8']) {
    assert.ok(files.includes(must), `${must} is not in the tarball`);
  }
  for (const f of files) {
    // The build's record of its node (a path on the build machine), the compiled client (built for it),
    // the fetched Node.js, the tests.
    assert.doesNotMatch(f, /^(dist\/node-(path|version)$|bin\/nqqueue-qq$|\.runtime\/|node_modules\/|test\/|dist-test\/|tsconfig|docs\/screenshots\/)/, f);
  }
  const r = spawnSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' });
  const pkg = JSON.parse(r.stdout);
  assert.deepEqual(pkg.bin, { nqqueue: 'bin/nqqueue', 'nqqueue-qq': 'bin/nqqueue-qq' });
  assert.equal(pkg.scripts.preinstall, 'node scripts/install.js');
  const text = gunzipSync(readFileSync(tarball)).toString('latin1');
  assert.ok(!text.includes(REPO.replace(/\/$/, '')), 'no path of the checkout');
});

test('installed with a C compiler: nqqueue and nqqueue-qq on the prefix PATH, the manual pages on man\'s, the node that ran npm recorded', async () => {
  const nqqueue = join(prefix, 'bin', 'nqqueue');
  const qq = join(prefix, 'bin', 'nqqueue-qq');
  accessSync(nqqueue, constants.X_OK);
  accessSync(qq, constants.X_OK);
  // A static PIE: no dynamic loader at each message's start, and its own addresses randomised.
  assert.deepEqual(elf(qq), { type: 3, interpreter: false });
  // Against musl where musl-gcc is installed (CI installs it): glibc's code names itself, musl's does not.
  if (!spawnSync('musl-gcc', ['--version'], { stdio: 'ignore' }).error) assert.ok(!readFileSync(qq).includes('glibc'), 'linked against musl');
  const pkgDir = join(prefix, 'lib', 'node_modules', 'nqqueue');
  assert.equal(readFileSync(join(pkgDir, 'dist', 'node-path'), 'utf8'), `${process.execPath}\n`);
  assert.equal(readFileSync(join(pkgDir, 'dist', 'node-version'), 'utf8'), `${process.execPath} ${process.version}\n`);
  const v = spawnSync(nqqueue, ['--version'], { env: {}, encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), `nqqueue ${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version}`);
  await delivers(nqqueue);
  // The manual pages, where man finds them under the prefix (share/man/manN), each rendering.
  const pages = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).man as string[];
  assert.ok(pages.length >= 5);
  for (const page of pages) {
    const name = page.split('/').pop()!;
    const installed = join(prefix, 'share', 'man', `man${name.slice(name.lastIndexOf('.') + 1)}`, name);
    accessSync(installed, constants.R_OK);
    assert.match(readFileSync(installed, 'utf8'), /^\.TH /m, `${installed} is a manual page`);
  }
  // No daemon: the client runs the standalone program next to it in the installed package.
  const r = await delivers(qq);
  assert.match(r.stderr, /running the standalone program/);
  assert.match(r.stderr, /^nqqueue: .*result=accept .*via=fallback/m);
});

test('installed without a C compiler: a loud line, no nqqueue-qq, the standalone nqqueue works', async () => {
  // A PATH with node and sh and nothing else: no cc, no gcc.
  const path = join(work, 'no-cc-bin');
  mkdirSync(path);
  symlinkSync(process.execPath, join(path, 'node'));
  symlinkSync('/bin/sh', join(path, 'sh'));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path };
  delete env.CC;
  const p = join(work, 'no-cc-prefix');
  const r = tools.install(tarball, p, { env });
  assert.ok(r.ok, r.output);
  assert.match(r.output, /build-qq: WARNING: no C compiler \('cc' not found\): bin\/nqqueue-qq \(daemon mode\) is NOT built\./);
  assert.match(r.output, /the standalone bin\/nqqueue works; install gcc \(or set CC\) and install nqqueue again for daemon mode/);
  assert.ok(existsSync(join(p, 'bin', 'nqqueue')));
  assert.ok(!existsSync(join(p, 'bin', 'nqqueue-qq')), 'no nqqueue-qq without a compiler');
  await delivers(join(p, 'bin', 'nqqueue'));
});

test('installed where musl-gcc cannot build the client: the build says so and links it against glibc, still a static PIE', async () => {
  // A musl-gcc that answers --version and names its start files (-###) as the real one does, then fails
  // every build; first on the PATH.
  const path = join(work, 'broken-musl-bin');
  mkdirSync(path);
  const script = [
    '#!/bin/sh',
    '[ "$1" = --version ] && exit 0',
    '[ "$1" = "-###" ] && { echo " /usr/lib/musl/lib/Scrt1.o /usr/lib/gcc/crtbeginS.o x.o /usr/lib/gcc/crtendS.o" >&2; exit 0; }',
    'echo "musl-gcc: broken on purpose" >&2',
    'exit 1',
    '',
  ].join('\n');
  writeFileSync(join(path, 'musl-gcc'), script, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${path}:${process.env.PATH ?? ''}` };
  delete env.CC;
  const p = join(work, 'broken-musl-prefix');
  const r = tools.install(tarball, p, { env });
  assert.ok(r.ok, r.output);
  assert.match(r.output, /build-qq: musl-gcc could not make a static client \(musl-gcc: broken on purpose\); using cc/);
  assert.match(r.output, /bin\/nqqueue-qq \(daemon mode\) compiled with cc, static/);
  const qq = join(p, 'bin', 'nqqueue-qq');
  assert.deepEqual(elf(qq), { type: 3, interpreter: false });
  assert.ok(readFileSync(qq).includes('glibc'), 'linked against glibc');
  await delivers(qq);
});

test('installed with no Node.js 22.13 or newer to record: a loud line, and NQQUEUE_NODE makes nqqueue run', async () => {
  // NQQUEUE_NODE at install names the node to record; one that is too old is not replaced by another.
  const old = join(work, 'old-node');
  writeFileSync(old, '#!/bin/sh\necho v20.19.0\n', { mode: 0o755 });
  const p = join(work, 'old-node-prefix');
  const r = tools.install(tarball, p, { env: { ...process.env, NQQUEUE_NODE: old } });
  assert.ok(r.ok, r.output);
  assert.match(r.output, /nqqueue install: WARNING: no Node\.js 22\.13 or newer found \(NQQUEUE_NODE .*old-node: v20\.19\.0\): nqqueue will not start as installed\./);
  assert.match(r.output, /set NQQUEUE_NODE=\/path\/to\/node \(22\.13 or newer\) where nqqueue runs/);
  const pkgDir = join(p, 'lib', 'node_modules', 'nqqueue');
  assert.ok(!existsSync(join(pkgDir, 'dist', 'node-path')), 'nothing recorded');
  const v = spawnSync(join(p, 'bin', 'nqqueue'), ['--version'], { env: { NQQUEUE_NODE: process.execPath }, encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /^nqqueue \d/);
});

test('a node that qmail-smtpd\'s user could not run is not recorded: a relative NQQUEUE_NODE, one in a private directory', () => {
  const hidden = join(work, 'private');
  mkdirSync(hidden, { mode: 0o700 });
  chmodSync(hidden, 0o700);
  symlinkSync(process.execPath, join(hidden, 'node'));
  for (const [node, why] of [
    ['node', /NQQUEUE_NODE node: not an absolute path/],
    [join(hidden, 'node'), /NQQUEUE_NODE \S+private\/node: \S+private cannot be entered by other users/],
  ] as const) {
    const p = join(work, `unusable-${node.length}-prefix`);
    const r = tools.install(tarball, p, { env: { ...process.env, NQQUEUE_NODE: node } });
    assert.ok(r.ok, r.output);
    assert.match(r.output, why);
    assert.match(r.output, /nqqueue will not start as installed/);
    assert.ok(!existsSync(join(p, 'lib', 'node_modules', 'nqqueue', 'dist', 'node-path')), `${node}: nothing recorded`);
  }
});
