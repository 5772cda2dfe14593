// Checks that the documentation names exactly the keys the code declares: the reference entries of the
// generated manual pages, and the hand-written key tables of the README. Each returns its problems as
// text (empty: none), so a test can also show that a broken page or table is caught.

import { COMMON_PLUGIN_KEYS, GLOBAL_KEYS } from '../../src/config/settings.js';
import { SERVICE_SECTIONS } from '../../src/config/service-sections.js';
import type { PluginDefinition } from '../../src/plugin-api/define.js';
import { BUILTINS } from '../../src/plugin-api/load.js';

/** What the code declares: the names, and the meaning written for each. */
export interface Declared {
  readonly global: Readonly<Record<string, string>>;
  readonly sections: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly common: Readonly<Record<string, string>>;
  readonly plugins: Readonly<Record<string, DeclaredPlugin>>;
}

export interface DeclaredPlugin {
  readonly stages: readonly string[];
  readonly description: string | undefined;
  readonly keys: Readonly<Record<string, string | undefined>>;
  /** A list of words and each one's meaning; `free`: any word its configure checks; `none`. */
  readonly words: Readonly<Record<string, string | undefined>> | { readonly free: string | undefined } | 'none';
}

const docs = <T extends { doc?: string }>(o: Readonly<Record<string, T>>): Record<string, string> =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.doc ?? '']));

export function describePlugin(def: PluginDefinition<unknown>): DeclaredPlugin {
  const w = def.params?.words;
  const wd = def.params?.wordsDoc;
  const words: DeclaredPlugin['words'] =
    w === undefined ? 'none' : Array.isArray(w) ? Object.fromEntries(w.map((x) => [x, typeof wd === 'object' ? wd[x] : undefined])) : { free: typeof wd === 'string' ? wd : undefined };
  return {
    stages: def.stages,
    description: def.description,
    keys: Object.fromEntries(Object.entries(def.params?.keys ?? {}).map(([k, v]) => [k, v.doc])),
    words,
  };
}

export async function declared(): Promise<Declared> {
  const plugins: Record<string, DeclaredPlugin> = {};
  for (const [name, loader] of Object.entries(BUILTINS)) plugins[name] = describePlugin((await loader()).default);
  return {
    global: docs(GLOBAL_KEYS),
    sections: Object.fromEntries(Object.entries(SERVICE_SECTIONS).map(([name, keys]) => [name, docs(keys as Record<string, { doc: string }>)])),
    common: docs(COMMON_PLUGIN_KEYS),
    plugins,
  };
}

/** Declarations without a meaning: every one of these must have some. */
export function undocumented(d: Declared): string[] {
  const out: string[] = [];
  const need = (what: string, doc: string | undefined) => {
    if (typeof doc !== 'string' || doc.trim() === '') out.push(`${what} has no doc`);
  };
  for (const [k, doc] of Object.entries(d.global)) need(`global key ${k}`, doc);
  for (const [s, keys] of Object.entries(d.sections)) for (const [k, doc] of Object.entries(keys)) need(`[${s}] ${k}`, doc);
  for (const [k, doc] of Object.entries(d.common)) need(`common plugin key ${k}`, doc);
  for (const [name, p] of Object.entries(d.plugins)) {
    need(`plugin ${name}`, p.description);
    for (const [k, doc] of Object.entries(p.keys)) need(`plugin ${name} key ${k}`, doc);
    if (p.words !== 'none') {
      if ('free' in p.words) need(`plugin ${name}'s bare words`, p.words.free as string | undefined);
      else for (const [w, doc] of Object.entries(p.words)) need(`plugin ${name} word ${w}`, doc);
    }
  }
  return out;
}

// ---- the pages ----

/** The reference entries of the pages: scope (`global`, `[web]`, `common`, `plugin clamav keys` ...) → name → meaning. */
export type Entries = Map<string, Map<string, string>>;

/**
 * Reads the entries of nqqueue.conf(5) and nqqueue-plugins(7): a `.TP` whose tag is `.B NAME`, and the
 * text lines after it (without `Default:` and `Repeatable.`), within the sections that hold the
 * reference; a plugin's free-form words are its `Bare words: TEXT` line (`words` → `*`).
 */
