// `nqqueue serve`: the pipeline in a long-lived process. Configuration and plugins are loaded once and
// reloaded when a file changes (or on SIGHUP); many messages are in flight at once; each arrives on the
// Unix socket from nqqueue-qq (docs/daemon-protocol.md) and is answered with the exit code, the refusal
// text and its log lines. Graceful stop: the socket goes away (new messages take the standalone
// fallback) and the messages in flight finish.

import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { checkControlDir } from '../config/locals.js';
import { defaultSettings, SETTINGS_FILE, type Settings } from '../config/settings.js';
import { describeError, NqqError } from '../errors.js';
import { MemoryBudget, MessageCollector } from '../intake/message.js';
import { ensurePrivateDir, STALE_MS, sweepStale } from '../intake/workdir.js';
import { makeLogger, parseDebugLevel, type Logger } from '../log.js';
import { EnvelopeParser, toEnvelope } from '../qmail/envelope.js';
import { refusalBytes } from '../qmail/exit.js';
import type { DaemonMetrics } from '../metrics/daemon.js';
import { jobFacts, processJob, resultFromError, type JobResult } from '../queue/process.js';
import { CLIENT_ENV, clientFrom, configFiles, fingerprint, heloFrom, makeServices, pathsFrom, readSettings, type Paths, type Services } from '../queue/services.js';
import { ClientQueue } from './client-queue.js';
import { FrameReader, ProtocolError } from './frames.js';
import { moduleVersion } from '../plugin-api/load.js';
import { visible } from '../text/visible.js';
import { configProblems, Generation } from './generation.js';

export const SOCKET_NAME = 'nqqueue.sock';
/** The control files besides the .cfb files (the settings file, the local domains, `me`). */
const BASE_FILES = [SETTINGS_FILE, 'rcpthosts', 'morercpthosts.cdb', 'me'];
/** A client that sends nothing for this long is dropped (qmail-smtpd itself gives up after 1200 s). */
const IDLE_MS = 1_300_000;

export interface DaemonOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Lifecycle lines (start, reload, stop, errors); per-message lines go back to the client. */
  readonly log: (line: string) => void;
  /** Where each answered message and each configuration load are counted. */
  readonly metrics?: Pick<DaemonMetrics, 'message' | 'loaded'>;
}

export class Daemon {
  private server: Server | undefined;
  /** The configuration messages use now (undefined while the one on disk cannot be built). */
  private gen: Generation | undefined;
  /** Why the configuration on disk cannot be built: every message is deferred with it until a file changes. */
  private broken: unknown;
  private loaded = false;
  /** Fingerprint of each file the current configuration depends on, as this generation first saw it. */
  private prints = new Map<string, string>();
  private reloadWanted = false;
  private readonly inFlight = new Set<Socket>();
  /** What the messages in flight hold in memory, together (spill_total of the configuration in use). */
  private readonly memory = new MemoryBudget(() => this.gen?.services.settings.spillTotalBytes ?? 16 * 1024 * 1024);
  /** Messages being handled now (a connection open is a message in flight). */
  get messagesInFlight(): number {
    return this.inFlight.size;
  }
  private stopping = false;
  readonly paths: Paths;
  readonly socketPath: string;
  private readonly debugLevel: number;
  /**
   * NQQUEUE_TRACE=1 in the daemon's own environment (the bench's breakdown): each message's log text
   * ends with a line of the monotonic clock at each stage (process.hrtime, the clock nqqueue-qq uses).
   */
  private readonly trace: boolean;

  constructor(private readonly opts: DaemonOptions) {
    this.paths = pathsFrom(opts.env);
    this.socketPath = join(this.paths.home, SOCKET_NAME);
    this.debugLevel = parseDebugLevel(opts.env.NQQUEUE_DEBUG);
    this.trace = opts.env.NQQUEUE_TRACE === '1';
  }

