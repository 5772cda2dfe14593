// The console under test: an installation with a flagging plugin, the quarantine and a [web] section
// naming the test checkpassword program; `bin/nqqueue web` started as a separate process (on a Unix
// socket, or on 127.0.0.1 with a port it picks) and stopped by PID; and a small browser — one cookie
// jar, real HTTP requests — to talk to it.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { SPECIAL, type CheckpasswordConfig } from './checkpassword-stand-in.js';
import { NQQUEUE_BIN } from './smtpd.js';
import { pluginDir, type Setup } from './nqq.js';
import { writeNodeScript } from './stand-in.js';

export { SPECIAL };

export const USERS = {
  'alice@example.com': 'alice-secret',
  'bob@example.com': 'bob pass word',
  'admin@example.com': 'admin-pw',
} as const;

/** Flags every message with a score, as a spam filter would: the quarantine keeps it. */
const FLAGGER =
  "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, " +
  "async run() { return { verdict: 'accept', flagged: true, score: 12.3, details: { reason: 'test flag' } }; } };\n";

/** Writes the checkpassword stand-in into the setup; returns its path and its record file. */
export function makeCheckpassword(s: Setup, wrongPasswordMs = 150): { path: string; record: string } {
  const record = join(s.dir, 'checkpassword.calls');
  const path = join(s.dir, 'checkpassword');
  const config: CheckpasswordConfig = { table: USERS, record, wrongPasswordMs };
  writeNodeScript(path, pathToFileURL(join(import.meta.dirname, 'checkpassword-stand-in.js')).href, 'runCheckpassword', config);
  return { path, record };
}

