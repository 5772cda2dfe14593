// The settings file (`nqqueue.conf` in the control directory): schema, defaults, validation, freeze.
//
// Format: `key = value` lines; `[name]` starts the section of plugin `name`; `#` starts a comment line.
// A key may repeat where it takes a list (backend addresses, plugin directories).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { FailurePolicy } from '../pipeline/types.js';
import { danglingLink } from './dangling.js';
import { parseMetricsListen, type MetricsListen } from '../metrics/listen.js';
import { parseAge } from './service-sections.js';
import { didYouMean } from './did-you-mean.js';
import { redactUrl } from '../text/secret-url.js';
import type { ConfigProblem } from './problem.js';

export const SETTINGS_FILE = 'nqqueue.conf';

export interface SettingsEntry {
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

export interface SettingsSection {
  readonly name: string;
  /** The line of the section's first `[name]` header (0 for a section the file does not have). */
  readonly line: number;
  get(key: string): string | undefined;
  all(key: string): readonly string[];
  keys(): readonly string[];
  /** Every entry in the order written, with its line (for checks that report file:line). */
  entries(): readonly SettingsEntry[];
}

export interface Settings {
  /** The file read, or undefined when there was none (all defaults). */
  readonly file: string | undefined;
  /** Whole-message deadline, milliseconds. */
  readonly deadlineMs: number;
  /** Default timeout of one plugin run, milliseconds. */
  readonly pluginTimeoutMs: number;
  /** Default failure policy of a plugin that throws, times out or loses its backend. */
  readonly onerror: FailurePolicy;
  /**
   * How many recipients' chains run at once; `auto`: as many as the backends of those chains take at
   * once with profit (each plugin's `concurrency`, 8 for a plugin that declares none).
   */
  readonly concurrency: number | 'auto';
  /** Messages larger than this are kept in a private file rather than in memory. */
  readonly spillBytes: number;
  /** Daemon mode: the bytes all messages in flight may hold in memory together. */
  readonly spillTotalBytes: number;
  readonly maxRecipients: number;
  /** Timeout of one qmail-queue call, milliseconds. */
  readonly queueTimeoutMs: number;
  /** How often the daemon flushes the retry spool, milliseconds. */
  readonly flushIntervalMs: number;
  /** Quarantined items older than this are removed, milliseconds. */
  readonly quarantineExpireMs: number;
  /** Where the store is: 'sqlite' ($NQQUEUE_HOME/store.sqlite) or a postgres:// URL shared by several hosts. */
  readonly store: string;
  /** A file holding the PostgreSQL password (readable by NQqueue's user only); absent: libpq's PG* variables. */
  readonly storePasswordFile: string | undefined;
  /** Timeout of connecting to the store and of each query on it (PostgreSQL), milliseconds. */
  readonly storeTimeoutMs: number;
  /** Extra directories third-party plugins are loaded from, in order. */
  readonly pluginDirs: readonly string[];
  /** The host name in the trace header (default: control/me, else the system's). */
  readonly hostname: string | undefined;
  readonly logFormat: 'text' | 'json';
  /** Where `nqqueue serve` answers /metrics (undefined: nowhere). */
  readonly metrics: MetricsListen | undefined;
  /** Rollups older than this are pruned, milliseconds. */
  readonly metricsHistoryMs: number;
  /** Whether each message appends its record to the journal. */
  readonly metricsJournal: boolean;
  /** qmail's extension separator for routing lookups ('-' by default; '' when none). */
  readonly extensionSeparator: string;
  /** Problems found in the file; their lines are left out of these settings. Empty when the file is right. */
  readonly problems: readonly ConfigProblem[];
  section(name: string): SettingsSection;
  /** Every `[section]` the file has, in the order first written. */
  sections(): readonly SettingsSection[];
}

interface KeySpec {
  readonly doc: string;
  readonly default: string;
  readonly parse: (v: string) => unknown;
  readonly list?: boolean;
}

export class SettingsError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'SettingsError';
  }
}

export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new Error(`not a duration: ${JSON.stringify(v)} (use e.g. 30, 30s, 500ms, 2m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000;
  if (!(ms > 0) || ms > 86_400_000) throw new Error(`duration out of range: ${v}`);
  return Math.round(ms);
}

/** A duration as it would be written (2000 → 2s, 60000 → 60s, 1500 → 1500ms): what parseDuration reads back as `ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms <= 0) throw new RangeError(`not a duration in milliseconds: ${ms}`);
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function parseSize(v: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v.trim());
  if (!m) throw new Error(`not a size: ${JSON.stringify(v)} (use e.g. 512000, 500K, 20M)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

/**
 * A plugin's `maxsize`: messages over it are not scanned. 0 is refused: elsewhere it often means "no
 * limit", here it would mean "scan nothing" — every message accepted unscanned, in silence.
 */
export function parseMaxsize(v: string): number {
  const n = parseSize(v);
  if (n === 0) throw new Error('0 would leave every message unscanned (for no limit, leave maxsize out or give a size larger than any message, e.g. 100M)');
  return n;
}

function parseCount(min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v.trim())) throw new Error(`not a whole number: ${JSON.stringify(v)}`);
    const n = Number(v);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}`);
    return n;
  };
}

