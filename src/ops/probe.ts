// `nqqueue check-config --probe [--user NAME] [--env NAME=VALUE ...]`: check, as the user qmail-smtpd
// runs as, everything a message will need — the control directory and rcpthosts, the home, the
// qmail-queue program, each plugin directory, every backend named in the settings file or a routing
// file (connected to and pinged: clamd PING, spamd PING, rspamd /ping, dspam --version), and the
// process limits. One line per problem, each with its fix; exit 1 on any.
//
// The backend pings are the clients' own (ClamdClient, SpamdClient, RspamdClient `ping`), one client per
// address so each address is reported on its own.

import { execFile } from 'node:child_process';
import { accessSync, closeSync, constants, lstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { ClamdClient } from '../clients/clamd.js';
import { RspamdClient } from '../clients/rspamd.js';
import { SpamdClient } from '../clients/spamd.js';
import type { PluginRef } from '../config/cfb.js';
import { readCfb } from '../config/routing.js';
import { loadSettings, type Settings } from '../config/settings.js';
import { describeError } from '../errors.js';
import { checkPermissions, configurePlugin, PluginRegistry } from '../plugin-api/load.js';
import type { Stage } from '../pipeline/types.js';
import { pathsFrom, type Paths } from '../queue/services.js';
import { checkLimits, readLimits } from './limits.js';
import { becomeHomeOwner, describeUid, OwnerError, switchTo, userByName, userByUid } from './owner.js';

const PREFIX = 'nqqueue check-config --probe:';

export interface ProbeOptions {
  /** The user to check as (root switches to it); default: the owner of the home, else the current user. */
  readonly user: string | undefined;
  /** Variables a tcprules line would set (NQQUEUE_*, NQQFILE ...), over this process's environment. */
  readonly env: Readonly<Record<string, string>>;
}

interface Who {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
  /** `user:group` for chown in a fix. */
  readonly owner: string;
}

/** The name of a group (from /etc/group), or its number. */
export function groupName(gid: number): string {
  try {
    for (const line of readFileLines('/etc/group')) {
      const f = line.split(':');
      if (f[2] === String(gid)) return f[0]!;
    }
  } catch {
    // no /etc/group: the number will do
  }
  return String(gid);
}

function readFileLines(path: string): string[] {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8').split('\n');
  } finally {
    closeSync(fd);
  }
}

function who(): Who {
  const uid = process.geteuid!();
  const gid = process.getegid!();
  const name = userByUid(uid)?.name ?? `uid ${uid}`;
  return { uid, gid, name, owner: `${userByUid(uid)?.name ?? uid}:${groupName(gid)}` };
}

/** Become the user to check as. Returns a problem text when that is not possible. */
function becomeUser(opts: ProbeOptions, home: string): string | undefined {
  const root = process.geteuid?.() === 0;
  if (opts.user === undefined) {
    if (root) becomeHomeOwner(home);
    return undefined;
  }
  const entry = userByName(opts.user);
  if (!entry) return `--user ${opts.user}: no such user in /etc/passwd; fix: name the user qmail-smtpd runs as (e.g. qmaild)`;
  if (process.geteuid?.() === entry.uid) return undefined;
  if (!root) return `--user ${opts.user}: only root can check as another user; fix: run the probe as root, or as ${opts.user}`;
  switchTo(entry.uid, entry.gid, entry.name);
  return undefined;
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? describeError(err);
}

function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

