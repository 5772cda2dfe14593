// The start row of `npm run bench` (section `startup`): what three ways of starting the standalone
// program faster would save on node's start plus loading queue mode's modules, side by side in one run:
//
//   - node's compile cache (NODE_COMPILE_CACHE, module.enableCompileCache(); Node 22.1+), warmed first;
//   - one file for the whole queue path instead of ~50 modules: a CommonJS bundle made here by a tiny
//     concatenating bundler over tsc's CommonJS output (every module a function, run on first require,
//     so the built-in plugins are in it but cost nothing until a routing line names one); with and
//     without the compile cache;
//   - a V8 start-up snapshot of that bundle (node --build-snapshot; a snapshot takes a script, not ESM):
//     every module already evaluated in the heap node starts from.
//
// Each is a process that loads dist/cli/queue-mode.js and what it imports (or the same code in the
// bundle or the snapshot) and exits, with the launcher's flag, measured against an empty script (node's
// own start) in the same rounds: wall time from spawn to exit, and the CPU time of the child (user + sys,
// from this process's cutime/cstime: less disturbed by other load on the machine than wall time).
// ADOPTED names the option that bin/nqqueue uses, if any; the target is that it saves a third.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The option bin/nqqueue uses (a key of OPTIONS), or undefined: none saves a third (see bench/README.md). */
export const ADOPTED = undefined;
export const START_TARGET = 1 / 3;

export const OPTIONS = {
  empty: 'node start alone (an empty script)',
  esm: 'queue mode as built (ESM, one file a module)',
  esmCache: '+ compile cache',
  bundle: 'one CommonJS bundle',
  bundleCache: 'bundle + compile cache',
  snapshot: 'V8 snapshot of the bundle',
};

const ENTRY = 'cli/queue-mode.js';
let built;

/**
 * tsc's CommonJS output of src/ (into work/start-cjs), then every module reachable from queue mode by a
 * relative require (static or dynamic) wrapped in a function in one file. `import.meta.url` (not valid
 * in CommonJS) becomes the URL of the module's file in dist/, so what it resolves is what dist/ has.
 * Modules outside the bundle (node's own; packages, which queue mode only loads lazily) are required
 * from dist/ by node itself.
 */
