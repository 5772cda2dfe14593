// Regular expressions written by the administrator (header rules, /regex/ routing patterns) are
// matched against text an attacker controls. They are compiled for V8's linear-time engine (flag `l`),
// so no input can make a match backtrack for ever; a pattern that engine cannot run is refused when the
// configuration is loaded, never at mail time.
//
// The linear engine does not take the `i` flag: case-insensitive patterns are rewritten into
// equivalent ones without it (every letter becomes the class of its case variants, as the `i` flag's
// own canonicalisation defines them), then compiled.

/**
 * Whether the linear engine can be used, turning it on at the first call. It is behind a V8 flag
 * (Node 22 to 24) that only adds the `l` flag and is read when a RegExp is constructed, so setting it
 * before the first compile is enough; node:v8 is loaded then, not on the path of every message.
 */
let linear: boolean | undefined;
function linearEngine(): boolean {
  if (linear !== undefined) return linear;
  const probe = () => {
    try {
      new RegExp('a', 'l');
      return true;
    } catch {
      return false;
    }
  };
  linear = probe();
  if (!linear) {
    const v8 = process.getBuiltinModule?.('node:v8') as typeof import('node:v8') | undefined;
    v8?.setFlagsFromString('--enable-experimental-regexp-engine');
    linear = probe();
  }
  return linear;
}

/** The pattern cannot be used; the message says why, for `file:line: ...` reports. */
export class AdminRegexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdminRegexError';
  }
}

/**
 * Compile `source` with `flags` (any of `i`, `m`, `s`) so that matching takes time linear in the
 * input. Throws AdminRegexError for a syntax error or a pattern the linear engine cannot run
 * (backreferences, lookahead, counted repetitions over 16, the `u`/`v` flags). Lookbehind runs: the linear
 * engine has it from Node.js 22, the oldest line NQqueue runs on.
 */
export function compileAdminRegex(source: string, flags = ''): RegExp {
  const bad = flags.replace(/[ims]/g, '');
  if (bad !== '') {
    throw new AdminRegexError(`/${source}/${flags}: flag${bad.length > 1 ? 's' : ''} "${bad}" cannot be used (allowed: i, m, s)`);
  }
  try {
    new RegExp(source, flags);
  } catch (err) {
    throw new AdminRegexError((err as Error).message);
  }
  if (!linearEngine()) {
    throw new AdminRegexError(`/${source}/: this Node.js has no linear-time regular expression engine, so no pattern can be used safely`);
  }
  const folded = flags.includes('i') ? foldCase(source) : source;
  try {
    const re = new RegExp(folded, flags.replace('i', '') + 'l');
    COSTS.set(re, programSize(folded));
    return re;
  } catch {
    throw new AdminRegexError(
      `/${source}/${flags}: cannot be matched in linear time (no backreferences, no lookahead, ` +
        'counted repetitions of at most 16): rewrite the pattern',
    );
  }
}

// --- what one match costs ---
//
// The linear engine simulates the pattern's automaton: each character of the text costs at most one
// step per state of the program, so one match costs at most (program size) x (text length) steps. Linear
// in the text, but a pattern of many states (counted repetitions are spelled out) makes each character
// dear: `(?:a{16}){60}b` against 64 KB of `a` is some 60 million steps, over a second. So the text a
// pattern may be matched against is bounded by its size: MATCH_BUDGET steps at most for one match.

/**
 * Steps the matching of one text may take: about 0.1 s at the engine's slowest measured step (about
 * 50 ns on Node 22, for `[\s\S]*` repeated; most patterns step several times faster).
 */
export const MATCH_BUDGET = 2_000_000;

const COSTS = new WeakMap<RegExp, number>();

/** An upper bound of the states of `re`'s program (1 for a RegExp not made by compileAdminRegex). */
export function regexCost(re: RegExp): number {
  return COSTS.get(re) ?? 1;
}

/** The longest text `re` may be matched against within MATCH_BUDGET steps. */
export function maxTextFor(re: RegExp): number {
  return Math.floor(MATCH_BUDGET / regexCost(re));
}

/**
 * An upper bound of the number of states of a pattern's program, from its source: every atom (a
 * character, an escape, a class) a state, every group, alternative and quantifier a state more, and
 * the body of a counted repetition spelled out as many times as it may repeat. It errs on the high side.
 */