export function pageEntries(roff: string, into: Entries = new Map()): Entries {
  let sh = '';
  let ss = '';
  let label = '';
  const add = (scope: string, name: string, meaning: string) => {
    const m = into.get(scope) ?? new Map<string, string>();
    if (m.has(name)) m.set(name, `${m.get(name)} (documented twice)`);
    else m.set(name, meaning);
    into.set(scope, m);
  };
  const scope = (): string | undefined => {
    if (sh === 'GLOBAL SETTINGS') return 'global';
    if (sh === 'SERVICE SECTIONS' && /^\[[a-z]+\]$/.test(ss)) return ss;
    if (sh === 'PLUGIN SECTIONS' || sh === 'COMMON KEYS') return `common ${sh}`;
    if (sh === 'BUILT-IN PLUGINS' && ss !== '' && (label === 'Keys:' || label === 'Bare words:')) return `plugin ${ss} ${label === 'Keys:' ? 'keys' : 'words'}`;
    return undefined;
  };
  const lines = roff.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const head = /^\.(SH|SS) +"?(.*?)"?$/.exec(l);
    if (head) {
      const title = head[2]!.replace(/\\-/g, '-');
      if (head[1] === 'SH') [sh, ss] = [title, ''];
      else ss = title;
      label = '';
      continue;
    }
    if (l === 'Keys:' || l === 'Bare words:') {
      label = l;
      continue;
    }
    const free = /^Bare words: (.*)$/.exec(l);
    if (free && sh === 'BUILT-IN PLUGINS') {
      if (free[1] !== 'none.') add(`plugin ${ss} words`, '*', free[1]!);
      label = '';
      continue;
    }
    if (/^Keys: /.test(l)) {
      label = '';
      continue;
    }
    if (l !== '.TP') continue;
    const tag = /^\.B (\S+)$/.exec(lines[i + 1] ?? '');
    const where = scope();
    if (!tag || where === undefined) continue;
    const meaning: string[] = [];
    for (let j = i + 2; j < lines.length && !lines[j]!.startsWith('.'); j++) {
      if (!/^Default: |^Repeatable\.$/.test(lines[j]!)) meaning.push(lines[j]!);
    }
    add(where, tag[1]!, meaning.join(' ').trim());
  }
  return into;
}

/** Roff text as plain text: font changes, \- \e \& undone. */
function plain(roff: string): string {
  return roff.replace(/\\f[BIR]/g, '').replace(/\\-/g, '-').replace(/\\&/g, '').replace(/\\e/g, '\\').replace(/\s+/g, ' ').trim();
}

