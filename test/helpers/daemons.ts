// Real clamd, spamd and rspamd for the tests: each started in the foreground from the project's own
// config templates (test/daemons/), in a fresh temp dir, on 127.0.0.1 free ports or Unix sockets,
// and stopped by the PID started. startDaemons() runs once per suite (scripts/run-tests.js) and hands
// the addresses to the test processes as NQQ_TEST_* variables; tests may start private instances.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  accessSync,
  chmodSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The variables startDaemons() sets for the test processes. */
export type DaemonVar =
  | 'NQQ_TEST_CLAMD_SOCKET'
  | 'NQQ_TEST_CLAMD_TCP'
  | 'NQQ_TEST_SPAMD'
  | 'NQQ_TEST_RSPAMD_URL'
  | 'NQQ_TEST_RSPAMD_CONTROLLER'
  | 'NQQ_TEST_RSPAMD_PASSWORD'
  | 'NQQ_TEST_REDIS_SOCKET';

export interface DaemonSet {
  /** NQQ_TEST_* variables of the daemons that run (a missing daemon's variables are absent). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export interface Daemon {
  readonly name: 'clamd' | 'spamd' | 'rspamd';
  readonly pid: number;
  /** The instance's temp dir (config, sockets, logs); removed by stop(). */
  readonly dir: string;
  /** NQQ_TEST_* variables pointing at this instance. */
  readonly env: Readonly<Record<string, string>>;
  /** Milliseconds from spawn to the first good answer. */
  readonly startMs: number;
  /** Whether the process is still running. */
  running(): boolean;
  /** SIGTERM, SIGKILL after a grace period, then remove the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

export interface ClamdDaemon extends Daemon {
  /** Unix socket path. */
  readonly socket: string;
  /** `127.0.0.1:PORT` */
  readonly tcp: string;
}

export interface SpamdDaemon extends Daemon {
  /** `127.0.0.1:PORT` */
  readonly address: string;
}

export interface RspamdDaemon extends Daemon {
  /** `http://127.0.0.1:PORT` of the normal (scanning) worker. */
  readonly url: string;
  readonly controllerUrl: string;
  /** The controller's password (learning needs it). */
  readonly controllerPassword: string;
  /** The Unix socket of the Redis its Bayes statistics live in (started and stopped with it). */
  readonly redisSocket: string;
}

/** The test rspamd controller's password (test/daemons/rspamd/override.d/worker-controller.inc). */
export const RSPAMD_CONTROLLER_PASSWORD = 'nqq-test-controller';

export interface SpamdStartOptions {
  /** Let it learn: --allow-tell, Bayes on, and 1 spam + 1 ham enough for Bayes to score. */
  readonly learn?: boolean;
}

export interface ClamdStartOptions {
  /** clamd StreamMaxLength (e.g. '100K'); default '50M'. */
  readonly streamMaxLength?: string;
}

/** Thrown when a daemon's program is not installed. */
export class DaemonNotInstalled extends Error {
  constructor(
    readonly daemon: string,
    readonly packages: string,
  ) {
    super(`${daemon} is not installed (apt-get install -y ${packages})`);
    this.name = 'DaemonNotInstalled';
  }
}

const READY_TIMEOUT_MS = { clamd: 30_000, spamd: 60_000, rspamd: 120_000, redis: 20_000 } as const;
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 5;

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

// ---------------------------------------------------------------------------------------------
// Paths and small utilities

/** The repository root: the nearest ancestor holding package.json (works from src and dist-test). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'daemons'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root (test/daemons) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const TEMPLATES = join(repoRoot(), 'test', 'daemons');

/** The EICAR test string, assembled here so no source or fixture file holds it whole. */
export function eicar(): Buffer {
  const parts = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD', '-ANTIVIRUS-TEST-FILE!$H+H*'];
  const s = Buffer.from(parts.join(''), 'latin1');
  assert.equal(s.length, 68);
  return s;
}

/** Find a program in PATH and the sbin directories (non-root PATHs often lack them). */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** uid/gid of a system user, from /etc/passwd. */
function systemUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no passwd file
  }
  return undefined;
}

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  chownSync(path, owner.uid, owner.gid);
  if (statSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), owner);
}

