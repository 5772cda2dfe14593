#!/usr/bin/env node
// The manual pages: the prose of man/*.in (roff) with the reference parts filled in from what the
// compiled code declares — the settings keys, the service sections, the keys every plugin takes, each
// built-in plugin's keys and bare words, each command's usage — so a key cannot be added or renamed
// without the pages following. Run by `npm run build` after tsc; writes dist/man/ (`--out DIR`: there).
//
// A template line `@@NAME ARG@@` is replaced by a generated block; `@VERSION@` anywhere by the version.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = outIndex >= 0 && args[outIndex + 1] ? resolve(args[outIndex + 1]) : join(dist, 'man');

// The compiled modules run on the node the build recorded (a system node may be too old for them).
const recorded = existsSync(join(dist, 'node-path')) ? readFileSync(join(dist, 'node-path'), 'utf8').trim() : process.execPath;
if (recorded !== process.execPath) {
  const again = spawnSync(recorded, [fileURLToPath(import.meta.url), ...args], { stdio: 'inherit' });
  if (again.error) process.stderr.write(`man: cannot run ${recorded} (dist/node-path): ${again.error.message}\n`);
  process.exit(again.status ?? 1);
}

const load = (rel) => import(pathToFileURL(join(dist, rel)).href);
const { GLOBAL_KEYS, COMMON_PLUGIN_KEYS } = await load('config/settings.js');
const { SERVICE_SECTIONS } = await load('config/service-sections.js');
const { BUILTINS } = await load('plugin-api/load.js');
const { VERSION } = await load('version.js');

const commandNames = readdirSync(join(dist, 'cli', 'commands'))
  .filter((f) => f.endsWith('.js'))
  .map((f) => basename(f, '.js'));
const usages = new Map();
for (const name of commandNames) usages.set(name, (await load(`cli/commands/${name}.js`)).USAGE);
const plugins = [];
for (const name of Object.keys(BUILTINS)) plugins.push((await BUILTINS[name]()).default);

// ---- roff ----