  /**
   * The configuration for the next message: rebuilt when a file it depends on changed. Each rebuild
   * logs every problem it found once (file:line); a configuration that cannot be built defers every
   * message, as the standalone program does, until a file changes.
   */
  private async current(): Promise<Generation> {
    const g = this.gen;
    const changed = this.loaded && !this.reloadWanted ? this.changed() : undefined;
    if (this.loaded && !this.reloadWanted && changed === undefined) {
      if (g) {
        await g.ready;
        return g;
      }
      throw this.broken;
    }
    const first = !this.loaded;
    // A file name from the control directory's listing: shown terminal-safe, as any outside text.
    const why = this.reloadWanted ? 'SIGHUP' : `${visible(changed ?? '')} changed`;
    this.loaded = true;
    this.reloadWanted = false;
    // Fingerprints first, then the reading: a file written meanwhile shows as a change next time.
    const prints = this.snapshot();
    let next: Generation | undefined;
    let failure: unknown;
    try {
      const settings = readSettings(this.paths);
      for (const d of settings.pluginDirs) prints.set(d, fingerprint(d));
      next = new Generation(makeServices(this.paths, settings, undefined, undefined, (dir) => sweepStale(dir, STALE_MS)), this.opts.log);
    } catch (err) {
      failure = err;
    }
    // Messages in flight keep the old generation; its plugins are torn down once they are done.
    if (g) void g.retire();
    this.gen = next;
    this.broken = failure;
    this.prints = prints;
    // A settings file with a problem is built, but every message is deferred with its first problem.
    let unusable = failure !== undefined;
    if (next && !unusable) unusable = await next.services.problems().then((p) => p.length > 0, () => true);
    if (!first) this.opts.log(`nqqueue serve: configuration reloaded${unusable ? ': it cannot be used, messages are deferred' : ''} (${why})`);
    this.opts.metrics?.loaded(!unusable, !first);
    const ready = this.check(next, failure);
    if (next) next.ready = ready;
    await ready;
    if (!next) throw failure;
    return next;
  }

  /** Logs what a (re)load found, each problem once, before the first message uses it. */
  private async check(next: Generation | undefined, failure: unknown): Promise<void> {
    let problems: string[];
    try {
      problems = await configProblems(this.paths.controlDir, next?.services, failure);
    } catch (err) {
      problems = [describeError(err)];
    }
    for (const p of problems) this.opts.log(`nqqueue serve: configuration: ${p}`);
    if (problems.length > 0) {
      this.opts.log(`nqqueue serve: ${problems.length} configuration problem(s): messages that need ${problems.length === 1 ? 'it' : 'them'} are deferred`);
    }
  }

  /**
   * What the configuration on disk looks like now: the control directory, its fixed files and every
   * .cfb file in it (read by the check that follows a reload). A plugin directory is added once the
   * settings name it: a plugin file that appears there may be the one a routing line was missing.
   */
  private snapshot(): Map<string, string> {
    const dir = this.paths.controlDir;
    // The directory first: a .cfb file made after this shows as a change of it, even if the listing
    // below already has it.
    const dirPrint = fingerprint(dir);
    let cfbs: string[] = [];
    try {
      cfbs = readdirSync(dir).filter((n) => n.endsWith('.cfb'));
    } catch {
      // the directory's own fingerprint says it is gone
    }
    const prints = new Map<string, string>([[dir, dirPrint]]);
    for (const f of [...BASE_FILES, ...cfbs].map((n) => join(dir, n))) prints.set(f, fingerprint(f));
    return prints;
  }

  /**
   * The first file the configuration depends on that changed (undefined: none), compared by
   * fingerprint at every message: those of the snapshot and those the configuration has read since
   * (noted at first sight, once).
   */
  private changed(): string | undefined {
    for (const [f, then] of this.prints) if (fingerprint(f) !== then) return f;
    for (const f of this.gen ? configFiles(this.gen.services) : []) if (!this.prints.has(f)) this.prints.set(f, fingerprint(f));
    // Plugin code: compared with the version that was imported.
    for (const [file, version] of this.gen?.services.registry.files() ?? []) if (moduleVersion(file) !== version) return file;
    return undefined;
  }