function bundle(root, work) {
  if (built) return built;
  const out = join(work, 'start-cjs');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  // The type errors of CommonJS (files the queue path does not reach) do not stop the output.
  spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--module', 'commonjs', '--moduleResolution', 'node10', '--outDir', out, '--declaration', 'false', '--noEmitOnError', 'false'], { encoding: 'utf8' });
  if (!existsSync(join(out, ENTRY))) throw new Error('tsc gave no CommonJS output');
  const dist = join(root, 'dist');
  const modules = new Map();
  const walk = (id) => {
    if (modules.has(id)) return;
    let text = readFileSync(join(out, id), 'utf8');
    text = text.replace(/import\.meta\.url/g, JSON.stringify(pathToFileURL(join(dist, id)).href));
    modules.set(id, text);
    for (const m of text.matchAll(/require\((["'])(\.{1,2}\/[^"']+)\1\)/g)) walk(posix.join(posix.dirname(id), m[2]));
  };
  walk(ENTRY);
  const body = [...modules].map(([id, text]) => `${JSON.stringify(id)}: function (exports, require, module, __filename, __dirname) {\n${text}\n},`).join('\n');
  const runtime = `'use strict';
const nqqDist = ${JSON.stringify(dist)};
const nqqModules = {
${body}
};
const nqqCache = {};
let nqqOutside;
function nqqRequireFrom(from) {
  return (spec) => {
    if (spec.startsWith('.')) return nqqRequire(require('node:path').posix.join(require('node:path').posix.dirname(from), spec));
    if (spec.startsWith('node:')) return require(spec);
    nqqOutside ??= require('node:module').createRequire(nqqDist + '/' + from);
    return nqqOutside(spec);
  };
}
function nqqRequire(id) {
  if (nqqCache[id]) return nqqCache[id].exports;
  const module = (nqqCache[id] = { exports: {} });
  const file = nqqDist + '/' + id;
  nqqModules[id].call(module.exports, module.exports, nqqRequireFrom(id), module, file, require('node:path').dirname(file));
  return module.exports;
}
`;
  const dir = join(work, 'start');
  mkdirSync(dir, { recursive: true });
  const cjs = join(dir, 'queue.bundle.cjs');
  writeFileSync(cjs, `${runtime}module.exports = nqqRequire(${JSON.stringify(ENTRY)});\n`);
  const snap = join(dir, 'queue.snapshot-entry.cjs');
  writeFileSync(snap, `${runtime}nqqRequire(${JSON.stringify(ENTRY)});\nrequire('node:v8').startupSnapshot.setDeserializeMainFunction(() => {});\n`);
  built = { dir, cjs, snap, modules: modules.size, bytes: readFileSync(cjs).length };
  return built;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined;
}

/** CPU time (ms) of the children this process has waited for, from /proc/self/stat (clock ticks of 10 ms). */
function childrenCpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/**
 * One node's row. `h`: { node, root, work, rounds, progress }. Returns { node, modules, bytes,
 * options: { KEY: { wallMs, cpuMs } }, savings: { KEY: fraction of the ESM start saved } }.
 */
export function startOptionsRow(h) {
  const b = bundle(h.root, h.work);
  const d = join(b.dir, h.node.key);
  mkdirSync(d, { recursive: true });
  const empty = join(d, 'empty.mjs');
  writeFileSync(empty, '');
  const esm = join(d, 'probe.mjs');
  writeFileSync(esm, `await import(${JSON.stringify(pathToFileURL(join(h.root, 'dist', ENTRY)).href)});\n`);
  const cjs = join(d, 'probe.cjs');
  writeFileSync(cjs, `require(${JSON.stringify(b.cjs)});\n`);
  const blob = join(d, 'queue.blob');
  const r = spawnSync(h.node.bin, ['--snapshot-blob', blob, '--build-snapshot', b.snap], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node --build-snapshot: ${r.stderr.trim().slice(-500)}`);
  const flag = '--max-semi-space-size=1';
  const runs = {
    empty: [[flag, empty], {}],
    esm: [[flag, esm], {}],
    esmCache: [[flag, esm], { NODE_COMPILE_CACHE: join(d, 'cache-esm') }],
    bundle: [[flag, cjs], {}],
    bundleCache: [[flag, cjs], { NODE_COMPILE_CACHE: join(d, 'cache-bundle') }],
    snapshot: [[flag, '--snapshot-blob', blob], {}],
  };
  const wall = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(runs).map((k) => [k, 0]));
  const warm = 2;
  for (let i = 0; i < warm + h.rounds; i++) {
    for (const [k, [args, env]] of Object.entries(runs)) {
      const c0 = childrenCpuMs();
      const t = performance.now();
      const p = spawnSync(h.node.bin, args, { env, encoding: 'utf8' });
      const ms = performance.now() - t;
      if (p.status !== 0) throw new Error(`${OPTIONS[k]}: exit ${p.status ?? p.signal}: ${p.stderr.trim().slice(0, 300)}`);
      if (i < warm) continue;
      wall[k].push(ms);
      cpu[k] += childrenCpuMs() - c0;
    }
  }
  const r1 = (x) => Math.round(x * 10) / 10;
  const options = Object.fromEntries(Object.keys(runs).map((k) => [k, { wallMs: r1(median(wall[k])), cpuMs: r1(cpu[k] / h.rounds) }]));
  const savings = {};
  for (const k of ['esmCache', 'bundle', 'bundleCache', 'snapshot']) {
    savings[k] = {
      wall: Math.round(((options.esm.wallMs - options[k].wallMs) / options.esm.wallMs) * 1000) / 1000,
      cpu: Math.round(((options.esm.cpuMs - options[k].cpuMs) / options.esm.cpuMs) * 1000) / 1000,
    };
  }
  return { node: h.node.key, rounds: h.rounds, modules: b.modules, bytes: b.bytes, options, savings };
}

/** The best option of a row by its wall-time saving, and whether the adopted one saves a third. */
export function startJudge(row) {
  const pct = (x) => `${Math.round(x * 100)}%`;
  const figures = Object.entries(row.savings).map(([k, s]) => `${OPTIONS[k]} saves ${pct(s.wall)} wall / ${pct(s.cpu)} CPU`);
  const base = `of ${row.options.esm.wallMs} ms wall / ${row.options.esm.cpuMs} ms CPU (node start alone ${row.options.empty.wallMs} / ${row.options.empty.cpuMs})`;
  if (ADOPTED === undefined) return { met: false, figure: `adopted: none; ${figures.join(', ')} ${base}` };
  const s = row.savings[ADOPTED];
  return { met: s.wall >= START_TARGET && s.cpu >= START_TARGET, figure: `adopted: ${OPTIONS[ADOPTED]}; ${figures.join(', ')} ${base}` };
}

/** The table: per node, wall and CPU medians of each option, with what it saves on the ESM start. */
export function startTable(rows, label, fmt) {
  if (!rows.length) return [];
  const keys = Object.keys(OPTIONS);
  const L = ['', 'Starting the standalone program: node start plus loading queue mode, each option side by side (ms; in brackets what it saves of the ESM start):', ''];
  L.push(`| | ${keys.map((k) => OPTIONS[k]).join(' | ')} |`);
  L.push(`|---|${keys.map(() => '---:').join('|')}|`);
  for (const r of rows) {
    for (const [what, m] of [['wall, median', 'wallMs'], ['CPU, mean', 'cpuMs']]) {
      const cells = keys.map((k) => {
        const s = r.savings[k];
        return `${fmt(r.options[k][m])}${s ? ` (${Math.round((m === 'wallMs' ? s.wall : s.cpu) * 100)}%)` : ''}`;
      });
      L.push(`| ${label(r.node)} ${what} | ${cells.join(' | ')} |`);
    }
  }
  L.push('', `The bundle: ${rows[0].modules} modules, ${Math.round(rows[0].bytes / 1024)} KB (the built-in plugins included, run only when named). ${rows[0].rounds} rounds.`);
  return L;
}