/** A port that was free a moment ago (the daemon may still lose a race for it: callers retry). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * `n` different ports that were free a moment ago. Every listener stays open until all are known: one
 * after the other, the kernel may hand out a port it just took back, and two "different" dead
 * addresses would be one.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  try {
    const ports: number[] = [];
    for (const server of servers) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const addr = server.address();
      if (!addr || typeof addr === 'string') throw new Error('no port');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.filter((s) => s.listening).map((s) => new Promise((r) => s.close(r))));
  }
}

/** Fill @NAME@ placeholders; a placeholder without a value is an error. */
function fill(text: string, values: Readonly<Record<string, string>>, file: string): string {
  return text.replace(/@([A-Z_]+)@/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`${file}: no value for @${key}@`);
    return v;
  });
}

/** Copy a template directory, filling placeholders in every file. */
function copyTemplates(from: string, to: string, values: Readonly<Record<string, string>>): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    if (statSync(src).isDirectory()) copyTemplates(src, dst, values);
    else writeFileSync(dst, fill(readFileSync(src, 'utf8'), values, src));
  }
}

/** The instance dir: the caller's, or a fresh one; readable by the daemons' own users. */
function instanceDir(name: string, dir: string | undefined): string {
  const d = dir ?? mkdtempSync(join(tmpdir(), `nqqueue-${name}-`));
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o755);
  return d;
}

function tail(files: readonly string[], lines = 30): string {
  return files
    .map((file) => {
      try {
        return `--- ${file}\n${readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')}`;
      } catch {
        return `--- ${file}: (none)`;
      }
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Process handling

const live = new Set<ChildProcess>();
let guarded = false;

/**
 * Last resort when a run ends without stop() (a crash, Ctrl-C, a CI timeout): don't leave daemons
 * behind. A signal is passed on with its default effect unless the program handles it itself.
 */
function guardExit(): void {
  if (guarded) return;
  guarded = true;
  const killAll = (): void => {
    for (const child of live) child.kill('SIGTERM');
  };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

function spawnDaemon(program: string, args: readonly string[], dir: string, log: string): ChildProcess {
  guardExit();
  const fd = openSync(log, 'a');
  try {
    const child = spawn(program, args, { cwd: dir, stdio: ['ignore', fd, fd] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    // spawn errors (ENOENT...) show as an exit in waitReady; keep them from crashing the process.
    child.on('error', () => undefined);
    return child;
  } finally {
    closeSync(fd);
  }
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** Every descendant of pid (Linux /proc), deepest last. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids: string;
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(/\s+/).filter(Boolean).map(Number)) {
        out.push(k);
        walk(k);
      }
    }
  };
  walk(pid);
  return out;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (exited(child) || child.pid === undefined) return;
  const pid = child.pid;
  const done = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    // Workers first, so none is left orphaned when the master dies.
    for (const p of [...descendants(pid), pid]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, STOP_GRACE_MS);
  try {
    await done;
  } finally {
    clearTimeout(timer);
  }
}

function makeStop(child: ChildProcess, dir: string): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      await stopProcess(child);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopping;
  };
}

class StartFailed extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = 'StartFailed';
  }
}

/** Poll `probe` until it says yes, the child exits, or the deadline passes. Returns ms waited. */
async function waitReady(
  name: string,
  child: ChildProcess,
  logs: readonly string[],
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<number> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  for (;;) {
    if (exited(child)) {
      const text = tail(logs);
      throw new StartFailed(
        `${name} exited (code ${child.exitCode}, signal ${child.signalCode}) while starting; log:\n${text}`,
        /address already in use|EADDRINUSE|cannot bind|could not create listen socket|bind\(\) failed/i.test(text),
      );
    }
    if (await probe().catch(() => false)) {
      if (exited(child)) continue; // someone else answered on that port; report our exit above
      return performance.now() - started;
    }
    if (performance.now() > deadline) {
      throw new StartFailed(`${name} did not answer within ${timeoutMs} ms; log:\n${tail(logs)}`, false);
    }
    await sleep(50);
  }
}

/** Send `request` on a socket and check the reply starts with `expect` (short timeout, no leaks). */
function probeSocket(target: { path: string } | { host: string; port: number }, req: Buffer, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(target as never);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => done(false), 1_000);
    function done(ok: boolean): void {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    }
    s.on('connect', () => s.end(req));
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (Buffer.concat(chunks).toString('latin1').startsWith(expect)) done(true);
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

function probeHttp(url: string, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 1_000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve(res.statusCode === 200 && Buffer.concat(chunks).toString('utf8').trim() === expect));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** For a failed start: remove the instance dir, then rethrow. */
function removeAndThrow(dir: string): (err: unknown) => Promise<never> {
  return async (err) => {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  };
}

