// simscan's per-domain control file, `simcontrol` (or the `simcontrol.cdb` simscanmk compiles from it),
// read as simscan reads it: `PATTERN:key=value,...`, PATTERN a recipient's (or the sender's) address,
// a domain, or empty for the default line. simscanmk lower-cases every line but the default one;
// simscan splits the values on any of ` =\t\r\n,"'` and takes the words two by two, so a space after a
// comma shifts every pair after it. Each line gets both readings: what the administrator wrote
// (`items`) and, when simscan read something else, a problem saying so.

import { Cdb } from './locals.js';

export interface SimcontrolItem {
  readonly key: string;
  readonly value: string;
}

export interface SimcontrolLine {
  /** Line of the text file, or record number of the cdb. */
  readonly line: number;
  /** Lower-cased; '' for the default line. */
  readonly pattern: string;
  /** key=value items as written (keys lower-cased), in order. */
  readonly items: readonly SimcontrolItem[];
  /** The last value of each key, lower-cased (simscan compares values without case). */
  readonly settings: ReadonlyMap<string, string>;
}

export interface SimcontrolProblem {
  readonly line: number;
  readonly message: string;
}

export interface Simcontrol {
  readonly lines: SimcontrolLine[];
  /** Lines that cannot be read, or that simscan reads otherwise than they were written. */
  readonly problems: SimcontrolProblem[];
  /** 'line' for the text file, 'record' for the cdb: how `line` numbers are named. */
  readonly unit: 'line' | 'record';
}

// simscan.c PER_DOMAIN_TOKENS.
const TOKENS = /[ =\t\n\r,"']/;

/** simscan's own reading of a line's data: strsep on every token character, the words two by two. */
export function simscanPairs(data: string): SimcontrolItem[] {
  const words = data.split(TOKENS);
  const out: SimcontrolItem[] = [];
  for (let i = 0; i + 1 < words.length; i += 2) out.push({ key: words[i]!.toLowerCase(), value: words[i + 1]! });
  return out;
}

function entry(n: number, pattern: string, data: string, out: Simcontrol): void {
  const items: SimcontrolItem[] = [];
  for (const raw of data.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) {
      out.problems.push({ line: n, message: `${JSON.stringify(item)} is not key=value` });
      continue;
    }
    items.push({ key: item.slice(0, eq).trim().toLowerCase(), value: item.slice(eq + 1).trim() });
  }
  const theirs = simscanPairs(data).filter((p) => p.key !== '' || p.value !== '');
  const same = theirs.length === items.length && theirs.every((p, i) => p.key === items[i]!.key && p.value === items[i]!.value);
  if (!same && items.length > 0) {
    const read = theirs.map((p) => `${p.key}=${p.value}`).join(',') || 'nothing';
    out.problems.push({ line: n, message: `simscan reads this line as ${read} (a space, quote or "=" inside an item shifts its reading): write ${items.map((i) => `${i.key}=${i.value}`).join(',')}` });
  }
  const settings = new Map<string, string>();
  for (const i of items) settings.set(i.key, i.value.toLowerCase());
  out.lines.push({ line: n, pattern, items, settings });
}

/** The text file `simcontrol`. */
export function parseSimcontrol(text: string): Simcontrol {
  const out: Simcontrol = { lines: [], problems: [], unit: 'line' };
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const line = raw.replace(/\r$/, '');
    // simscanmk keeps no comments, but a `#` line becomes a key no lookup ever asks for.
    if (line.trim() === '' || line.trim().startsWith('#')) return;
    // simscanmk: a line starting with ':' is the default, kept as written; every other one is lower-cased.
    if (line.startsWith(':')) return entry(n, '', line.slice(1), out);
    const colon = line.indexOf(':');
    if (colon < 0) {
      out.problems.push({ line: n, message: "no ':' (simcontrol lines are PATTERN:key=value,...)" });
      return;
    }
    const pattern = line.slice(0, colon).trim().toLowerCase();
    entry(n, pattern, line.slice(colon + 1).toLowerCase(), out);
  });
  return out;
}

/** The compiled `simcontrol.cdb` (what a site that kept only the cdb has): its records in file order. */
export function readSimcontrolCdb(path: string): Simcontrol {
  const out: Simcontrol = { lines: [], problems: [], unit: 'record' };
  const cdb = Cdb.open(path);
  if (!cdb) throw Object.assign(new Error(`${path}: no such file`), { code: 'ENOENT' });
  try {
    let n = 0;
    for (const [key, data] of cdb.records()) {
      n++;
      const pattern = key.toString('latin1');
      if (pattern.startsWith('#')) continue;
      entry(n, pattern.trim().toLowerCase(), data.toString('latin1'), out);
    }
  } finally {
    cdb.close();
  }
  return out;
}