/** Text for a roff text line: backslashes escaped, `code` in bold, options with \- (typed hyphens). */
function text(s) {
  let t = String(s).replace(/\\/g, '\\e');
  t = t.replace(/`([^`]+)`/g, (_, code) => `\\fB${code.replace(/-/g, '\\-')}\\fR`);
  t = t.replace(/(^|[\s(\[|"])(--?[A-Za-z][A-Za-z0-9-]*)/g, (_, pre, opt) => pre + opt.replace(/-/g, '\\-'));
  return t;
}

/** One text line: never taken for a request (a leading dot or quote), never a break (leading space). */
function line(s) {
  const t = s.trim();
  return /^[.']/.test(t) ? `\\&${t}` : t;
}

/** A sentence: the text with a final full stop. */
function sentence(s) {
  const t = String(s).trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** A synopsis or term: options and literal words in bold, METAVARIABLES in italics, brackets plain. */
function synopsis(s) {
  return s
    .replace(/--?[A-Za-z][A-Za-z0-9-]*|[A-Z][A-Z0-9_]*(?:=[A-Z][A-Z0-9_]*)?|[a-z][a-z0-9_.-]*|\\/g, (w) =>
      w === '\\' ? '\\e' : /^[A-Z]/.test(w) ? `\\fI${w}\\fR` : `\\fB${w.replace(/-/g, '\\-')}\\fR`,
    );
}

/** One synopsis line of `.nf` text; one that goes on from the line above is indented (unpaddable spaces). */
function synopsisLine(s) {
  return /^\s/.test(s) ? `\\ \\ \\ \\ ${line(synopsis(s.trim()))}` : line(synopsis(s));
}

/** A reference entry: `.TP`, the name in bold, its meaning, then its default and whether it repeats. */
function entry(name, doc, { def, list } = {}) {
  if (typeof doc !== 'string' || doc.trim() === '') throw new Error(`man: ${name} has no documentation`);
  const lines = ['.TP', `.B ${name}`, line(text(sentence(doc)))];
  // A literal value in bold; a default described in words (or none) as text. An empty default the
  // meaning already describes ("default: control/me") is not contradicted with "none".
  if (def === '' && !/\bdefault\b/i.test(doc)) lines.push('Default: none.');
  else if (def !== undefined && def !== '') lines.push(line(`Default: ${/\s/.test(def) ? text(def) : `\\fB${text(def).replace(/-/g, '\\-')}\\fR`}.`));
  if (list) lines.push('Repeatable.');
  return lines;
}

// ---- the generated blocks ----

function globalKeys() {
  return Object.entries(GLOBAL_KEYS).flatMap(([key, spec]) => entry(key, spec.doc, { def: spec.default, list: spec.list }));
}

function serviceSection(name) {
  const keys = SERVICE_SECTIONS[name];
  if (!keys) throw new Error(`man: no service section [${name}]`);
  return Object.entries(keys).flatMap(([key, spec]) => entry(key, spec.doc, { def: spec.default }));
}

function commonPluginKeys() {
  return Object.entries(COMMON_PLUGIN_KEYS).flatMap(([key, spec]) => entry(key, spec.doc, { def: spec.default }));
}

function size(n) {
  for (const [unit, m] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]]) if (n % m === 0) return `${n / m}${unit}`;
  return String(n);
}

function stagesText(stages) {
  return stages.length === 2 ? 'general and per-user' : stages[0];
}

function plugin(def) {
  if (!def.description) throw new Error(`man: built-in plugin ${def.name} has no description`);
  const lines = [`.SS ${def.name}`, line(text(sentence(def.description))), '.PP', line(`Stage: ${stagesText(def.stages)}.`)];
  // What the host enforces, said from the declaration: only a plugin that says so can be skipped.
  lines.push(def.skippable === true ? 'An allow list entry may skip it for a recipient (a spam check).' : 'An allow list entry never skips it.');
  const own = [];
  if (def.defaults?.timeoutMs !== undefined) own.push(`timeout ${def.defaults.timeoutMs / 1000}s`);
  if (def.defaults?.onerror !== undefined) own.push(`onerror ${def.defaults.onerror}`);
  if (def.defaults?.maxsize !== undefined) own.push(`maxsize ${size(def.defaults.maxsize)}`);
  if (own.length > 0) lines.push(line(`Its own defaults of the common keys: ${own.join(', ')}.`));
  const keys = Object.entries(def.params?.keys ?? {});
  lines.push('.PP');
  if (keys.length === 0) lines.push('Keys: none besides timeout, onerror and maxsize.');
  else {
    lines.push('Keys:');
    for (const [key, spec] of keys) lines.push(...entry(key, spec.doc ?? missing(def, key), { def: spec.default, list: spec.list }));
  }
  lines.push('.PP');
  const words = def.params?.words;
  const wordsDoc = def.params?.wordsDoc;
  if (words === undefined) lines.push('Bare words: none.');
  else if (Array.isArray(words)) {
    lines.push('Bare words:');
    for (const w of words) lines.push(...entry(w, typeof wordsDoc === 'object' ? wordsDoc[w] : missing(def, `word ${w}`)));
  } else {
    if (typeof wordsDoc !== 'string' || wordsDoc.trim() === '') missing(def, 'its bare words');
    lines.push(line(`Bare words: ${text(sentence(wordsDoc))}`));
  }
  return lines;
}

function missing(def, what) {
  throw new Error(`man: built-in plugin ${def.name}: ${what} has no documentation`);
}

/**
 * A command's usage text as roff: the synopsis lines, the prose as paragraphs, each `TERM  meaning`
 * line (an option, an operand, a subcommand) as a tagged paragraph, indented once more where the usage
 * indents it. `-h, --help` is left out: every command takes it (the page says so once).
 */
function command(name) {
  const usage = usages.get(name);
  if (usage === undefined) throw new Error(`man: no command ${name} (dist/cli/commands/${name}.js)`);
  placed.add(name);
  const rows = usage.replace(/\n+$/, '').split('\n');
  const syn = synopsisLines(name, rows);
  const items = [];
  for (const row of rows) {
    const indent = /^ */.exec(row)[0].length;
    const last = items.at(-1);
    if (last?.kind === 'term' && indent >= last.col) {
      last.desc += ` ${row.trim()}`;
      continue;
    }
    const m = /^( +)(\S(?:\S| (?! ))*?) {2,}(\S.*)$/.exec(row);
    if (m) {
      items.push({ kind: 'term', indent, term: m[2], desc: m[3], col: row.length - m[3].length });
      continue;
    }
    if (last?.kind === 'prose' && last.indent === indent) last.desc += ` ${row.trim()}`;
    else items.push({ kind: 'prose', indent, desc: row.trim() });
  }
  const lines = [`.SS ${name.replace(/-/g, '\\-')}`, '.nf', ...syn.map(synopsisLine), '.fi'];
  let level = 0;
  for (const item of items) {
    if (item.kind === 'term' && /^-h, --help$/.test(item.term)) continue;
    const want = item.indent > 2 ? 1 : 0;
    while (level < want) lines.push('.RS'), level++;
    while (level > want) lines.push('.RE'), level--;
    if (item.kind === 'term') lines.push('.TP', line(synopsis(item.term)), line(text(item.desc)));
    else lines.push('.PP', line(text(item.desc)));
  }
  while (level > 0) lines.push('.RE'), level--;
  return lines;
}

/**
 * The synopsis lines at the head of a usage (`usage: nqqueue X ...`, then lines that start with
 * `nqqueue` or go on with more options), taken off `rows`; alternatives of subcommands on one line (`list [FILTERS] | show ID`)
 * become a line each, as a reader of a page expects.
 */
function synopsisLines(name, rows) {
  const heads = [rows.shift().replace(/^usage:\s*/, '')];
  // A line of options that goes on (spaces, then `[`) stays a line of its own, indented under its head.
  while (rows.length > 0 && /^\s+(nqqueue\b|\[)/.test(rows[0])) heads.push(/^\s+\[/.test(rows[0]) ? `    ${rows.shift().trim()}` : rows.shift().trim());
  const out = [];
  for (const head of heads) {
    let depth = 0;
    let start = 0;
    const parts = [];
    for (let i = 0; i < head.length; i++) {
      const c = head[i];
      if (c === '[') depth++;
      else if (c === ']') depth--;
      else if (depth === 0 && head.startsWith(' | ', i) && /^[a-z]/.test(head.slice(i + 3))) {
        parts.push(head.slice(start, i));
        start = i + 3;
      }
    }
    parts.push(head.slice(start));
    out.push(parts[0], ...parts.slice(1).map((p) => `nqqueue ${name} ${p}`));
  }
  return out;
}

function synopses() {
  return commandNames.flatMap((name) => synopsisLines(name, usages.get(name).split('\n')).map(synopsisLine));
}

// ---- the pages ----

const placed = new Set();
const placedSections = new Set();
const directives = {
  GLOBAL_KEYS: () => globalKeys(),
  SERVICE_SECTION: (name) => (placedSections.add(name), serviceSection(name)),
  COMMON_PLUGIN_KEYS: () => commonPluginKeys(),
  PLUGINS: () => plugins.flatMap(plugin),
  COMMAND: (name) => command(name),
  SYNOPSES: () => synopses(),
};

const templates = join(root, 'man');
mkdirSync(out, { recursive: true });
const written = [];
for (const file of readdirSync(templates).filter((f) => f.endsWith('.in')).sort()) {
  const src = readFileSync(join(templates, file), 'utf8');
  const page = src
    .split('\n')
    .flatMap((row, i) => {
      const d = /^@@([A-Z_]+)(?: (\S+))?@@$/.exec(row);
      if (!d) return [row];
      const make = directives[d[1]];
      if (!make) throw new Error(`man/${file}:${i + 1}: unknown directive @@${d[1]}@@`);
      return make(d[2]);
    })
    .join('\n')
    .replaceAll('@VERSION@', VERSION);
  if (/@@|@[A-Z]+@/.test(page)) throw new Error(`man/${file}: a placeholder is left`);
  const target = join(out, file.replace(/\.in$/, ''));
  writeFileSync(target, page);
  written.push(target);
}
// Every command and every service section has its place in a page: a new one cannot be forgotten.
for (const name of commandNames) if (!placed.has(name)) throw new Error(`man: command ${name} is in no page (@@COMMAND ${name}@@)`);
for (const name of Object.keys(SERVICE_SECTIONS)) if (!placedSections.has(name)) throw new Error(`man: section [${name}] is in no page (@@SERVICE_SECTION ${name}@@)`);
if (!args.includes('--quiet')) process.stdout.write(`man: ${written.length} pages in ${out}\n`);