export function parsePolicy(v: string): FailurePolicy {
  if (v === 'tempfail' || v === 'accept' || v === 'reject') return v;
  throw new Error(`must be tempfail, accept or reject, not ${JSON.stringify(v)}`);
}

function parseAbsolutePath(v: string): string {
  if (!v.startsWith('/')) throw new Error(`must be an absolute path: ${JSON.stringify(v)}`);
  return v;
}

/** The `store` setting: `sqlite`, or a postgres:// URL with a database and no password in it. */
export function parseStoreUrl(v: string): string {
  if (v === 'sqlite') return v;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new Error(`must be sqlite or a postgres://USER@HOST:PORT/DATABASE URL, not ${JSON.stringify(redactUrl(v).slice(0, 80))}`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`must be sqlite or a postgres:// URL, not a ${u.protocol.replace(/:$/, '')}: URL`);
  // A password in nqqueue.conf would be in every backup and every check-config paste.
  if (u.password) throw new Error('the URL holds a password: put it in a file named by store_password_file (mode 0600), or in PGPASSWORD, and leave it out of the URL');
  for (const name of u.searchParams.keys()) {
    if (/password/i.test(name)) throw new Error(`the URL holds a password (${name}=): put it in a file named by store_password_file (mode 0600), or in PGPASSWORD, and leave it out of the URL`);
  }
  if (u.pathname === '' || u.pathname === '/') throw new Error(`names no database: ${JSON.stringify(redactUrl(v).slice(0, 80))} (write postgres://USER@HOST/DATABASE)`);
  return v;
}

/** Every global key, its default and its meaning: the documentation of the settings file. */
export const GLOBAL_KEYS: Readonly<Record<string, KeySpec>> = {
  deadline: { doc: 'whole-message deadline, delivery included; past it the message is deferred (71), or once a copy is queued the rest is spooled', default: '240s', parse: parseDuration },
  timeout: { doc: 'default timeout of one plugin run (a plugin section or PARAMS may override)', default: '60s', parse: parseDuration },
  onerror: { doc: 'default failure policy of a plugin: tempfail, accept or reject', default: 'tempfail', parse: parsePolicy },
  concurrency: {
    doc: "recipients whose per-user chains run at the same time: a number, or auto: as many as their plugins' backends take at once (rspamd 32, 8 for most)",
    default: 'auto',
    parse: (v) => (v.trim() === 'auto' ? 'auto' : parseCount(1, 1024)(v)),
  },
  spill: { doc: 'messages larger than this are kept in a private file instead of memory', default: '1M', parse: parseSize },
  spill_total: {
    doc: '`nqqueue serve`: the bytes all messages in flight may hold in memory together; past it a message is kept in a private file however small it is',
    default: '16M',
    parse: parseSize,
  },
  max_recipients: { doc: 'messages with more recipients are refused (11)', default: '10000', parse: parseCount(1, 10000) },
  queue_timeout: { doc: 'timeout of one qmail-queue call', default: '120s', parse: parseDuration },
  flush_interval: { doc: 'how often `nqqueue serve` delivers what the retry spool holds (also once at start)', default: '5m', parse: parseDuration },
  quarantine_expire: { doc: 'quarantined items older than this are removed (by `nqqueue serve`, or `nqqueue quarantine expire` from cron)', default: '30d', parse: parseAge },
  store: {
    doc: 'where the store is: sqlite (the embedded default, $NQQUEUE_HOME/store.sqlite) or postgres://USER@HOST:PORT/DB for one store shared by several MX hosts (no password in it: store_password_file, or libpq variables such as PGPASSWORD)',
    default: 'sqlite',
    parse: parseStoreUrl,
  },
  store_password_file: { doc: 'a file whose first line is the PostgreSQL password; it must be readable by NQqueue\'s user only (mode 0600 or 0400)', default: '', parse: parseAbsolutePath },
  store_timeout: { doc: 'timeout of connecting to a PostgreSQL store and of each query on it; past it what needed the store is deferred', default: '5s', parse: parseDuration },
  plugin_dir: { doc: 'a directory third-party plugins are loaded from (repeat for several)', default: '', parse: parseAbsolutePath, list: true },
  hostname: { doc: 'host name in the trace header (default: control/me, else the system host name)', default: '', parse: (v) => v },
  extension_separator: {
    doc: 'the character that starts a qmail address extension (alice-lists@ falls back to alice@); none: no fallback',
    default: '-',
    parse: (v) => {
      if (v === 'none') return '';
      if (!/^[!-~]$/.test(v) || /[a-zA-Z0-9@]/.test(v)) throw new Error(`must be one punctuation character such as - or +, or none, not ${JSON.stringify(v)}`);
      return v;
    },
  },
  metrics: {
    doc: '`nqqueue serve` answers Prometheus scrapes at http://HOST:PORT/metrics; a loopback HOST:PORT, or `HOST:PORT public` for any other address; off (the default): no listener',
    default: 'off',
    parse: parseMetricsListen,
  },
  metrics_history: { doc: 'per-minute statistics rollups older than this are removed from the store', default: '30d', parse: parseAge },
  metrics_journal: {
    doc: 'yes: each message appends a short record to $NQQUEUE_HOME/metrics/ that `nqqueue serve` and `nqqueue web` count and roll up (removed once read); no: nothing is counted',
    default: 'yes',
    parse: (v) => {
      if (v !== 'yes' && v !== 'no') throw new Error('must be yes or no');
      return v === 'yes';
    },
  },
  log_format: {
    doc: 'text or json',
    default: 'text',
    parse: (v) => {
      if (v !== 'text' && v !== 'json') throw new Error('must be text or json');
      return v;
    },
  },
};