function checkControl(paths: Paths, me: Who, problem: (l: string) => void): void {
  const dir = paths.controlDir;
  try {
    readdirSync(dir);
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT') problem(`control directory ${dir} does not exist; fix: set NQQUEUE_CONTROLDIR to qmail's control directory (/var/qmail/control)`);
    else problem(`control directory ${dir} cannot be listed by ${me.name} (${code}); fix: chmod 755 ${dir} (and its parents)`);
    return;
  }
  const rcpthosts = join(dir, 'rcpthosts');
  try {
    closeSync(openSync(rcpthosts, 'r'));
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT') problem(`${rcpthosts} is missing: no recipient would be local; fix: list your domains in ${rcpthosts}, one a line (qmail-smtpd needs it too)`);
    else problem(`${rcpthosts} cannot be read by ${me.name} (${code}); fix: chmod 644 ${rcpthosts}`);
  }
}

// The store's files too: one left by root would defer every message to be quarantined.
const HOME_PARTS = ['tmp', 'spool', 'spool/tmp', 'spool/new', 'spool/cur', 'quarantine', 'quarantine/tmp', 'store.sqlite', 'store.sqlite-wal', 'store.sqlite-shm'];

function checkHome(paths: Paths, me: Who, problem: (l: string) => void): void {
  const home = paths.home;
  let st;
  try {
    st = lstatSync(home);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') {
      problem(`home ${home} cannot be examined by ${me.name} (${errCode(err)}); fix: chmod 755 ${dirname(home)}`);
      return;
    }
    // Created on first use, 0700, by the user who needs it — when its parent lets that user.
    if (!canAccess(dirname(home), constants.W_OK | constants.X_OK)) {
      problem(`home ${home} does not exist and ${me.name} cannot create it in ${dirname(home)}; fix: install -d -m 0700 -o ${me.owner.replace(':', ' -g ')} ${home}`);
    }
    return;
  }
  if (st.isSymbolicLink() || !st.isDirectory()) {
    problem(`home ${home} is not a directory (symlinks are refused); fix: rm ${home} && install -d -m 0700 -o ${me.owner.replace(':', ' -g ')} ${home}`);
    return;
  }
  if (st.uid !== me.uid) {
    problem(`home ${home} belongs to ${describeUid(st.uid)}, not to ${me.name} (uid ${me.uid}); fix: chown -R ${me.owner} ${home}`);
    return;
  }
  if ((st.mode & 0o777) !== 0o700) {
    problem(`home ${home} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, not 0700; fix: chmod 0700 ${home}`);
  }
  if (!canAccess(home, constants.W_OK | constants.X_OK)) {
    problem(`home ${home} is not writable by ${me.name}; fix: chmod 0700 ${home}`);
  }
  for (const part of HOME_PARTS) {
    const p = join(home, part);
    try {
      const s = lstatSync(p);
      if (s.uid !== me.uid) problem(`${p} belongs to ${describeUid(s.uid)}, not to ${me.name} (uid ${me.uid}); fix: chown -R ${me.owner} ${home}`);
    } catch {
      // not made yet: made on first use
    }
  }
}

/** Whether a program is a `#!` script (an interpreter must read it), read before switching users. */
function isScript(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(2);
      return readSync(fd, b, 0, 2, 0) === 2 && b.toString('latin1') === '#!';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

function checkQmailQueue(path: string, script: boolean, me: Who, problem: (l: string) => void): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT') problem(`qmail-queue ${path} does not exist; fix: set NQQUEUE_QMAILQUEUE to the real qmail-queue (/var/qmail/bin/qmail-queue)`);
    else problem(`qmail-queue ${path} cannot be reached by ${me.name} (${code}); fix: chmod 755 the directories above it`);
    return;
  }
  if (!st.isFile()) {
    problem(`qmail-queue ${path} is not a file; fix: set NQQUEUE_QMAILQUEUE to the real qmail-queue (/var/qmail/bin/qmail-queue)`);
    return;
  }
  if (!canAccess(path, constants.X_OK)) {
    problem(`qmail-queue ${path} is not executable by ${me.name}; fix: chmod 755 ${path} (qmail's own is 4711 qmailq)`);
    return;
  }
  if (script && !canAccess(path, constants.R_OK)) {
    problem(`qmail-queue ${path} is a script ${me.name} cannot read (its interpreter must); fix: chmod 755 ${path}`);
  }
}

/** The QMAILQUEUE a tcprules line names (when given): NQqueue's program, runnable by that user. */
function checkQmailqueueVar(qmailqueue: string | undefined, paths: Paths, me: Who, problem: (l: string) => void): void {
  if (qmailqueue === undefined || qmailqueue === '') return;
  if (!qmailqueue.startsWith('/')) {
    problem(`QMAILQUEUE ${qmailqueue} is not an absolute path (qmail runs it with no PATH search); fix: QMAILQUEUE="/opt/nqqueue/bin/nqqueue" in the tcprules`);
    return;
  }
  if (!canAccess(qmailqueue, constants.X_OK)) {
    problem(`QMAILQUEUE ${qmailqueue} is not executable by ${me.name} (qmail-smtpd would answer "451 unable to exec qq"); fix: chmod 755 ${qmailqueue} and the directories above it`);
    return;
  }
  if (qmailqueue.endsWith('/nqqueue-qq')) {
    let listening = false;
    try {
      listening = statSync(join(paths.home, 'nqqueue.sock')).isSocket();
    } catch {
      // not running
    }
    if (!listening) process.stderr.write(`${PREFIX} note: QMAILQUEUE is nqqueue-qq but no nqqueue serve listens on ${join(paths.home, 'nqqueue.sock')}: every message takes the standalone fallback\n`);
  }
}

function checkPluginDirs(settings: Settings, me: Who, problem: (l: string) => void): number {
  for (const dir of settings.pluginDirs) {
    try {
      readdirSync(dir);
    } catch (err) {
      problem(`plugin_dir ${dir} cannot be listed by ${me.name} (${errCode(err)}); fix: chmod 755 ${dir}`);
      continue;
    }
    try {
      checkPermissions(dir);
    } catch (err) {
      const fix = /writable/.test((err as Error).message) ? `chmod go-w ${dir}` : `chown root ${dir}`;
      // The loader's text names the mode, the owner and the user; its own hint gives way to the fix.
      const why = (err as Error).message.replace(/ \((?:chmod go-w [^)]*|its owner could change[^)]*)\)$/, '');
      problem(`plugin_dir ${why}; fix: ${fix}`);
    }
  }
  return settings.pluginDirs.length;
}