export function programSize(src: string): number {
  // Per open group: the finished alternatives' cost, the current alternative's cost, its last atom.
  const stack: { alts: number; seq: number; last: number; count: number }[] = [{ alts: 0, seq: 0, last: 0, count: 0 }];
  const top = () => stack[stack.length - 1]!;
  const atom = (cost: number) => {
    const t = top();
    t.seq += cost;
    t.last = cost;
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      i += 2;
      atom(1);
    } else if (c === '[') {
      i++;
      if (src[i] === '^') i++;
      if (src[i] === ']') i++;
      while (i < src.length && src[i] !== ']') i += src[i] === '\\' ? 2 : 1;
      i++;
      atom(1);
    } else if (c === '(') {
      i++;
      if (src[i] === '?') {
        i++;
        if (src[i] === '<' && src[i + 1] !== '=' && src[i + 1] !== '!') {
          const close = src.indexOf('>', i);
          i = close < 0 ? src.length : close + 1;
        } else i += src[i] === '<' ? 2 : 1;
      }
      stack.push({ alts: 0, seq: 0, last: 0, count: 0 });
    } else if (c === ')') {
      i++;
      const g = stack.length > 1 ? stack.pop()! : top();
      const cost = g.alts + g.seq + g.count + 2;
      if (g !== top()) atom(cost);
    } else if (c === '|') {
      i++;
      const t = top();
      t.alts += t.seq;
      t.seq = 0;
      t.last = 0;
      t.count++;
    } else if (c === '*' || c === '+' || c === '?') {
      i++;
      const t = top();
      // x+ may be spelled x x*: the body once more; every quantifier adds a fork.
      t.seq += (c === '+' ? t.last : 0) + 1;
      if (src[i] === '?') i++;
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (!m) {
        i++;
        atom(1);
        continue;
      }
      i += m[0].length;
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? min + 1 : Number(m[3]);
      const times = Math.max(1, min, max);
      const t = top();
      t.seq += t.last * (times - 1) + times;
      if (src[i] === '?') i++;
    } else {
      i++;
      atom(1);
    }
  }
  while (stack.length > 1) {
    const g = stack.pop()!;
    atom(g.alts + g.seq + g.count + 2);
  }
  const t = top();
  return t.alts + t.seq + t.count + 2;
}

// --- case folding (the `i` flag of a non-unicode RegExp, ECMA-262 Canonicalize) ---

function canonicalize(c: number): number {
  const u = String.fromCharCode(c).toUpperCase();
  if (u.length !== 1) return c;
  const cu = u.charCodeAt(0);
  return c >= 128 && cu < 128 ? c : cu;
}

let classes: Map<number, number[]> | undefined;

/** Every code unit that `i` makes equal to `c` (itself included). */
function caseVariants(c: number): number[] {
  if (c < 128) {
    const ch = String.fromCharCode(c);
    const lo = ch.toLowerCase().charCodeAt(0);
    const up = ch.toUpperCase().charCodeAt(0);
    return lo === up ? [c] : [lo, up];
  }
  if (!classes) {
    classes = new Map();
    for (let x = 0; x < 0x10000; x++) {
      const k = canonicalize(x);
      const list = classes.get(k);
      if (list) list.push(x);
      else classes.set(k, [x]);
    }
  }
  return classes.get(canonicalize(c)) ?? [c];
}

const hex4 = (c: number) => `\\u${c.toString(16).padStart(4, '0')}`;

/** A class body (no brackets) for a set of code units. */
function classBody(set: Set<number>): string {
  const sorted = [...set].sort((a, b) => a - b);
  let out = '';
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out += j === i ? hex4(sorted[i]!) : `${hex4(sorted[i]!)}-${hex4(sorted[j]!)}`;
    i = j + 1;
  }
  return out;
}

const CLASS_ESCAPES = 'dDwWsS';
const CONTROL_ESCAPES: Record<string, number> = { f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b };

function unsupported(what: string): never {
  throw new AdminRegexError(`${what} cannot be used in a case-insensitive pattern here: spell the cases out (e.g. [kK]) and drop the i flag`);
}

/**
 * The single character an escape at `src[i]` (the backslash) stands for, and where it ends; or
 * undefined when it is not one character (a class escape, a backreference...).
 */