interface CommonKeySpec {
  readonly doc: string;
  /** The value in effect when neither the line nor the section sets it, as written. */
  readonly default: string;
  readonly parse: (v: string) => unknown;
}

/**
 * Keys every plugin takes (in its section and as PARAMS), validated here; plugins validate the rest in
 * `configure`. Their meaning is the documentation of nqqueue.conf(5) and nqqueue-plugins(7).
 */
export const COMMON_PLUGIN_KEYS: Readonly<Record<string, CommonKeySpec>> = {
  timeout: { doc: 'how long one run of the plugin may take; past it the run is stopped and the failure policy (onerror) decides', default: `the global timeout (${GLOBAL_KEYS.timeout!.default})`, parse: parseDuration },
  onerror: {
    doc: 'what a run that fails, times out or loses its backend yields: tempfail (defer the message, 71), accept (as if the plugin had not run) or reject',
    default: `the global onerror (${GLOBAL_KEYS.onerror!.default})`,
    parse: parsePolicy,
  },
  maxsize: {
    doc: 'messages larger than this are not given to the plugin, and the log says so; 0 is refused (it would scan nothing): leave it out for no limit',
    default: 'none (no limit), unless the plugin has its own (nqqueue-plugins(7))',
    parse: parseMaxsize,
  },
};

interface RawEntry {
  readonly value: string;
  readonly line: number;
}

class Section implements SettingsSection {
  readonly byKey = new Map<string, RawEntry[]>();
  readonly ordered: SettingsEntry[] = [];
  constructor(
    readonly name: string,
    readonly line: number,
  ) {}
  add(key: string, value: string, line: number): void {
    const list = this.byKey.get(key) ?? [];
    list.push({ value, line });
    this.byKey.set(key, list);
    this.ordered.push(Object.freeze({ key, value, line }));
  }
  get(key: string): string | undefined {
    const e = this.byKey.get(key);
    return e?.[e.length - 1]?.value;
  }
  all(key: string): readonly string[] {
    return (this.byKey.get(key) ?? []).map((e) => e.value);
  }
  keys(): readonly string[] {
    return [...this.byKey.keys()];
  }
  entries(): readonly SettingsEntry[] {
    return this.ordered;
  }
}

const SECTION_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
const KEY_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** A name written with capitals that would be right in lower case. */
function caseHint(name: string, valid: RegExp): string {
  return name !== name.toLowerCase() && valid.test(name.toLowerCase()) ? ` (names are lower-case: ${name.toLowerCase()})` : '';
}

/**
 * Parse settings text, collecting every problem (file:line) instead of stopping at the first; a line
 * with a problem is left out. Plugin sections are checked against what each plugin declares elsewhere
 * (plugin-api/check-params.ts): here only their syntax and the keys every plugin takes.
 */
