// `.cfb` routing files, compatible with 2008 NQqueue: PATTERN:PLUGIN[=PARAMS][;PLUGIN[=PARAMS]]...
//
// PATTERN: empty (fallback), user@domain (exact, case-insensitive), domain, or /regex/ (JavaScript,
// matched against the whole address, case-insensitive). For an address the line chosen is the exact
// address, else the first matching regex, else — for a qmail extension address (alice-lists@) — the
// exact line of the address it extends, else the domain, else the fallback. A pattern that can never
// match (".example.com", "*@example.com", "example.com.") is an error that says what to write.

import { PLUGIN_NAME, type ParamItem } from '../plugin-api/define.js';
import { compileAdminRegex, MATCH_BUDGET, maxTextFor, regexCost } from './admin-regex.js';

/** The longest address qmail-queue takes (1003 bytes or more is exit 11). */
const MAX_ADDRESS = 1002;

export interface PluginRef {
  readonly name: string;
  /** PARAMS as written ('' when none). */
  readonly params: string;
  readonly items: readonly ParamItem[];
}

export interface CfbLine {
  readonly file: string;
  readonly line: number;
  readonly pattern: string;
  readonly kind: 'fallback' | 'address' | 'domain' | 'regex';
  readonly plugins: readonly PluginRef[];
}

export interface CfbProblem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** Which line an address gets, and by which rule. */
export interface CfbMatch {
  readonly line: CfbLine;
  readonly rule: 'address' | 'regex' | 'extension' | 'domain' | 'fallback';
  /** For the extension rule: the address whose line it is (alice@example.com for alice-lists@example.com). */
  readonly via?: string;
}

export interface CfbFile {
  readonly file: string;
  readonly lines: readonly CfbLine[];
  readonly problems: readonly CfbProblem[];
  /** The line with an empty pattern. */
  readonly fallback: CfbLine | undefined;
  /** The line for an address (lower-cased before matching), or undefined: no plugins. */
  lookup(address: string): CfbLine | undefined;
  /** The same, with the rule that chose the line. */
  match(address: string): CfbMatch | undefined;
}

export interface CfbOptions {
  /** qmail's extension separator ('-' by default; '' for no extension rule). */
  readonly extensionSeparator?: string;
}

const KEY = /^[a-z_][a-z0-9_]*$/;
// Domains and local parts as qmail accepts them, without whitespace, ':' or control characters.
const DOMAIN = /^[a-z0-9_.-]+$/;
// eslint-disable-next-line no-control-regex
const ADDRESS = /^[^\s:@\x00-\x1f\x7f]*@[a-z0-9_.-]+$/;

/** Split PARAMS into items: comma-separated, each a bare word or key=value. */
export function parseParams(raw: string): ParamItem[] {
  if (raw === '') return [];
  return raw.split(',').map((item) => {
    const eq = item.indexOf('=');
    if (eq > 0) {
      const key = item.slice(0, eq);
      if (KEY.test(key)) return { key, value: item.slice(eq + 1) };
    }
    return { value: item };
  });
}

/**
 * Why a domain or address pattern can never match an address, with what to write instead; undefined
 * when it can. The usual cause is a habit from another file (rcpthosts' ".example.com", a shell glob).
 */
export function unmatchablePattern(pattern: string): string | undefined {
  const at = pattern.lastIndexOf('@');
  const domain = at < 0 ? pattern : pattern.slice(at + 1);
  const q = JSON.stringify(pattern);
  if (/[*?]/.test(pattern)) {
    const d = domain.replace(/^[*?.]+/, '');
    return `pattern ${q} never matches: patterns have no wildcards (write "${d || 'example.com'}" for every address in that domain, or a /regex/ line)`;
  }
  if (at < 0 && pattern.startsWith('.')) {
    const d = pattern.replace(/^\.+/, '');
    return `pattern ${q} never matches: a domain line covers exactly that domain, not its subdomains as in rcpthosts (write "${d}"; for its subdomains a regex such as /.*@.*\\.${d.replace(/\./g, '\\.')}/)`;
  }
  if (at === 0) return `pattern ${q} never matches: an address needs its local part (write "${domain}" for every address in that domain)`;
  const quoted = at > 0 ? /^"([^"\\]+)"$/.exec(pattern.slice(0, at)) : null;
  if (quoted && /^[^\s"()<>[\],;:@\\]+$/.test(quoted[1]!)) {
    return `pattern ${q} never matches: qmail-smtpd takes the quotes off an address (write "${quoted[1]}@${domain}")`;
  }
  if (domain.endsWith('.')) {
    const fixed = `${at < 0 ? '' : pattern.slice(0, at + 1)}${domain.replace(/\.+$/, '')}`;
    return `pattern ${q} never matches: addresses have no trailing dot (write "${fixed}")`;
  }
  if (domain === '' || domain.startsWith('.') || domain.includes('..')) return `pattern ${q} never matches: its domain has an empty label`;
  return undefined;
}

/** Where a /regex/ pattern ends: the index of its closing slash (the one followed by ':'), or -1. */
function regexEnd(line: string): number {
  for (let i = 1; i < line.length; i++) {
    const c = line[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '/' && line[i + 1] === ':') return i;
  }
  return -1;
}

