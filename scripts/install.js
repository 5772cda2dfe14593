#!/usr/bin/env node
// The package's install step (preinstall, so that npm links bin/nqqueue-qq once it is there):
//   - records the node bin/nqqueue runs on (dist/node-path, dist/node-version), as the build does in a
//     checkout: $NQQUEUE_NODE, else the node that runs npm, else the one running this script (node on
//     PATH), the first that is Node.js 22.13 or newer and that qmail-smtpd's user can run (an absolute
//     path, open to others all the way down); an NQQUEUE_NODE that is not is not replaced by another.
//     With none, it says loudly what to do;
//   - compiles bin/nqqueue-qq (daemon mode) from the C source in the package (scripts/build-qq.js
//     --install). Without a C compiler it says so loudly; the standalone bin/nqqueue works without it.
// In a checkout (npm ci) it does nothing: there the build (npm run build) does both.
//
// npm shows an install script's output only with --foreground-scripts, so each warning also goes to the
// terminal (/dev/tty) when there is one and stderr is not it.
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, realpathSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOR = [22, 13];

// tsconfig.json is in the repository, not in the package.
if (existsSync(join(root, 'tsconfig.json'))) process.exit(0);

function say(line) {
  process.stderr.write(`${line}\n`);
}

function loud(lines) {
  const text = lines.map((l) => `nqqueue install: ${l}\n`).join('');
  process.stderr.write(text);
  if (process.stderr.isTTY) return;
  try {
    const tty = openSync('/dev/tty', 'w');
    writeSync(tty, text);
    closeSync(tty);
  } catch {
    // No terminal (CI, a script): stderr is all there is.
  }
}

function versionOf(node) {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function fits(version) {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number);
  return major > FLOOR[0] || (major === FLOOR[0] && minor >= FLOOR[1]);
}

// The node, in order of preference. $NQQUEUE_NODE set at install is what the administrator asked for.
const candidates = [
  ['NQQUEUE_NODE', process.env.NQQUEUE_NODE],
  ['the node running npm', process.env.npm_node_execpath],
  ['node on PATH', process.execPath],
].filter(([, path], i, all) => path && all.findIndex(([, p]) => p === path) === i);

/**
 * Why qmail-smtpd's user could not run `node` (the install runs as root, the mail as qmaild): not an
 * absolute path (bin/nqqueue runs from qmail's working directory), or the file or a directory above it
 * not open to others (a node under /root or a 0700 home, as nvm's is). undefined when it can.
 */
function unusable(node) {
  if (!isAbsolute(node)) return 'not an absolute path';
  let real;
  try {
    real = realpathSync(node);
  } catch (err) {
    return `cannot be read (${err.code ?? err.message})`;
  }
  if ((statSync(real).mode & 0o001) === 0) return `${real} cannot be run by other users`;
  // The directories on the way to it as named (a link in a private directory) and to the file itself.
  for (const start of [node, real]) {
    for (let dir = dirname(start); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return `${dir} cannot be entered by other users (so qmail-smtpd's user cannot run ${node})`;
      if (dir === '/') break;
    }
  }
  return undefined;
}

const seen = [];
let chosen;
for (const [what, node] of candidates) {
  const why = unusable(node);
  if (why) {
    seen.push(`${what} ${node}: ${why}`);
    if (what === 'NQQUEUE_NODE') break;
    continue;
  }
  const version = versionOf(node);
  seen.push(`${what} ${node}: ${version ?? 'does not answer --version'}`);
  if (version && fits(version)) {
    chosen = { node, version };
    break;
  }
  // An explicit NQQUEUE_NODE that does not fit is not silently replaced by another node.
  if (what === 'NQQUEUE_NODE') break;
}

const nodePath = join(root, 'dist', 'node-path');
const nodeVersion = join(root, 'dist', 'node-version');
if (chosen) {
  // 0644 whatever the umask: bin/nqqueue reads them as qmail-smtpd's user.
  for (const [file, text] of [[nodePath, `${chosen.node}\n`], [nodeVersion, `${chosen.node} ${chosen.version}\n`]]) {
    writeFileSync(file, text);
    chmodSync(file, 0o644);
  }
  say(`nqqueue install: bin/nqqueue runs on Node.js ${chosen.version} (${chosen.node})`);
} else {
  rmSync(nodePath, { force: true });
  rmSync(nodeVersion, { force: true });
  loud([
    `WARNING: no Node.js 22.13 or newer found (${seen.join('; ')}): nqqueue will not start as installed.`,
    'install Node.js 22.13 or newer and install nqqueue again with it (its npm, or that node first on PATH),',
    'or set NQQUEUE_NODE=/path/to/node (22.13 or newer) where nqqueue runs (the qmail-smtpd run script) or for this install.',
  ]);
}

const qq = spawnSync(process.execPath, [join(root, 'scripts', 'build-qq.js'), '--install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const out = `${qq.stdout ?? ''}${qq.stderr ?? ''}`.trim();
if (qq.status === 0 && existsSync(join(root, 'bin', 'nqqueue-qq'))) {
  say(`nqqueue install: ${out || 'bin/nqqueue-qq (daemon mode) compiled'}`);
} else {
  loud((out || `scripts/build-qq.js --install: exit ${qq.status ?? qq.signal}`).split('\n'));
}