export function checkpasswordCalls(record: string): string[] {
  try {
    return readFileSync(record, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export interface ConsoleOptions {
  /** Lines of the [web] section (listen and checkpassword are written unless given). */
  web?: Record<string, string>;
  /** Global lines of nqqueue.conf. */
  global?: string;
  /** More sections of nqqueue.conf, after [web] (`[digest]\ncadence = hourly\n`). */
  sections?: string;
  tcp?: boolean;
}

/** nqqueue.conf, the routing (everything for example.com is flagged and quarantined) and checkpassword. */
export function installConsole(s: Setup, o: ConsoleOptions = {}): { record: string; listen: string } {
  const cp = makeCheckpassword(s);
  const dir = pluginDir(s, { flagger: FLAGGER });
  const listen = o.tcp ? '127.0.0.1:0' : join(s.dir, 'web.sock');
  const web: Record<string, string> = { listen, checkpassword: cp.path, admins: 'admin@example.com', ...(o.web ?? {}) };
  const section = Object.entries(web)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');
  s.write('nqqueue.conf', `plugin_dir = ${dir}\nhostname = mx.example.com\n${o.global ?? ''}\n[web]\n${section}${o.sections ?? ''}`);
  s.write('nqqueue.cfb', ':flagger;quarantine=all\n');
  return { record: cp.record, listen };
}

/** A message for `to`, held by the quarantine; returns the ids `nqqueue quarantine list` shows for it. */
export async function hold(s: Setup, o: { from?: string; to: string[]; subject?: string; body?: string; headers?: string }): Promise<string[]> {
  const before = new Set(listIds(s));
  const message = `From: ${o.from ?? 'sender@client.example'}\nTo: ${o.to.join(', ')}\nSubject: ${o.subject ?? 'held message'}\n${o.headers ?? ''}\n${o.body ?? 'Hello.\n'}`;
  const r = await s.run({ from: o.from ?? 'sender@client.example', to: o.to, message });
  if (r.code !== 0) throw new Error(`the message was not accepted (${r.code}): ${r.stderr}`);
  return listIds(s).filter((id) => !before.has(id));
}

/** An item's audit entries, as `nqqueue quarantine audit --item ID` prints them: tab-separated fields. */
export function auditOf(s: Setup, id: string): string[][] {
  const r = s.command(['quarantine', 'audit', '--item', id]);
  if (r.code !== 0) throw new Error(`quarantine audit: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

export function listIds(s: Setup): string[] {
  const r = s.command(['quarantine', 'list']);
  if (r.code !== 0) throw new Error(`quarantine list: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t')[0]!);
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface WebServer {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Where it listens: a socket path, or host and port. */
  readonly target: { socketPath: string } | { host: string; port: number };
  /** Milliseconds from the start of the process to its "listening" line. */
  readonly startMs: number;
  stderr(): string;
  request(method: string, path: string, o?: { headers?: Record<string, string>; body?: string }): Promise<Answer>;
  /** SIGTERM by PID; resolves with how it ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Consoles a failed test left running are stopped when the test process ends (they would keep it alive).
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Runs `bin/nqqueue web` with the setup's environment; resolves once it listens (or rejects with its output). */
/** `inherit`: descriptors of the test process the console gets as fds 3, 4, ... (as a supervisor might leave them). */
export async function startWeb(s: Setup, extraEnv: Record<string, string> = {}, o: { inherit?: ('ignore' | number)[] } = {}): Promise<WebServer> {
  const started = Date.now();
  const child = spawn(NQQUEUE_BIN, ['web'], {
    env: { NQQUEUE_CONTROLDIR: s.control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path, ...extraEnv },
    stdio: ['ignore', 'ignore', 'pipe', ...(o.inherit ?? [])],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  // Not what keeps the test process alive: a request in flight does that.
  child.unref();
  (child.stderr as unknown as { unref(): void }).unref();
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nqqueue web did not start in 30 s: ${stderr}`)), 30_000);
    child.stderr!.on('data', (d: string) => {
      stderr += d;
      const m = /nqqueue web: listening on (\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nqqueue web exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  const where = await listening;
  const startMs = Date.now() - started;
  const target = where.startsWith('/') ? { socketPath: where } : { host: new URL(where).hostname, port: Number(new URL(where).port) };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    pid: child.pid!,
    child,
    target,
    startMs,
    stderr: () => stderr,
    request(method, path, o = {}) {
      return new Promise((resolve, reject) => {
        const body = o.body === undefined ? undefined : Buffer.from(o.body);
        const req = httpRequest(
          {
            ...target,
            method,
            path,
            headers: { host: 'console.example', ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) } : {}), ...(o.headers ?? {}) },
          },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    },
    stop() {
      child.ref();
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGTERM');
      return exited;
    },
  };
}

/** The hidden csrf field of the first form on a page. */
export function csrfOf(page: string): string {
  const m = /name="csrf" value="([^"]*)"/.exec(page);
  if (!m) throw new Error(`no csrf field on the page: ${page.slice(0, 500)}`);
  return m[1]!;
}

export function form(fields: Record<string, string | string[]>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  return p.toString();
}

/** One browser: a cookie jar over a WebServer. */
export class Browser {
  readonly cookies = new Map<string, string>();
  constructor(
    readonly server: WebServer,
    readonly headers: Record<string, string> = {},
  ) {}

  private cookieHeader(): Record<string, string> {
    return this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
  }

  private keep(a: Answer): Answer {
    for (const c of [a.headers['set-cookie'] ?? []].flat()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c) || /max-age=0/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return a;
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.keep(await this.server.request('GET', path, { headers: { ...this.headers, ...this.cookieHeader(), ...headers } }));
  }

  async post(path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Answer> {
    return this.keep(await this.server.request('POST', path, { headers: { ...this.headers, ...this.cookieHeader(), ...headers }, body: form(fields) }));
  }

  /** GET /login, then POST the form; returns the answer to the POST. */
  async login(login: string, password: string): Promise<Answer> {
    const page = await this.get('/login');
    return this.post('/login', { csrf: csrfOf(page.body), login, password });
  }

  /** The csrf token of the session (from the list page). */
  async csrf(): Promise<string> {
    return csrfOf((await this.get('/')).body);
  }
}