/** A declared meaning as the page shows it: without backquotes, with a final full stop. */
function asShown(doc: string): string {
  const t = doc.replace(/`/g, '').replace(/\s+/g, ' ').trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/**
 * The entries against the declarations: every declared name once, with the meaning the code gives it,
 * and no other name.
 */
export function comparePages(d: Declared, e: Entries): string[] {
  const out: string[] = [];
  const same = (what: string, declaredDocs: Readonly<Record<string, string | undefined>>, scope: string) => {
    const names = Object.keys(declaredDocs);
    const got = e.get(scope) ?? new Map<string, string>();
    for (const n of names) {
      const meaning = got.get(n);
      const doc = declaredDocs[n];
      if (meaning === undefined) out.push(`${what}: ${n} is not in the pages`);
      else if (meaning === '' || meaning === '.') out.push(`${what}: ${n} has an empty meaning`);
      else if (meaning.endsWith('(documented twice)')) out.push(`${what}: ${n} is documented twice`);
      else if (doc !== undefined && plain(meaning) !== asShown(doc)) out.push(`${what}: ${n} means ${JSON.stringify(plain(meaning))} in the pages, but ${JSON.stringify(asShown(doc))} in the code`);
    }
    for (const n of got.keys()) if (!names.includes(n)) out.push(`${what}: the pages document ${n}, which is not declared`);
  };
  same('global settings', d.global, 'global');
  for (const [s, keys] of Object.entries(d.sections)) same(`[${s}]`, keys, `[${s}]`);
  same('common plugin keys (nqqueue.conf)', d.common, 'common PLUGIN SECTIONS');
  same('common plugin keys (nqqueue-plugins)', d.common, 'common COMMON KEYS');
  for (const [name, p] of Object.entries(d.plugins)) {
    same(`plugin ${name} keys`, p.keys, `plugin ${name} keys`);
    const words = p.words === 'none' ? {} : 'free' in p.words ? { '*': p.words.free } : p.words;
    same(`plugin ${name} words`, words, `plugin ${name} words`);
  }
  const known = new Set(['global', 'common PLUGIN SECTIONS', 'common COMMON KEYS', ...Object.keys(d.sections).map((s) => `[${s}]`)]);
  for (const name of Object.keys(d.plugins)) known.add(`plugin ${name} keys`).add(`plugin ${name} words`);
  for (const scope of e.keys()) if (!known.has(scope)) out.push(`the pages document ${scope}, which is not declared`);
  return out;
}

// ---- the README ----

interface Table {
  readonly heading: string;
  readonly line: number;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

function cells(row: string): string[] {
  return row
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

export function tables(md: string): Table[] {
  const out: Table[] = [];
  const lines = md.split('\n');
  let heading = '';
  let fence = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('```')) fence = !fence;
    if (fence) continue;
    if (/^#+ /.test(l)) heading = l.replace(/^#+ /, '');
    if (!l.startsWith('|') || !/^\|[-| :]+\|$/.test(lines[i + 1] ?? '')) continue;
    const header = cells(l);
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.startsWith('|'); j++) rows.push(cells(lines[j]!));
    out.push({ heading, line: i + 1, header, rows });
    i = j - 1;
  }
  return out;
}