/** Start with fresh free ports until the daemon does not lose a port race. */
async function withPortRetry<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof StartFailed) || !err.portInUse || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// clamd

/** Write the signature database: the EICAR body signature, and clam.exe's hash when available. */
function writeSignatures(db: string): void {
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'eicar.ndb'), `Eicar-Test-NDB:0:*:${eicar().toString('hex')}\n`);
  const clamExe = '/usr/share/clamav-testfiles/clam.exe';
  if (existsSync(clamExe)) {
    const bytes = readFileSync(clamExe);
    writeFileSync(join(db, 'clam.hdb'), `${createHash('md5').update(bytes).digest('hex')}:${bytes.length}:Clam-Test-HDB\n`);
  }
}

/** A private clamd: Unix socket DIR/clamd.sock and TCP on 127.0.0.1. */
export async function startClamd(dir?: string, options: ClamdStartOptions = {}): Promise<ClamdDaemon> {
  const program = findProgram('clamd');
  if (!program) throw new DaemonNotInstalled('clamd', 'clamav-daemon clamav');
  const base = instanceDir('clamd', dir);
  mkdirSync(join(base, 'tmp'), { recursive: true });
  writeSignatures(join(base, 'db'));
  const socket = join(base, 'clamd.sock');
  const log = join(base, 'clamd.out');
  return withPortRetry(async () => {
    const port = await freePort();
    const conf = join(base, 'clamd.conf');
    writeFileSync(
      conf,
      fill(readFileSync(join(TEMPLATES, 'clamd.conf'), 'utf8'), { DIR: base, TCP_PORT: String(port), STREAM_MAX: options.streamMaxLength ?? '50M' }, 'clamd.conf'),
    );
    const child = spawnDaemon(program, ['-c', conf], base, log);
    const stop = makeStop(child, base);
    try {
      const ping = Buffer.from('zPING\0', 'latin1');
      const startMs = await waitReady('clamd', child, [join(base, 'clamd.log'), log], READY_TIMEOUT_MS.clamd, async () => {
        return (await probeSocket({ path: socket }, ping, 'PONG')) && (await probeSocket({ host: '127.0.0.1', port }, ping, 'PONG'));
      });
      const tcp = `127.0.0.1:${port}`;
      return {
        name: 'clamd',
        pid: child.pid as number,
        dir: base,
        socket,
        tcp,
        env: { NQQ_TEST_CLAMD_SOCKET: socket, NQQ_TEST_CLAMD_TCP: tcp },
        startMs,
        running: () => !exited(child),
        stop,
      } satisfies ClamdDaemon;
    } catch (err) {
      await stopProcess(child);
      throw err;
    }
  }).catch(removeAndThrow(base));
}

// ---------------------------------------------------------------------------------------------
// spamd

