// NQqueue runs on Node.js 22.13 and newer. The launcher refuses an older node (71 and one log line, never
// the crash qmail reports as "qq crashed" with nothing logged); the build records a supported node,
// fetching one from the npm registry into the checkout when the one running the build is older; the
// suites run on the node the build recorded.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { REPO, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function older(version: string): boolean {
  const [a, b] = version.replace(/^v/, '').split('.').map(Number) as [number, number];
  return a < 22 || (a === 22 && b < 13);
}

/** A stand-in for node that answers --version with `version` and otherwise notes that it was run. */
function fakeNode(s: Setup, version: string): { path: string; ran: string } {
  const ran = join(s.dir, `ran-${version}`);
  const path = s.script(`node-${version}`, `#!/bin/sh\nif [ "$1" = --version ]; then echo v${version}; exit 0; fi\necho "$@" > ${ran}\nexit 0\n`);
  return { path, ran };
}

test('the launcher refuses a node older than 22.13: 71, the log line says why, it is not run', async () => {
  const s = make();
  for (const v of ['20.20.2', '22.12.0', '18.20.8']) {
    const f = fakeNode(s, v);
    const r = await s.run({ bin: NQQUEUE_BIN, extraEnv: { NQQUEUE_NODE: f.path } });
    assert.equal(r.code, 71, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`^nqqueue: result=defer code=NQQ_ERR_RUNTIME reason="Node\\.js v${esc(v)} \\(${esc(f.path)}\\) is older than 22\\.13, which NQqueue needs; see the README, Install: npm run build again in a checkout \\(it fetches a supported Node\\.js when the system's is older\\), or install the package again with a supported Node\\.js, or set NQQUEUE_NODE" exit=71$`, 'm'),
    );
    assert.equal(existsSync(f.ran), false, `${v} must not be run`);
    assert.deepEqual(r.deliveries, []);
  }
  // A node that does not say its version is not run either.
  const mute = s.script('node-mute', '#!/bin/sh\nexit 1\n');
  const r = await s.run({ bin: NQQUEUE_BIN, extraEnv: { NQQUEUE_NODE: mute } });
  assert.equal(r.code, 71, r.stderr);
  assert.match(r.stderr, /reason="Node\.js \(.*node-mute\) does not answer --version; /);
});