export function parseSettingsFile(text: string, file: string, hostnameFallback?: string, skip?: ReadonlySet<number>): Settings {
  const problems: ConfigProblem[] = [];
  const global = new Section('', 0);
  const sections = new Map<string, Section>();
  let current: Section | undefined = global;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const problem = (message: string) => problems.push({ file, line: lineNo, message });
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#') || skip?.has(lineNo)) continue;
    const sec = /^\[([^\]]*)\]$/.exec(line);
    if (sec) {
      const name = sec[1]!.trim();
      if (!SECTION_NAME.test(name)) {
        problem(`invalid section name [${name}]${caseHint(name, SECTION_NAME)}`);
        current = undefined; // its lines belong to no plugin: not checked further
        continue;
      }
      current = sections.get(name) ?? new Section(name, lineNo);
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) {
      problem(`expected "key = value", got ${JSON.stringify(line)}`);
      continue;
    }
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!KEY_NAME.test(key)) {
      problem(`invalid key ${JSON.stringify(key)}${caseHint(key, KEY_NAME)}`);
      continue;
    }
    if (current === undefined) continue;
    if (current === global) {
      const spec = GLOBAL_KEYS[key];
      if (!spec) {
        const hint = didYouMean(key, Object.keys(GLOBAL_KEYS));
        problem(`unknown setting "${key}"${hint || ' (plugin settings go in a [plugin] section)'}`);
        continue;
      }
      if (!spec.list && global.byKey.has(key)) {
        problem(`"${key}" is set twice (first on line ${global.byKey.get(key)![0]!.line})`);
        continue;
      }
      try {
        spec.parse(value);
      } catch (err) {
        problem(`${key}: ${(err as Error).message}`);
        continue;
      }
    } else {
      const check = Object.hasOwn(COMMON_PLUGIN_KEYS, key) ? COMMON_PLUGIN_KEYS[key]!.parse : undefined;
      if (check === undefined && value === '') {
        problem(`"${key}" has no value`);
        continue;
      }
      if (check) {
        try {
          check(value);
        } catch (err) {
          problem(`${key}: ${(err as Error).message}`);
          continue;
        }
      }
    }
    current.add(key, value, lineNo);
  }
  return build(global, sections, file, hostnameFallback, problems);
}

/** Parse settings text; throws SettingsError (file:line) on the first problem. */
export function parseSettings(text: string, file: string, hostnameFallback?: string): Settings {
  const settings = parseSettingsFile(text, file, hostnameFallback);
  const first = settings.problems[0];
  if (first) throw new SettingsError(first.file, first.line, first.message);
  return settings;
}

function build(
  global: Section,
  sections: Map<string, Section>,
  file: string | undefined,
  hostnameFallback: string | undefined,
  problems: readonly ConfigProblem[],
): Settings {
  const val = <T>(key: string): T => GLOBAL_KEYS[key]!.parse(global.get(key) ?? GLOBAL_KEYS[key]!.default) as T;
  const empty = new Section('', 0);
  const hostname = global.get('hostname') || hostnameFallback || undefined;
  const settings: Settings = {
    file,
    deadlineMs: val<number>('deadline'),
    pluginTimeoutMs: val<number>('timeout'),
    onerror: val<FailurePolicy>('onerror'),
    concurrency: val<number | 'auto'>('concurrency'),
    spillBytes: val<number>('spill'),
    spillTotalBytes: val<number>('spill_total'),
    maxRecipients: val<number>('max_recipients'),
    queueTimeoutMs: val<number>('queue_timeout'),
    flushIntervalMs: val<number>('flush_interval'),
    quarantineExpireMs: val<number>('quarantine_expire'),
    store: val<string>('store'),
    storePasswordFile: global.get('store_password_file') || undefined,
    storeTimeoutMs: val<number>('store_timeout'),
    pluginDirs: Object.freeze([...global.all('plugin_dir')]),
    hostname,
    logFormat: val<'text' | 'json'>('log_format'),
    metrics: val<MetricsListen | undefined>('metrics'),
    metricsHistoryMs: val<number>('metrics_history'),
    metricsJournal: val<boolean>('metrics_journal'),
    extensionSeparator: val<string>('extension_separator'),
    problems: Object.freeze([...problems]),
    section: (name: string) => sections.get(name) ?? empty,
    sections: () => [...sections.values()],
  };
  return Object.freeze(settings);
}

/** All defaults: what an empty or missing settings file gives. */
export function defaultSettings(hostnameFallback?: string): Settings {
  return build(new Section('', 0), new Map(), undefined, hostnameFallback, []);
}

/**
 * Read the settings file of a control directory; a missing file means all defaults (a missing control
 * directory is reported by its own check). Problems in the file come back in `problems`; a file that
 * cannot be read throws SettingsError.
 */
export function loadSettings(controlDir: string, skip?: ReadonlySet<number>): Settings {
  const file = join(controlDir, SETTINGS_FILE);
  const me = readFirstLine(join(controlDir, 'me'));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const broken = danglingLink(file);
      if (broken) throw new SettingsError(file, 0, broken);
      return defaultSettings(me);
    }
    throw new SettingsError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  return parseSettingsFile(text, file, me, skip);
}

function readFirstLine(file: string): string | undefined {
  try {
    const line = readFileSync(file, 'utf8').split('\n', 1)[0]!.trim();
    return line === '' ? undefined : line;
  } catch {
    return undefined;
  }
}