/** The site config lines of test/daemons/spamd/local.cf, each passed as --cf=LINE. */
function spamdConfigLines(): string[] {
  return readFileSync(join(TEMPLATES, 'spamd', 'local.cf'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * A private spamd on 127.0.0.1: local tests only (-L), no learning, per-user preferences read from
 * DIR/users/<User>/user_prefs (alice@example.com: required_score 3, bob@example.org: 8).
 */
export async function startSpamd(dir?: string, options: SpamdStartOptions = {}): Promise<SpamdDaemon> {
  const program = findProgram('spamd');
  if (!program) throw new DaemonNotInstalled('spamd', 'spamassassin spamc spamd');
  const base = instanceDir('spamd', dir);
  const users = join(base, 'users');
  copyTemplates(join(TEMPLATES, 'spamd', 'users'), users, {});
  // --virtual-config-dir needs -u. As root, spamd must drop to another user (-u root makes its
  // children die in a loop); it creates a directory per User: name it is sent, so that user owns
  // the tree. Not as root, -u names the current user (spamd then keeps its ids).
  const ownerName = isRoot ? (systemUser('debian-spamd') ? 'debian-spamd' : 'nobody') : userInfo().username;
  const owner = isRoot ? systemUser(ownerName) : undefined;
  if (owner) chownTree(users, owner);
  const log = join(base, 'spamd.log');
  return withPortRetry(async () => {
    const port = await freePort();
    const args = [
      '-L',
      `--listen=127.0.0.1:${port}`,
      '--allowed-ips=127.0.0.1',
      '-s',
      'stderr',
      `--pidfile=${join(base, 'spamd.pid')}`,
      ...spamdConfigLines().map((l) => `--cf=${l}`),
      // Later lines win: this instance learns what it is told (TELL), and scores with it.
      ...(options.learn ? ['--allow-tell', '--cf=use_bayes 1', '--cf=bayes_min_spam_num 1', '--cf=bayes_min_ham_num 1'] : []),
      '-x',
      `--virtual-config-dir=${join(users, '%u')}`,
      '-u',
      ownerName,
    ];
    const child = spawnDaemon(program, args, base, log);
    const stop = makeStop(child, base);
    try {
      const startMs = await waitReady('spamd', child, [log], READY_TIMEOUT_MS.spamd, () =>
        probeSocket({ host: '127.0.0.1', port }, Buffer.from('PING SPAMC/1.5\r\n\r\n', 'latin1'), 'SPAMD/1.5 0 PONG'),
      );
      const address = `127.0.0.1:${port}`;
      return {
        name: 'spamd',
        pid: child.pid as number,
        dir: base,
        address,
        env: { NQQ_TEST_SPAMD: address },
        startMs,
        running: () => !exited(child),
        stop,
      } satisfies SpamdDaemon;
    } catch (err) {
      await stopProcess(child);
      throw err;
    }
  }).catch(removeAndThrow(base));
}

// ---------------------------------------------------------------------------------------------
// Redis (rspamd's statistics)

export interface RedisServer {
  readonly pid: number;
  /** Its Unix socket (mode 777: rspamd's workers run as _rspamd). */
  readonly socket: string;
  stop(): Promise<void>;
}

/** A private redis-server on a Unix socket in `dir` (no TCP port, nothing saved to disk). */
export async function startRedis(dir: string): Promise<RedisServer> {
  const program = findProgram('redis-server');
  if (!program) throw new DaemonNotInstalled('redis-server', 'redis-server');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const socket = join(dir, 'redis.sock');
  const log = join(dir, 'redis.log');
  const child = spawnDaemon(program, ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '777', '--save', '', '--appendonly', 'no', '--dir', dir], dir, log);
  try {
    await waitReady('redis-server', child, [log], READY_TIMEOUT_MS.redis, () => probeSocket({ path: socket }, Buffer.from('PING\r\n'), '+PONG'));
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
  return { pid: child.pid as number, socket, stop: () => stopProcess(child) };
}

// ---------------------------------------------------------------------------------------------
// rspamd

/** Where every test instance keeps the compiled regex cache (kept between runs; one per user). */
export const RSPAMD_CACHE = join(tmpdir(), isRoot ? 'nqqueue-rspamd-cache' : `nqqueue-rspamd-cache-${process.getuid?.() ?? 'user'}`);

/**
 * A private rspamd (normal worker + controller on 127.0.0.1), DNS-using modules off, settings for
 * the test recipients from test/daemons/rspamd/local.d/settings.conf.
 */
export async function startRspamd(dir?: string): Promise<RspamdDaemon> {
  const program = findProgram('rspamd');
  const mainConf = '/etc/rspamd/rspamd.conf';
  if (!program || !existsSync(mainConf)) throw new DaemonNotInstalled('rspamd', 'rspamd');
  const base = instanceDir('rspamd', dir);
  // rspamd refuses to run its workers as root: they run as _rspamd, which must own what they write.
  const owner = isRoot ? systemUser('_rspamd') : undefined;
  if (isRoot && !owner) throw new Error('rspamd: running as root but there is no _rspamd user to run the workers as');
  const writable = ['db', 'run', 'log'].map((d) => join(base, d));
  for (const d of [...writable, RSPAMD_CACHE]) {
    mkdirSync(d, { recursive: true });
    if (owner) chownSync(d, owner.uid, owner.gid);
  }
  const log = join(base, 'log', 'rspamd.log');
  let redis: RedisServer;
  try {
    redis = await startRedis(join(base, 'redis'));
  } catch (err) {
    await rm(base, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  }
  return withPortRetry(async () => {
    const normal = await freePort();
    let controller = await freePort();
    while (controller === normal) controller = await freePort();
    copyTemplates(join(TEMPLATES, 'rspamd'), join(base, 'etc'), {
      NORMAL_PORT: String(normal),
      CONTROLLER_PORT: String(controller),
      CONTROLLER_PASSWORD: RSPAMD_CONTROLLER_PASSWORD,
      HS_CACHE: RSPAMD_CACHE,
      REDIS_SOCKET: redis.socket,
    });
    const args = [
      '-f',
      '-c',
      mainConf,
      ...(owner ? ['-u', '_rspamd', '-g', '_rspamd'] : []),
      `--var=LOCAL_CONFDIR=${join(base, 'etc')}`,
      `--var=DBDIR=${join(base, 'db')}`,
      `--var=RUNDIR=${join(base, 'run')}`,
      `--var=LOGDIR=${join(base, 'log')}`,
    ];
    const child = spawnDaemon(program, args, base, join(base, 'rspamd.out'));
    const stopRspamd = makeStop(child, base);
    let stopping: Promise<void> | undefined;
    // rspamd first (it holds connections to Redis), then its Redis; the dir goes with rspamd's stop.
    const stop = () => (stopping ??= stopProcess(child).then(() => redis.stop()).then(stopRspamd));
    const url = `http://127.0.0.1:${normal}`;
    const controllerUrl = `http://127.0.0.1:${controller}`;
    try {
      const startMs = await waitReady('rspamd', child, [log, join(base, 'rspamd.out')], READY_TIMEOUT_MS.rspamd, async () => {
        return (await probeHttp(`${url}/ping`, 'pong')) && (await probeHttp(`${controllerUrl}/ping`, 'pong'));
      });
      return {
        name: 'rspamd',
        pid: child.pid as number,
        dir: base,
        url,
        controllerUrl,
        controllerPassword: RSPAMD_CONTROLLER_PASSWORD,
        redisSocket: redis.socket,
        env: {
          NQQ_TEST_RSPAMD_URL: url,
          NQQ_TEST_RSPAMD_CONTROLLER: controllerUrl,
          NQQ_TEST_RSPAMD_PASSWORD: RSPAMD_CONTROLLER_PASSWORD,
          NQQ_TEST_REDIS_SOCKET: redis.socket,
        },
        startMs,
        running: () => !exited(child),
        stop,
      } satisfies RspamdDaemon;
    } catch (err) {
      await stopProcess(child);
      throw err;
    }
  }).catch(async (err: unknown) => {
    await redis.stop();
    return removeAndThrow(base)(err);
  });
}

// ---------------------------------------------------------------------------------------------
// The suite's daemons

/**
 * Start clamd, spamd and rspamd at once. A daemon that is not installed fails the run when
 * CI=true, and is otherwise announced loudly and left out of `env` (its tests skip). A daemon that
 * is installed but does not start always fails the run.
 */
export async function startDaemons(): Promise<DaemonSet> {
  const ci = process.env.CI === 'true';
  const starters = [() => startClamd(), () => startSpamd(), () => startRspamd()];
  const settled = await Promise.allSettled(starters.map((s) => s()));
  const started: Daemon[] = [];
  const errors: unknown[] = [];
  for (const r of settled) {
    if (r.status === 'fulfilled') {
      started.push(r.value);
    } else if (r.reason instanceof DaemonNotInstalled && !ci) {
      process.stderr.write(
        `\n!!! ${r.reason.message}.\n!!! Tests that need ${r.reason.daemon} will be SKIPPED. In CI (CI=true) this fails the run.\n\n`,
      );
    } else {
      errors.push(r.reason);
    }
  }
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((d) => d.stop()));
  };
  if (errors.length > 0) {
    await stop();
    throw new AggregateError(errors, `test daemons failed to start:\n${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('\n')}`);
  }
  const env: Record<string, string> = {};
  for (const d of started) {
    Object.assign(env, d.env);
    if (process.env.NQQ_TEST_DEBUG) process.stderr.write(`${d.name} pid ${d.pid} ready in ${d.startMs.toFixed(0)} ms (${d.dir})\n`);
  }
  return { env, stop };
}

/**
 * The value of a daemon variable for a test. When it is unset: in CI (CI=true) the test fails;
 * elsewhere the test is skipped with a loud message, and undefined is returned (return at once).
 */
export function requireDaemon(name: DaemonVar, t: TestContext): string | undefined {
  const value = process.env[name];
  if (value) return value;
  const why = `${name} is not set (daemon not installed, or the suite was not started by scripts/run-tests.js)`;
  if (process.env.CI === 'true') assert.fail(`${why}: in CI every daemon must run`);
  process.stderr.write(`\n!!! SKIPPED "${t.name}": ${why}\n`);
  t.skip(why);
  return undefined;
}