test('the launcher runs a node of 22.13 or newer that is not the recorded one', async () => {
  const s = make();
  for (const v of ['22.13.0', '24.0.0']) {
    const f = fakeNode(s, v);
    const r = await s.run({ bin: NQQUEUE_BIN, extraEnv: { NQQUEUE_NODE: f.path } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(f.ran, 'utf8'), /dist\/cli\/main\.js/);
  }
});

// The recorded node gone (a checkout whose fetched node was removed): the launcher falls back to
// /usr/bin/node, which on this kind of machine is older than 22.13.
const systemNode = spawnSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
test('the fallback /usr/bin/node when it is older than 22.13: 71 naming it', { skip: systemNode === '' || !older(systemNode) ? `/usr/bin/node is ${systemNode || 'missing'}` : false }, async () => {
  const s = make();
  const tree = join(s.dir, 'install');
  mkdirSync(join(tree, 'bin'), { recursive: true });
  mkdirSync(join(tree, 'dist', 'cli'), { recursive: true });
  copyFileSync(NQQUEUE_BIN, join(tree, 'bin', 'nqqueue'));
  chmodSync(join(tree, 'bin', 'nqqueue'), 0o755);
  const ran = join(s.dir, 'main-ran');
  writeFileSync(join(tree, 'dist', 'cli', 'main.js'), `require('node:fs').writeFileSync(${JSON.stringify(ran)}, 'x');\n`);
  writeFileSync(join(tree, 'dist', 'node-path'), join(s.dir, 'gone', 'node') + '\n');
  writeFileSync(join(tree, 'dist', 'node-version'), `${join(s.dir, 'gone', 'node')} v22.23.5\n`);
  const r = await s.run({ bin: join(tree, 'bin', 'nqqueue') });
  assert.equal(r.code, 71, r.stderr);
  assert.match(r.stderr, new RegExp(`reason="Node\\.js ${esc(systemNode)} \\(/usr/bin/node\\) is older than 22\\.13, which NQqueue needs; `));
  assert.equal(existsSync(ran), false);
  assert.deepEqual(r.deliveries, []);
});

test('the suite runs on the node the build recorded, 22.13 or newer (the NQQ_NODE line when set)', () => {
  assert.equal(readFileSync(join(REPO, 'dist', 'node-path'), 'utf8'), `${process.execPath}\n`);
  assert.equal(readFileSync(join(REPO, 'dist', 'node-version'), 'utf8'), `${process.execPath} ${process.version}\n`);
  assert.equal(older(process.version), false, process.version);
  const line = process.env.NQQ_NODE?.trim();
  if (line) assert.ok(`${process.versions.node}.`.startsWith(`${line}.`), `NQQ_NODE=${line}, running ${process.version}`);
});

// scripts/after-build.js in a copy of the layout it works on, with a stand-in npm (npm_execpath) that
// "installs" a platform package whose node answers --version: what is fetched, when, and what is said.
const FAKE_NPM = `
const { appendFileSync, mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const args = process.argv.slice(2);
appendFileSync(process.env.FAKE_NPM_LOG, JSON.stringify(args) + '\\n');
if (process.env.FAKE_NPM_FAIL) { process.stderr.write('npm error 404 Not Found\\n'); process.exit(1); }
const prefix = args[args.indexOf('--prefix') + 1];
const [pkg, spec] = args[args.length - 1].split('@');
const bin = join(prefix, 'node_modules', pkg, 'bin');
mkdirSync(bin, { recursive: true });
writeFileSync(join(bin, 'node'), '#!/bin/sh\\necho v' + spec + '.99.0\\n', { mode: 0o755 });
`;

function buildTree(s: Setup): { tree: string; log: string; run(node: string, env?: Record<string, string>): { code: number | null; stderr: string; calls: string[][] } } {
  const tree = join(s.dir, 'checkout');
  mkdirSync(join(tree, 'scripts'), { recursive: true });
  mkdirSync(join(tree, 'dist'));
  mkdirSync(join(tree, 'bin'));
  copyFileSync(join(REPO, 'scripts', 'after-build.js'), join(tree, 'scripts', 'after-build.js'));
  writeFileSync(join(tree, 'bin', 'nqqueue'), '');
  writeFileSync(join(tree, 'package.json'), '{"type":"module"}\n');
  const npm = join(s.dir, 'fake-npm.cjs');
  writeFileSync(npm, FAKE_NPM);
  const log = join(s.dir, 'npm-calls');
  writeFileSync(log, '');
  return {
    tree,
    log,
    run(node, env = {}) {
      const r = spawnSync(node, [join(tree, 'scripts', 'after-build.js')], {
        env: { PATH: '/usr/bin:/bin', npm_execpath: npm, FAKE_NPM_LOG: log, ...env },
        encoding: 'utf8',
        timeout: 60_000,
      });
      const calls = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]);
      return { code: r.status, stderr: r.stderr, calls };
    },
  };
}

test('the build on Node.js 22.13+: records that node, fetches nothing (NQQ_NODE of its own line too)', () => {
  const s = make();
  const b = buildTree(s);
  for (const env of [{} as Record<string, string>, { NQQ_NODE: process.versions.node.split('.')[0]! }, { NQQ_NODE: process.versions.node }]) {
    const r = b.run(process.execPath, env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(r.calls, []);
    assert.equal(existsSync(join(b.tree, '.runtime')), false);
    assert.equal(readFileSync(join(b.tree, 'dist', 'node-path'), 'utf8'), `${process.execPath}\n`);
    assert.equal(readFileSync(join(b.tree, 'dist', 'node-version'), 'utf8'), `${process.execPath} ${process.version}\n`);
  }
  const bad = b.run(process.execPath, { NQQ_NODE: '20' });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'nqqueue build: NQQ_NODE=20: NQqueue needs Node.js 22.13 or newer\n');
  assert.equal(b.run(process.execPath, { NQQ_NODE: '22.12.0' }).code, 1);
  assert.equal(b.run(process.execPath, { NQQ_NODE: 'latest' }).code, 1);
});