function escapedChar(src: string, i: number, inClass: boolean): { c: number; end: number } | undefined {
  const n = src[i + 1];
  if (n === undefined) return undefined;
  if (CONTROL_ESCAPES[n] !== undefined) return { c: CONTROL_ESCAPES[n]!, end: i + 2 };
  if (n === 'x') {
    const h = /^[0-9a-fA-F]{2}/.exec(src.slice(i + 2));
    return h ? { c: parseInt(h[0], 16), end: i + 4 } : { c: 0x78, end: i + 2 };
  }
  if (n === 'u') {
    const h = /^[0-9a-fA-F]{4}/.exec(src.slice(i + 2));
    return h ? { c: parseInt(h[0], 16), end: i + 6 } : { c: 0x75, end: i + 2 };
  }
  if (n === 'c') {
    const l = src[i + 2];
    if (l && /[a-zA-Z]/.test(l)) return { c: l.charCodeAt(0) % 32, end: i + 3 };
    unsupported('\\c without a letter');
  }
  if (n === 'k') unsupported('\\k');
  if (inClass && n === 'b') return { c: 0x08, end: i + 2 };
  if (/[0-9]/.test(n)) {
    if (!inClass) return undefined; // a backreference (refused by the engine) or an octal escape: no letter either way
    const o = /^[0-7]{1,3}/.exec(src.slice(i + 1));
    if (o && parseInt(o[0], 8) <= 0o377) return { c: parseInt(o[0], 8), end: i + 1 + o[0].length };
    return { c: n.charCodeAt(0), end: i + 2 };
  }
  if (CLASS_ESCAPES.includes(n) || (!inClass && (n === 'b' || n === 'B'))) return undefined;
  return { c: n.charCodeAt(0), end: i + 2 };
}

/** Parse a class starting at `src[i]` ('['); return its case-closed rewrite and where it ends. */
function foldClass(src: string, i: number): { text: string; end: number } {
  let p = i + 1;
  let negate = false;
  if (src[p] === '^') {
    negate = true;
    p++;
  }
  const set = new Set<number>();
  let escapes = '';
  const atom = (): { c?: number; esc?: string } | undefined => {
    if (p >= src.length || src[p] === ']') return undefined;
    if (src[p] === '\\') {
      const e = escapedChar(src, p, true);
      if (e) {
        p = e.end;
        return { c: e.c };
      }
      const esc = src.slice(p, p + 2);
      p += 2;
      return { esc };
    }
    return { c: src.charCodeAt(p++) };
  };
  for (;;) {
    const a = atom();
    if (!a) break;
    if (src[p] === '-' && src[p + 1] !== ']' && p + 1 < src.length) {
      p++;
      const b = atom();
      if (a.c !== undefined && b && b.c !== undefined) {
        for (let c = a.c; c <= b.c; c++) set.add(c);
        continue;
      }
      // `[a-\d]`, `[\s-a]`: a range with a class escape at either end is its two atoms and the dash
      // (Annex B), and the atom after the dash is taken with them: `[\s-a-z]` is \s, -, a, - and z.
      if (a.c !== undefined) set.add(a.c);
      else escapes += a.esc!;
      set.add(0x2d);
      if (b?.esc) escapes += b.esc;
      else if (b?.c !== undefined) set.add(b.c);
      continue;
    }
    if (a.c !== undefined) set.add(a.c);
    else escapes += a.esc!;
  }
  if (src[p] !== ']') throw new AdminRegexError('unterminated character class');
  const closed = new Set<number>();
  for (const c of set) for (const v of caseVariants(c)) closed.add(v);
  return { text: `[${negate ? '^' : ''}${escapes}${classBody(closed)}]`, end: p + 1 };
}

/** `source` (a valid non-unicode pattern) rewritten to match without the `i` flag as it does with it. */
export function foldCase(source: string): string {
  let out = '';
  let i = 0;
  const lit = (c: number, text: string) => {
    const v = caseVariants(c);
    out += v.length === 1 ? text : `[${classBody(new Set(v))}]`;
  };
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === '\\') {
      const e = escapedChar(source, i, false);
      if (e) {
        lit(e.c, source.slice(i, e.end));
        i = e.end;
      } else {
        const d = /^\\[0-9]+/.exec(source.slice(i));
        const len = d ? d[0].length : 2;
        out += source.slice(i, i + len);
        i += len;
      }
    } else if (ch === '[') {
      const c = foldClass(source, i);
      out += c.text;
      i = c.end;
    } else if (ch === '(' && source[i + 1] === '?') {
      if (source[i + 2] === '<' && source[i + 3] !== '=' && source[i + 3] !== '!') {
        const close = source.indexOf('>', i);
        out += source.slice(i, close + 1); // a group name: not matched text
        i = close + 1;
      } else if (/[a-zA-Z-]/.test(source[i + 2] ?? '')) {
        unsupported('a (?flags:...) group');
      } else {
        out += source.slice(i, i + 3);
        i += 3;
      }
    } else {
      lit(source.charCodeAt(i), ch);
      i++;
    }
  }
  return out;
}