type Service = 'clamd' | 'spamd' | 'rspamd' | 'dspam';

interface Backend {
  readonly service: Service;
  readonly address: string;
  readonly where: string[];
}

const BACKEND_PLUGINS: Readonly<Record<string, Service>> = { clamav: 'clamd', spamassassin: 'spamd', rspamd: 'rspamd', dspam: 'dspam' };

const FIX: Readonly<Record<Service, string>> = {
  clamd: "start clamd, or set socket=/host= (the plugin's PARAMS or [clamav] in nqqueue.conf) to its LocalSocket or TCPAddr:TCPSocket",
  spamd: 'start spamd, or set host= ([spamassassin] in nqqueue.conf or PARAMS) to its --listen address',
  rspamd: "start rspamd, or set url= ([rspamd] in nqqueue.conf or PARAMS) to its normal worker, e.g. http://127.0.0.1:11333",
  dspam: 'install dspam, or set bin= ([dspam] in nqqueue.conf or PARAMS) to the dspam program',
};

function addressesOf(service: Service, config: unknown): string[] {
  const c = config as { client?: { endpoints?: readonly { text: string }[]; urls?: readonly string[] }; bin?: string };
  if (service === 'dspam') return c.bin ? [c.bin] : [];
  if (service === 'rspamd') return [...(c.client?.urls ?? [])];
  return (c.client?.endpoints ?? []).map((e) => e.text);
}

/** Every backend address the settings file and the routing files name, with where each is named. */
async function collectBackends(paths: Paths, settings: Settings): Promise<Backend[]> {
  const found = new Map<string, Backend>();
  const registry = new PluginRegistry(settings.pluginDirs);
  const add = async (ref: PluginRef, stage: Stage | undefined, where: string) => {
    const service = BACKEND_PLUGINS[ref.name];
    if (!service) return;
    let configured;
    try {
      const { def } = await registry.load(ref.name);
      configured = await configurePlugin(registry, ref, stage ?? def.stages[0]!, settings);
    } catch {
      return; // a configuration error: the checks before the probe report it with file:line
    }
    for (const address of addressesOf(service, configured.config)) {
      const key = `${service} ${address}`;
      const b = found.get(key) ?? { service, address, where: [] };
      if (!b.where.includes(where)) b.where.push(where);
      found.set(key, b);
    }
  };
  for (const name of Object.keys(BACKEND_PLUGINS)) {
    if (settings.section(name).keys().length > 0) await add({ name, params: '', items: [] }, undefined, `${settings.file ?? 'nqqueue.conf'} [${name}]`);
  }
  let names: string[] = [];
  try {
    names = readdirSync(paths.controlDir).filter((n) => n.endsWith('.cfb')).sort();
  } catch {
    // reported by the control directory check
  }
  for (const name of names) {
    let cfb;
    try {
      cfb = readCfb(join(paths.controlDir, name));
    } catch {
      continue;
    }
    for (const line of cfb?.lines ?? []) {
      for (const ref of line.plugins) await add(ref, name === 'general.cfb' ? 'general' : 'per-user', `${name}:${line.line}`);
    }
  }
  return [...found.values()];
}

const PING_TIMEOUTS = { connectTimeoutMs: 2_000, readTimeoutMs: 5_000 };

/** Why a Unix socket path cannot be a socket, said before connecting (connect only says ECONNREFUSED). */
function socketPathProblem(path: string, me: Who): string | undefined {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = errCode(err);
    return code === 'ENOENT' ? `no such socket (nothing is listening there)` : `cannot reach it as ${me.name} (${code})`;
  }
  if (!st.isSocket()) return `it is not a socket (${st.isFile() ? 'a regular file' : st.isDirectory() ? 'a directory' : 'not a socket'})`;
  return undefined;
}

function pingDspam(bin: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(bin, ['--version'], { timeout: 5_000, env: {}, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (err) resolve(`${bin} --version failed: ${describeError(err)}`);
      else if (!/dspam/i.test(stdout)) resolve(`${bin} --version did not say DSPAM (${JSON.stringify(stdout.slice(0, 80))}): is it dspam?`);
      else resolve(undefined);
    });
  });
}