test('NQQ_NODE naming another line: that line is fetched once into .runtime and recorded', () => {
  const s = make();
  const b = buildTree(s);
  const other = process.versions.node.startsWith('24.') ? '22' : '24';
  const pkg = `node-${process.platform}-${process.arch}`;
  const bin = join(b.tree, '.runtime', `node-${other}`, 'node_modules', pkg, 'bin', 'node');
  const first = b.run(process.execPath, { NQQ_NODE: other });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, new RegExp(`^nqqueue build: NQQ_NODE=${other} \\(this build runs on ${esc(process.version)}\\): fetching ${pkg}@${other} from the npm registry into \\.runtime/node-${other} \\.\\.\\. Node\\.js v${other}\\.99\\.0 in [\\d.]+ s; bin/nqqueue runs on it \\(dist/node-path\\)\\n$`));
  assert.equal(first.calls.length, 1);
  assert.ok(first.calls[0]!.includes('--ignore-scripts') && first.calls[0]!.includes('--no-save'), JSON.stringify(first.calls[0]));
  assert.equal(first.calls[0]!.at(-1), `${pkg}@${other}`);
  assert.equal(readFileSync(join(b.tree, 'dist', 'node-path'), 'utf8'), `${bin}\n`);
  assert.equal(readFileSync(join(b.tree, 'dist', 'node-version'), 'utf8'), `${bin} v${other}.99.0\n`);
  // Built again: the fetched node is used, nothing is fetched, and it says so once.
  const again = b.run(process.execPath, { NQQ_NODE: other });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.calls.length, 1);
  assert.match(again.stderr, /^nqqueue build: [^\n]*: using Node\.js v\d+\.99\.0 in \.runtime\/node-\d+ \(fetched earlier\); [^\n]*\n$/);
  // Back on this node's own line: that one is recorded.
  assert.equal(b.run(process.execPath).code, 0);
  assert.equal(readFileSync(join(b.tree, 'dist', 'node-path'), 'utf8'), `${process.execPath}\n`);
});

test('a fetch that fails stops the build with the reason', () => {
  const s = make();
  const b = buildTree(s);
  const r = b.run(process.execPath, { NQQ_NODE: process.versions.node.startsWith('24.') ? '22' : '24', FAKE_NPM_FAIL: '1' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\.\.\. failed\nnqqueue build: could not fetch node-[\w-]+@\d+ \(npm error 404 Not Found\); install Node\.js 22\.13 or newer and build with it\n$/);
});

test('the build on a node older than 22.13 fetches the 22 line and records it, saying so once', { skip: systemNode === '' || !older(systemNode) ? `/usr/bin/node is ${systemNode || 'missing'}` : false }, () => {
  const s = make();
  const b = buildTree(s);
  const r = b.run('/usr/bin/node');
  assert.equal(r.code, 0, r.stderr);
  const pkg = `node-${process.platform}-${process.arch}`;
  assert.match(r.stderr, new RegExp(`^nqqueue build: this Node\\.js \\(${esc(systemNode)}\\) is older than 22\\.13, which NQqueue needs: fetching ${pkg}@22 from the npm registry into \\.runtime/node-22 \\.\\.\\. Node\\.js v22\\.99\\.0 in [\\d.]+ s; bin/nqqueue runs on it \\(dist/node-path\\)\\n$`));
  assert.equal(r.calls.length, 1);
  const bin = join(b.tree, '.runtime', 'node-22', 'node_modules', pkg, 'bin', 'node');
  assert.equal(readFileSync(join(b.tree, 'dist', 'node-path'), 'utf8'), `${bin}\n`);
  assert.equal(readFileSync(join(b.tree, 'dist', 'node-version'), 'utf8'), `${bin} v22.99.0\n`);
});