/** The backquoted names of a cell, leaving out what is in parentheses (values, remarks). */
export function names(cell: string): string[] {
  let t = cell;
  for (let prev = ''; prev !== t; ) [prev, t] = [t, t.replace(/\([^()]*\)/g, '')];
  return [...t.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}

/**
 * The README's key tables against the declarations. The settings table (`| key | default | meaning |`
 * under "Settings (`nqqueue.conf`") names every global key and no other; the [web], [digest] and
 * [learn] tables only keys of their section, and all of them; the scanner keys table only keys its
 * plugins take; the plugin table each built-in's keys and listed words exactly; the plugins table each
 * built-in once with its stages. A key table that none of these rules knows is itself a problem.
 */
export function compareReadme(d: Declared, md: string): string[] {
  const out: string[] = [];
  const all = tables(md);
  const plugins = Object.keys(d.plugins);
  const pluginKeys = (p: string): string[] => [...Object.keys(d.plugins[p]?.keys ?? {}), ...Object.keys(d.common)];
  const covered = new Map<string, Set<string>>();
  const cover = (scope: string, key: string) => covered.set(scope, (covered.get(scope) ?? new Set()).add(key));
  const found = new Set<string>();
  /** The rows of a table of every built-in plugin, with each one's declaration; a row of another name, or a plugin without a row, is a problem. */
  const pluginRows = (rows: Table['rows'], at: string): [string, DeclaredPlugin, readonly string[]][] => {
    const out2: [string, DeclaredPlugin, readonly string[]][] = [];
    for (const row of rows) {
      const [p] = names(row[0] ?? '');
      const decl = p === undefined ? undefined : d.plugins[p];
      if (p === undefined || !decl) out.push(`${at}: ${row[0]} is not a built-in plugin`);
      else out2.push([p, decl, row]);
    }
    for (const p of plugins) if (!out2.some(([q]) => q === p)) out.push(`${at}: plugin ${p} is missing`);
    return out2;
  };
  for (const t of all) {
    const h = t.header.join('|');
    const at = `README.md:${t.line} (${t.heading})`;
    if (h === 'key|default|meaning') {
      const section = /`\[([a-z]+)\]`/.exec(t.heading)?.[1];
      const scope = section ?? (/Settings \(`nqqueue\.conf`/.test(t.heading) ? 'global' : undefined);
      if (scope === undefined) {
        out.push(`${at}: a key table whose keys are of no known section`);
        continue;
      }
      found.add(scope);
      const keys = scope === 'global' ? d.global : d.sections[scope];
      if (!keys) {
        out.push(`${at}: [${scope}] is not a service section`);
        continue;
      }
      for (const row of t.rows) {
        for (const k of names(row[0] ?? '')) {
          if (!Object.hasOwn(keys, k)) out.push(`${at}: ${k} is not a ${scope === 'global' ? 'global setting' : `key of [${scope}]`}`);
          cover(scope, k);
        }
      }
    } else if (/^setting\|default\|/.test(h)) {
      for (const row of t.rows) {
        for (const n of names(row[0] ?? '')) {
          const m = /^\[([a-z]+)\] ([a-z_]+)$/.exec(n);
          if (!m) {
            out.push(`${at}: ${n} is not written [section] key`);
            continue;
          }
          const [, s, k] = m as unknown as [string, string, string];
          const keys = d.sections[s] ?? (d.plugins[s] ? Object.fromEntries(pluginKeys(s).map((x) => [x, ''])) : undefined);
          if (!keys || !Object.hasOwn(keys, k)) out.push(`${at}: ${k} is not a key of [${s}]`);
          if (d.sections[s]) cover(s, k);
        }
      }
    } else if (h === 'section|key|default|meaning') {
      let current: string[] = [];
      for (const row of t.rows) {
        const first = row[0] ?? '';
        if (first !== '') {
          const bracketed = [...first.matchAll(/`\[([a-z]+)\]`/g)].map((m) => m[1]!);
          current = bracketed.length > 0 ? bracketed : first.split(/[,\s]+/).filter(Boolean);
        }
        for (const p of current) {
          if (!d.plugins[p]) {
            out.push(`${at}: ${p} is not a built-in plugin`);
            continue;
          }
          for (const k of names(row[1] ?? '')) if (!pluginKeys(p).includes(k)) out.push(`${at}: ${k} is not a key of plugin ${p}`);
        }
      }
    } else if (h === 'plugin|keys|bare words') {
      for (const [p, decl, row] of pluginRows(t.rows, at)) {
        const keys = names(row[1] ?? '');
        for (const k of keys) if (!Object.hasOwn(decl.keys, k)) out.push(`${at}: ${k} is not a key of plugin ${p}`);
        for (const k of Object.keys(decl.keys)) if (!keys.includes(k)) out.push(`${at}: plugin ${p}'s key ${k} is missing`);
        if (decl.words !== 'none' && !('free' in decl.words)) {
          const words = names(row[2] ?? '');
          for (const w of words) if (!Object.hasOwn(decl.words, w)) out.push(`${at}: ${w} is not a bare word of plugin ${p}`);
          for (const w of Object.keys(decl.words)) if (!words.includes(w)) out.push(`${at}: plugin ${p}'s word ${w} is missing`);
        } else if (decl.words === 'none' && names(row[2] ?? '').length > 0) out.push(`${at}: plugin ${p} takes no bare words`);
      }
      found.add('plugin keys');
    } else if (h === 'plugin|stage|what it does') {
      for (const [p, decl, row] of pluginRows(t.rows, at)) {
        const stage = decl.stages.length === 2 ? 'both' : decl.stages[0];
        if (row[1] !== stage) out.push(`${at}: plugin ${p} runs in ${stage}, not ${row[1]}`);
      }
      found.add('plugins');
    }
  }
  if (!found.has('global')) out.push('README.md: the settings table (| key | default | meaning |) is missing');
  for (const k of Object.keys(d.global)) if (!covered.get('global')?.has(k)) out.push(`README.md: the settings table lacks the global key ${k}`);
  for (const [s, keys] of Object.entries(d.sections)) {
    for (const k of Object.keys(keys)) if (!covered.get(s)?.has(k)) out.push(`README.md: no table has [${s}] ${k}`);
  }
  return out;
}