/** One backend: connect and a protocol-level ping. Resolves with the problem, or undefined when it answered. */
async function pingBackend(b: Backend, me: Who): Promise<string | undefined> {
  if (b.service === 'dspam') return pingDspam(b.address);
  if ((b.service === 'clamd' || b.service === 'spamd') && b.address.startsWith('/')) {
    const why = socketPathProblem(b.address, me);
    if (why) return why;
    if (!canAccess(b.address, constants.W_OK)) {
      return `${me.name} may not connect to it (EACCES)${b.service === 'clamd' ? '; fix: LocalSocketGroup (a group of ' + me.name + ') and LocalSocketMode 660 in clamd.conf, or LocalSocketMode 666' : ''}`;
    }
  }
  const signal = AbortSignal.timeout(10_000);
  try {
    if (b.service === 'clamd') await new ClamdClient({ addresses: [b.address], ...PING_TIMEOUTS }).ping({ signal });
    else if (b.service === 'spamd') await new SpamdClient({ addresses: [b.address], ...PING_TIMEOUTS }).ping({ signal });
    else {
      const client = new RspamdClient({ urls: [b.address], ...PING_TIMEOUTS });
      try {
        await client.ping({ signal });
      } finally {
        client.close();
      }
    }
    return undefined;
  } catch (err) {
    const text = describeError(err).replace(/^\w+: cannot connect to any address \(([^)]*)\)$/, 'cannot connect: $1');
    return text.replace(new RegExp(`^${b.service} ${b.address.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `), '');
  }
}

/**
 * One address of a backend, pinged as the current user (what `nqqueue init` looks for): resolves with
 * why it did not answer, or undefined when it did.
 */
export function pingAddress(service: 'clamd' | 'spamd' | 'rspamd', address: string): Promise<string | undefined> {
  return pingBackend({ service, address, where: [] }, who());
}

/**
 * The probe. `checkConfig` is check-config's own validation (every file:line problem), run after the
 * switch so it reads every file as the user qmail-smtpd runs as. Returns the exit code.
 */
export async function probe(opts: ProbeOptions, baseEnv: NodeJS.ProcessEnv, checkConfig: (env: NodeJS.ProcessEnv) => Promise<number>): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...baseEnv, ...opts.env };
  const problems: string[] = [];
  const problem = (line: string) => {
    problems.push(line);
    process.stderr.write(`${PREFIX} ${line}\n`);
  };
  let paths: Paths;
  try {
    paths = pathsFrom(env);
  } catch (err) {
    problem(`${describeError(err)}; fix: give it an absolute path`);
    return 1;
  }
  const script = isScript(paths.qmailQueue);
  try {
    const refused = becomeUser(opts, paths.home);
    if (refused) {
      problem(refused);
      return 1;
    }
  } catch (err) {
    problem(err instanceof OwnerError ? `${err.message}` : `cannot switch user: ${describeError(err)}`);
    return 1;
  }
  const me = who();
  if (me.uid === 0) process.stderr.write(`${PREFIX} note: checking as root, who can read everything; qmail-smtpd runs as qmaild: use --user qmaild\n`);

  const configCode = await checkConfig(env);
  checkControl(paths, me, problem);
  checkHome(paths, me, problem);
  checkQmailQueue(paths.qmailQueue, script, me, problem);
  checkQmailqueueVar(env.QMAILQUEUE, paths, me, problem);
  let settings: Settings | undefined;
  try {
    settings = loadSettings(paths.controlDir);
  } catch {
    // reported by the configuration check with file:line
  }
  const pluginDirs = settings ? checkPluginDirs(settings, me, problem) : 0;
  const backends = settings ? await collectBackends(paths, settings) : [];
  const answers = await Promise.all(backends.map((b) => pingBackend(b, me)));
  backends.forEach((b, i) => {
    const why = answers[i];
    // A reason that carries its own fix keeps it; the others get the service's.
    if (why) problem(`${b.service} ${b.address} (${b.where.join(', ')}): ${why}${/; fix: /.test(why) ? '' : `; fix: ${FIX[b.service]}`}`);
  });
  for (const line of checkLimits(readLimits(), process.versions.node)) problem(line);

  if (problems.length > 0 || configCode !== 0) {
    process.stderr.write(`${PREFIX} ${problems.length} problem${problems.length === 1 ? '' : 's'} as ${me.name}${configCode !== 0 ? ' (and the configuration problems above)' : ''}\n`);
    return 1;
  }
  const list = backends.map((b) => `${b.service} ${b.address}`).join(', ');
  process.stdout.write(
    `${PREFIX} all good as ${me.name} (uid ${me.uid}): control directory, rcpthosts, home ${paths.home}, qmail-queue ${paths.qmailQueue}, ` +
      `${pluginDirs} plugin director${pluginDirs === 1 ? 'y' : 'ies'}, ${backends.length} backend${backends.length === 1 ? '' : 's'}${list ? ` (${list})` : ''} answered\n`,
  );
  return 0;
}