export function parseCfb(text: string, file: string, options: CfbOptions = {}): CfbFile {
  const separator = options.extensionSeparator ?? '-';
  const lines: CfbLine[] = [];
  const problems: CfbProblem[] = [];
  const exact = new Map<string, CfbLine>();
  const domains = new Map<string, CfbLine>();
  const regexes: { re: RegExp; line: CfbLine }[] = [];
  let fallback: CfbLine | undefined;

  const src = text.split('\n');
  for (let i = 0; i < src.length; i++) {
    const lineNo = i + 1;
    const line = src[i]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const problem = (message: string) => problems.push({ file, line: lineNo, message });

    let pattern: string;
    let rest: string;
    let re: RegExp | undefined;
    if (line.startsWith('/')) {
      const end = regexEnd(line);
      if (end < 0) {
        problem('a /regex/ pattern must end with "/:"');
        continue;
      }
      pattern = line.slice(0, end + 1);
      rest = line.slice(end + 2);
      try {
        re = compileAdminRegex(`^(?:${line.slice(1, end)})$`, 'i');
      } catch (err) {
        problem(`invalid regular expression ${pattern}: ${(err as Error).message}`);
        continue;
      }
      // An address may be 1002 bytes long: the pattern must be matchable against one in bounded time.
      if (maxTextFor(re) < MAX_ADDRESS) {
        problem(`the regular expression ${pattern} is too large to match a ${MAX_ADDRESS}-byte address in bounded time (about ${regexCost(re)} states; at most ${Math.floor(MATCH_BUDGET / MAX_ADDRESS)}): use a shorter pattern, or several lines`);
        continue;
      }
    } else {
      const colon = line.indexOf(':');
      if (colon < 0) {
        problem('expected PATTERN:PLUGIN[=PARAMS][;PLUGIN...] (no ":" found)');
        continue;
      }
      pattern = line.slice(0, colon).trim().toLowerCase();
      rest = line.slice(colon + 1);
    }

    const plugins: PluginRef[] = [];
    let bad = false;
    for (const spec of rest.split(';')) {
      const s = spec.trim();
      if (s === '') continue;
      const eq = s.indexOf('=');
      const name = (eq < 0 ? s : s.slice(0, eq)).trim();
      const params = eq < 0 ? '' : s.slice(eq + 1).trim();
      if (!PLUGIN_NAME.test(name)) {
        const lower = PLUGIN_NAME.test(name.toLowerCase()) ? ` (names are lower-case: ${name.toLowerCase()})` : '';
        problem(`invalid plugin name ${JSON.stringify(name)}${lower}`);
        bad = true;
        break;
      }
      plugins.push({ name, params, items: parseParams(params) });
    }
    if (bad) continue;

    const kind: CfbLine['kind'] = re ? 'regex' : pattern === '' ? 'fallback' : pattern.includes('@') ? 'address' : 'domain';
    const never = kind === 'address' || kind === 'domain' ? unmatchablePattern(pattern) : undefined;
    if (never) {
      problem(never);
      continue;
    }
    if (kind === 'address' && !ADDRESS.test(pattern)) {
      problem(`invalid address pattern ${JSON.stringify(pattern)}`);
      continue;
    }
    if (kind === 'domain' && !DOMAIN.test(pattern)) {
      problem(`invalid domain pattern ${JSON.stringify(pattern)}`);
      continue;
    }
    const entry: CfbLine = Object.freeze({ file, line: lineNo, pattern, kind, plugins: Object.freeze(plugins) });
    lines.push(entry);
    const dup = (prev: CfbLine | undefined) => {
      if (prev) problem(`pattern ${JSON.stringify(pattern)} already given on line ${prev.line}`);
      return !!prev;
    };
    if (kind === 'regex') regexes.push({ re: re!, line: entry });
    else if (kind === 'fallback') {
      if (!dup(fallback)) fallback = entry;
    } else if (kind === 'address') {
      if (!dup(exact.get(pattern))) exact.set(pattern, entry);
    } else if (!dup(domains.get(pattern))) domains.set(pattern, entry);
  }

  const match = (address: string): CfbMatch | undefined => {
    const a = address.toLowerCase();
    const hit = exact.get(a);
    if (hit) return { line: hit, rule: 'address' };
    for (const r of regexes) if (r.re.test(address)) return { line: r.line, rule: 'regex' };
    const at = a.lastIndexOf('@');
    if (at >= 0) {
      // qmail's extension rule, as qmail-local strips .qmail-ext: alice-lists-x@ tries alice-lists@,
      // then alice@ (at the last separator first, then each earlier one; never an empty local part).
      if (separator !== '') {
        const local = a.slice(0, at);
        const domain = a.slice(at);
        for (let i = local.lastIndexOf(separator); i > 0; i = local.lastIndexOf(separator, i - 1)) {
          const via = local.slice(0, i) + domain;
          const line = exact.get(via);
          if (line) return { line, rule: 'extension', via };
        }
      }
      const d = domains.get(a.slice(at + 1));
      if (d) return { line: d, rule: 'domain' };
    }
    return fallback ? { line: fallback, rule: 'fallback' } : undefined;
  };
  return {
    file,
    lines,
    problems,
    fallback,
    lookup: (address: string) => match(address)?.line,
    match,
  };
}
