// Sections of the settings file that belong to NQqueue's own services, not to a plugin: `[web]` (the
// console) and `[digest]` (the digest mails). Their keys, defaults and checks live here; the names are
// reserved (no plugin can be called web or digest). A key a section does not have, or a value it
// refuses, is a problem at file:line like any other in the file.

import { didYouMean } from './did-you-mean.js';
import type { ConfigProblem } from './problem.js';
import type { Settings, SettingsSection } from './settings.js';

interface ServiceKey {
  readonly doc: string;
  /** '' when the key has no default (it is then undefined). */
  readonly default: string;
  readonly parse: (v: string) => unknown;
}

/** A span of time that may be days long: 30d, 12h, 90m, 45s. */
export function parseAge(v: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(v.trim());
  if (!m) throw new Error(`not an age: ${JSON.stringify(v)} (use e.g. 30d, 12h, 90m)`);
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (!(ms > 0) || ms > 3650 * 86_400_000) throw new Error(`out of range: ${v}`);
  return ms;
}

/** `HOST:PORT` (an IP address or localhost) or an absolute Unix socket path. */
export function parseListen(v: string): { host: string; port: number } | { path: string } {
  if (v.startsWith('/')) return { path: v };
  const m = /^(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new Error(`use HOST:PORT (127.0.0.1:8025) or an absolute socket path, not ${JSON.stringify(v)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** Words separated by spaces: a program and its arguments (no shell: no quoting). */
export function parseCommandLine(v: string): string[] {
  const argv = v.trim().split(/\s+/).filter(Boolean);
  if (argv.length === 0 || !argv[0]!.startsWith('/')) throw new Error(`the program must be an absolute path: ${JSON.stringify(v)}`);
  return argv;
}

export function parseAddressList(v: string): string[] {
  const list = v
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((a) => a.toLowerCase());
  for (const a of list) if (!/^[^@\s]+@[^@\s]+$/.test(a)) throw new Error(`not a mail address: ${JSON.stringify(a)}`);
  return list;
}

/** One address: a list where one is meant would silently use its first. */
function parseOneAddress(v: string): string {
  const list = parseAddressList(v);
  if (list.length !== 1) throw new Error(`one address, not ${list.length}: ${JSON.stringify(v)}`);
  return list[0]!;
}

function parseUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(v)}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('must be an http:// or https:// URL');
  return u.href.replace(/\/?$/, '/');
}

function parseYesNo(v: string): boolean {
  if (v === 'yes') return true;
  if (v === 'no') return false;
  throw new Error('must be yes or no');
}

function parseAbsolute(v: string): string {
  if (!v.startsWith('/')) throw new Error(`must be an absolute path: ${JSON.stringify(v)}`);
  return v;
}

function parseCadence(v: string): 'never' | 'daily' | 'hourly' {
  if (v === 'never' || v === 'daily' || v === 'hourly') return v;
  throw new Error('must be never, daily or hourly');
}

/** The learners `nqqueue learn` may teach: `auto`, or some of spamassassin, rspamd, dspam. */
function parseLearners(v: string): readonly string[] | 'auto' {
  if (v.trim() === 'auto') return 'auto';
  const list = v.split(/[\s,]+/).filter(Boolean);
  if (list.length === 0) throw new Error('name at least one learner (spamassassin, rspamd, dspam), or auto');
  for (const l of list) if (l !== 'spamassassin' && l !== 'rspamd' && l !== 'dspam') throw new Error(`not a learner: ${JSON.stringify(l)} (spamassassin, rspamd, dspam, or auto)`);
  return [...new Set(list)];
}

/** Maildir++ folder names, comma-separated: `.Junk,.Spam` (a name may hold spaces, never a slash). */
function parseFolders(v: string): readonly string[] {
  const list = v
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  for (const f of list) {
    if (!/^\.[^./][^/]*$/.test(f) || f.includes('..')) throw new Error(`not a Maildir++ folder name: ${JSON.stringify(f)} (a dot and a name, like .Junk)`);
  }
  return list;
}

export const SERVICE_SECTIONS = {
  web: {
    listen: { doc: 'where the console listens: HOST:PORT on a loopback address, or a Unix socket path', default: '127.0.0.1:8025', parse: parseListen },
    checkpassword: { doc: "the checkpassword program that checks a user's mailbox password, and its arguments (e.g. /home/vpopmail/bin/vchkpw)", default: '', parse: parseCommandLine },
    admins: { doc: 'addresses of the administrators, comma-separated: they see and act on every item', default: '', parse: parseAddressList },
    url: { doc: 'the address users reach the console at (https://quarantine.example.com/): links in digests; https means Secure cookies', default: '', parse: parseUrl },
    trust_proxy: { doc: 'yes: the client address and scheme come from X-Forwarded-For / X-Forwarded-Proto of a reverse proxy on loopback', default: 'no', parse: parseYesNo },
    session: { doc: 'how long a login lasts without use', default: '8h', parse: parseAge },
    checkpassword_timeout: { doc: 'how long the checkpassword program may take to answer; past it the login is refused', default: '10s', parse: parseAge },
  },
  digest: {
    qmail_inject: { doc: 'the program digests are mailed through', default: '/var/qmail/bin/qmail-inject', parse: parseAbsolute },
    from: { doc: 'the sender of digests (default: postmaster@ the host name)', default: '', parse: parseOneAddress },
    cadence: { doc: 'the cadence of users who chose none: never, daily or hourly', default: 'daily', parse: parseCadence },
    link_ttl: { doc: 'how long a link in a digest can be used', default: '7d', parse: parseAge },
  },
  learn: {
    learners: { doc: 'the learners nqqueue learn teaches: spamassassin, rspamd, dspam (comma-separated), or auto: those named in a routing file', default: 'auto', parse: parseLearners },
    junk: { doc: 'the Maildir++ folders that mean "this is spam" (comma-separated; their subfolders too)', default: '.Junk,.Spam', parse: parseFolders },
    ignore: { doc: 'folders whose messages teach nothing (deleted mail is not a judgement): comma-separated', default: '.Trash', parse: parseFolders },
    maildirs: { doc: 'the root nqqueue serve walks for moves (a vpopmail home with domains/, or the directory of the users\' homes)', default: '', parse: parseAbsolute },
    every: { doc: 'how often nqqueue serve walks maildirs (e.g. 1h); empty: never (use cron and nqqueue learn --maildirs)', default: '', parse: parseAge },
    rspamd_controller: { doc: "rspamd's controller, where it learns (/learnspam, /learnham)", default: 'http://127.0.0.1:11334/', parse: parseUrl },
    rspamd_password: { doc: "the controller's password (its worker-controller password), sent as Password:", default: '', parse: (v: string) => v },
    timeout: { doc: 'how long one learner may take to learn one message', default: '30s', parse: parseAge },
  },
} as const satisfies Record<string, Record<string, ServiceKey>>;

export type ServiceName = keyof typeof SERVICE_SECTIONS;
type Parsed<K extends ServiceKey> = ReturnType<K['parse']>;
export type ServiceSettings<N extends ServiceName> = {
  readonly [K in keyof (typeof SERVICE_SECTIONS)[N]]: (typeof SERVICE_SECTIONS)[N][K] extends ServiceKey ? Parsed<(typeof SERVICE_SECTIONS)[N][K]> | undefined : never;
};

export function isServiceSection(name: string): name is ServiceName {
  return Object.hasOwn(SERVICE_SECTIONS, name);
}

/** Problems of a service section: unknown keys, a key given twice, values refused — at their lines. */
export function serviceSectionProblems(section: SettingsSection, file: string): ConfigProblem[] {
  const keys: Record<string, ServiceKey> = SERVICE_SECTIONS[section.name as ServiceName];
  const out: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  for (const e of section.entries()) {
    const spec = Object.hasOwn(keys, e.key) ? keys[e.key] : undefined;
    if (!spec) {
      out.push({ file, line: e.line, message: `[${section.name}] has no setting "${e.key}"${didYouMean(e.key, Object.keys(keys)) || ` (it has ${Object.keys(keys).join(', ')})`}` });
      continue;
    }
    const first = seen.get(e.key);
    if (first !== undefined) {
      out.push({ file, line: e.line, message: `[${section.name}] "${e.key}" is set twice (first on line ${first})` });
      continue;
    }
    seen.set(e.key, e.line);
    try {
      spec.parse(e.value);
    } catch (err) {
      out.push({ file, line: e.line, message: `[${section.name}] ${e.key}: ${(err as Error).message}` });
    }
  }
  return out;
}

/** A service section's values, defaults filled in; a key with no default and no value is undefined. */
export function serviceSettings<N extends ServiceName>(settings: Settings, name: N): ServiceSettings<N> {
  const section = settings.section(name);
  const keys: Record<string, ServiceKey> = SERVICE_SECTIONS[name];
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(keys)) {
    const raw = section.get(key) ?? spec.default;
    out[key] = raw === '' ? undefined : spec.parse(raw);
  }
  return Object.freeze(out) as ServiceSettings<N>;
}