  async start(): Promise<void> {
    // Without its control directory or rcpthosts the daemon could only defer: it refuses to start (111,
    // so the supervisor retries) and clients take the standalone program, which defers and says why.
    checkControlDir(this.paths.controlDir);
    ensurePrivateDir(this.paths.home);
    await this.takeOverSocket();
    // The configuration is read (and a broken one logged) before the socket exists: a client that finds
    // the socket finds a daemon ready for it, and a change written meanwhile is a change for the next
    // message, never read half by the first load and again by a reload. Messages are deferred with a
    // broken configuration, as in the standalone program.
    await this.current().catch(() => {});
    // The socket is created with the umask: 0600 from its first moment (no window before the chmod).
    const oldMask = process.umask(0o177);
    const server = createServer({ allowHalfOpen: true }, (sock) => this.handle(sock));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.socketPath, 0o600);
    this.server = server;
    this.opts.log(`nqqueue serve: listening on ${this.socketPath} (pid ${process.pid})`);
  }

  /** A socket left by a daemon that died is removed; a live daemon on it is an error. */
  private async takeOverSocket(): Promise<void> {
    const alive = await new Promise<boolean>((resolve) => {
      const c = connect(this.socketPath);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (alive) throw new Error(`another nqqueue serve is listening on ${this.socketPath}`);
    try {
      unlinkSync(this.socketPath);
    } catch {
      // there was none
    }
  }

  reload(): void {
    this.reloadWanted = true;
    this.opts.log('nqqueue serve: reload requested (SIGHUP)');
  }

  /** Remove the socket at once (a dying daemon): new clients fall back without trying to connect. */
  abandon(): void {
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }

  /** Stop taking messages, let those in flight finish. Resolves when the last one is answered. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.opts.log(`nqqueue serve: stopping; ${this.inFlight.size} message(s) in flight`);
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
    });
    // The last messages are answered: the plugins' connections can go.
    await this.gen?.retire();
  }

  private handle(sock: Socket): void {
    if (this.stopping) {
      sock.destroy();
      return;
    }
    this.inFlight.add(sock);
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    const done = () => this.inFlight.delete(sock);
    sock.once('close', done);
    this.serveOne(sock, this.trace ? { accept: process.hrtime.bigint() } : undefined).catch((err) => {
      this.opts.log(`nqqueue serve: connection failed: ${describeError(err)}`);
      sock.destroy();
    });
  }

  private async serveOne(sock: Socket, stamps?: Record<string, bigint>): Promise<void> {
    const started = performance.now();
    const stamp = stamps ? (stage: string) => void (stamps[stage] = process.hrtime.bigint()) : undefined;
    let services: Services | undefined;
    let configError: unknown;
    let release = () => {};
    try {
      const gen = await this.current();
      release = gen.enter();
      services = gen.services;
    } catch (err) {
      configError = err;
    }
    const reader = new FrameReader(sock);
    const lines: string[] = [];
    let collector: MessageCollector | undefined;
    let queue: ClientQueue | undefined;
    let ahead: Buffer | undefined;
    let aheadCopies = 0;
    try {
      await reader.magic();
      const env = parseEnv(await reader.envBlock());
      const origin = originOf(env);
      const level = Math.max(this.debugLevel, parseDebugLevel(env.NQQUEUE_DEBUG));
      const logger = makeLogger(level, 'nqqueue:', (t) => lines.push(t.endsWith('\n') ? t : `${t}\n`));
      const format = services?.settings.logFormat ?? 'text';
      const spill = services?.settings.spillBytes ?? 1024 * 1024;
      // Read everything the client sends, whatever is wrong with it, then answer once.
      let inputError: unknown;
      collector = new MessageCollector(
        spill,
        () => {
          if (!services) throw configError;
          return services.workDir();
        },
        this.memory,
      );
      for await (const chunk of reader.frames()) {
        if (inputError) continue;
        try {
          collector.write(chunk);
        } catch (err) {
          inputError = err instanceof NqqError ? err : new NqqError('NQQ_ERR_DISK', `cannot keep the message: ${describeError(err)}`);
        }
      }
      const parser = new EnvelopeParser(services?.settings.maxRecipients ?? 10_000);
      for await (const chunk of reader.frames()) {
        if (inputError) continue;
        try {
          parser.push(chunk);
        } catch (err) {
          inputError = err;
        }
      }
      stamp?.('input');
      let result: JobResult;
      if (reader.clientReadError) inputError ??= new NqqError('NQQ_ERR_READ', 'the client could not read its input');
      try {
        if (inputError) throw inputError;
        const message = collector.finish();
        const envelope = toEnvelope(parser.end(), env.RELAYCLIENT);
        if (!services) throw configError;
        const client = clientFrom(env, heloFrom(await message.head(4096)));
        const sink = (queue = new ClientQueue(sock, reader, services.settings.queueTimeoutMs, stamp));
        result = await processJob({
          message,
          envelope,
          client,
          services,
          logger,
          started,
          nqqfile: env.NQQFILE ?? '',
          sink,
          onDeliver: (copies, fields, ifQueued) => {
            // The line the client writes itself should this daemon go away from here on (it adds
            // the exit, the qmail-queue pids and why): a message it queued still gets its log line.
            stamp?.('decided');
            let pending = '';
            makeLogger(0, 'nqqueue:', (t) => (pending = t)).line({ ...fields, qp: origin.qp, via: 'daemon' }, format);
            const records = [pendingRecord(pending)];
            // The answer ahead: once every copy is queued the client can end at once with this line,
            // when nothing else would be in the reply (no debug lines) and nothing is left on disk to
            // clean up (an unspilled message). The bench's trace goes with it, as far as it got.
            if (ifQueued && origin.ahead && copies > 0 && copies <= AHEAD_COPIES_MAX && level === 0 && lines.length === 0 && collector!.spillPath === undefined) {
              ahead = aheadLine({ ...ifQueued, qq: HOLE_QQ, ms: HOLE_MS, exit: 0, qp: origin.qp, via: 'daemon' }, format);
              const text = ahead && stamps ? Buffer.concat([ahead, Buffer.from(traceLine(stamps))]) : ahead;
              if (text && text.length <= AHEAD_MAX) {
                aheadCopies = copies;
                records.push(aheadRecord(performance.now() - started, text));
              } else ahead = undefined;
            }
            records.push(decisionRecord(copies));
            // They go out with the first copy, in one write.
            sink.announce(Buffer.concat(records));
          },
        });
      } catch (err) {
        // The client went away mid-delivery: it decides the message's fate itself; say so here.
        if (err instanceof ProtocolError) throw err;
        result = resultFromError(err, {});
        result.fields.ms = Math.round(performance.now() - started);
      }
      const refusal = result.refusal && (result.exit === 31 || result.exit === 71) ? refusalBytes(result.refusal.kind, result.refusal.text) : Buffer.alloc(0);
      // The exit qmail-smtpd will see: 82 when the client writes the text on the channel it named.
      const exit = refusal.length > 0 && origin.errfds !== undefined && origin.errfds !== '' ? 82 : result.exit;
      logger.line({ ...result.fields, exit, qp: origin.qp, via: 'daemon' }, format);
      // Every copy queued after an answer ahead: the client ended with that line and reads no reply.
      // Should this line say something else, it is not lost.
      const endedAhead = ahead !== undefined && queue?.queuedAll(aheadCopies) === true;
      if (endedAhead && !sameLine(ahead!, lines[lines.length - 1]!, result.fields)) {
        this.opts.log(`nqqueue serve: the line given ahead was not the message's; its line: ${lines[lines.length - 1]!.replace(/\n$/, '')}`);
      }
      // The working files go before the reply: once the client has its answer, nothing of this
      // message is left on disk.
      collector.discard();
      if (stamps) {
        stamp!('reply');
        lines.push(traceLine(stamps));
      }
      const replied = endedAhead ? endQuietly(sock) : writeReply(sock, queue?.takePreface(), result.exit, refusal, Buffer.from(lines.join('')));
      // Counted while the reply is on its way (the write above is already in the kernel).
      this.opts.metrics?.message(result.facts ?? jobFacts(result));
      await replied;
    } catch (err) {
      if (err instanceof ProtocolError) {
        if (reader.received > 0) this.opts.log(`nqqueue serve: protocol error: ${err.message}`);
        sock.destroy();
        return;
      }
      throw err;
    } finally {
      collector?.discard();
      release();
    }
  }
}

/** The client's own entries of its environment block (docs/daemon-protocol.md). */
const QQ_PID = 'NQQUEUE_QQ_PID';
const QQ_ERRFDS = 'NQQUEUE_QQ_ERRFDS';
const QQ_AHEAD = 'NQQUEUE_QQ_AHEAD';

/** An answer ahead only for at most this many copies: the client lists that many pids (PIDS_KEPT). */
const AHEAD_COPIES_MAX = 64;
/** The longest line 'A' carries (NQQ_PENDING_MAX in nqqueue-qq.h): a longer one is not sent. */
const AHEAD_MAX = 65536;

/** Stand-ins for the pids and the milliseconds in the line given ahead (plain words, never in a value). */
const HOLE = randomBytes(12).toString('hex');
const HOLE_QQ = `qq${HOLE}`;
const HOLE_MS = `ms${HOLE}`;

/**
 * The line for 'A': the log line with byte 1 where the qmail-queue pids go and byte 2 where the
 * milliseconds go (a JSON number: its quotes go too); undefined should either hole not be there once.
 */
function aheadLine(fields: Record<string, unknown>, format: 'text' | 'json'): Buffer | undefined {
  let line = '';
  makeLogger(0, 'nqqueue:', (t) => (line = t)).line(fields, format);
  if (line.split(HOLE_QQ).length !== 2 || line.split(HOLE_MS).length !== 2) return undefined;
  line = line.replace(HOLE_QQ, '\x01').replace(`"${HOLE_MS}"`, '\x02').replace(HOLE_MS, '\x02');
  const out = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
  return out.length <= AHEAD_MAX ? out : undefined;
}

/** The bench's trace (NQQUEUE_TRACE=1): the monotonic clock at each stage so far, as a log line. */
function traceLine(stamps: Record<string, bigint>): string {
  return `nqqueue: trace${Object.entries(stamps).map(([k, v]) => ` ${k}=${v}`).join('')}\n`;
}

/** Whether `line` is the line given ahead with this message's pids (its milliseconds may differ). */
function sameLine(ahead: Buffer, line: string, fields: Record<string, unknown>): boolean {
  const [head, rest = ''] = ahead.toString().split('\x01');
  const [mid, tail = ''] = rest.split('\x02');
  const start = `${head}${String(fields.qq ?? '')}${mid}`;
  return line.startsWith(start) && line.endsWith(tail) && /^\d+$/.test(line.slice(start.length, line.length - tail.length));
}

function parseEnv(block: Buffer): Record<string, string> {
  const env: Record<string, string> = {};
  const entries = block.toString('utf8').split('\0').filter((e) => e !== '');
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    if (CLIENT_ENV.includes(name) || name === 'NQQUEUE_DEBUG' || name === QQ_PID || name === QQ_ERRFDS) env[name] = entry.slice(eq + 1);
  }
  // The offer counts only as the client's own last entry: an older client, which does not take 'A',
  // passes on an inherited one (a tcprules line) among the others.
  const last = entries[entries.length - 1];
  if (last?.startsWith(`${QQ_AHEAD}=`)) env[QQ_AHEAD] = last.slice(QQ_AHEAD.length + 1);
  return env;
}

/**
 * What the client says of itself: its pid (qmail-smtpd's `qp`) and the descriptors its refusal text
 * goes to. Anything but the client's own well-formed values is ignored (an older client sends none).
 */
function originOf(env: Record<string, string>): { qp?: number; errfds?: string; ahead: boolean } {
  const pid = env[QQ_PID];
  const errfds = env[QQ_ERRFDS];
  return {
    qp: pid !== undefined && /^[1-9]\d{0,9}$/.test(pid) ? Number(pid) : undefined,
    errfds: errfds !== undefined && /^(6|4|6,4)?$/.test(errfds) ? errfds : undefined,
    ahead: env[QQ_AHEAD] === '1',
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** 'L': the pending log line, at most 65536 bytes (a longer one is cut). */
function pendingRecord(line: string): Buffer {
  const text = Buffer.from(line.replace(/\n$/, '')).subarray(0, 65536);
  return Buffer.concat([Buffer.from('L'), u32(text.length), text]);
}

/** 'A': the answer ahead, `ms` after the message began (as microseconds), and its line. */
function aheadRecord(ms: number, line: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.write('A', 0, 'latin1');
  head.writeUInt32BE(Math.min(0xffffffff, Math.max(0, Math.round(ms * 1000))), 1);
  head.writeUInt32BE(line.length, 5);
  return Buffer.concat([head, line]);
}

/** 'D': the decision, `copies` copies to queue. */
function decisionRecord(copies: number): Buffer {
  return Buffer.concat([Buffer.from('D'), u32(copies)]);
}

/** The longest log text the client takes (NQQ_LOG_MAX in nqqueue-qq.h); a longer reply is not the protocol. */
const LOG_MAX = 1 << 20;
const CUT = Buffer.from(' ...(cut: longer than the reply can carry)\n');

/**
 * The log text as the reply can carry it: a message for thousands of recipients can make a log line
 * longer than the client takes, and a reply the client refuses makes it run the message again on its
 * own after this daemon has already acted on it (every copy kept or queued twice).
 */
export function replyLog(log: Buffer): Buffer {
  return log.length <= LOG_MAX ? log : Buffer.concat([log.subarray(0, LOG_MAX - CUT.length), CUT]);
}

/** The end of a connection whose client reads nothing more: closed without a write (none can fail). */
function endQuietly(sock: Socket): Promise<void> {
  sock.destroy();
  return Promise.resolve();
}

function writeReply(sock: Socket, preface: Buffer | undefined, exit: number, refusal: Buffer, rawLog: Buffer): Promise<void> {
  const log = replyLog(rawLog);
  const head = Buffer.alloc(3);
  head.write('R', 0, 'latin1');
  head.writeUInt8(exit & 0xff, 1);
  head.writeUInt8(refusal.length, 2);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(log.length);
  return new Promise((resolve) => {
    sock.end(Buffer.concat([...(preface ? [preface] : []), head, refusal, len, log]), () => resolve());
    sock.once('error', () => resolve());
  });
}

/** The settings the metrics start with (a file that cannot be read: the defaults; a reload does not change them). */
function metricsSettings(paths: Paths): Settings {
  try {
    return readSettings(paths);
  } catch {
    return defaultSettings();
  }
}

export async function serve(env: NodeJS.ProcessEnv): Promise<number> {
  const logger: Logger = makeLogger(0);
  const log = (line: string) => logger.write(line);
  let daemon: Daemon;
  let metrics: DaemonMetrics;
  try {
    const paths = pathsFrom(env);
    const settings = metricsSettings(paths);
    const { DaemonMetrics } = await import('../metrics/daemon.js');
    metrics = new DaemonMetrics({
      home: paths.home,
      settings,
      log,
      inFlight: () => daemon?.messagesInFlight ?? 0,
      store: async () => {
        const { sharedStore } = await import('../store/open.js');
        return sharedStore(paths.home, settings);
      },
    });
    daemon = new Daemon({ env, log, metrics });
    await daemon.start();
    // Once the daemon runs: a daemon that cannot start holds no metrics port.
    await metrics.start();
  } catch (err) {
    log(`nqqueue serve: cannot start: ${describeError(err)}`);
    return 111;
  }
  // A bug in a plugin must not leave a half-working daemon: clients fall back to the standalone program
  // while the supervisor (daemontools, systemd) starts a new one.
  // It cannot tell which message the failure belongs to, so it ends at once: every client whose copy
  // was not queued yet runs the standalone program on its input, which reports the bug (81) itself.
  const crash = (err: unknown) => {
    log(`nqqueue serve: fatal: ${describeError(err)}; exiting`);
    daemon.abandon();
    process.exit(111);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  process.on('SIGHUP', () => daemon.reload());
  return new Promise<number>((resolve) => {
    const stop = () => {
      void daemon.stop().then(async () => {
        await metrics.stop();
        log('nqqueue serve: stopped');
        resolve(0);
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
