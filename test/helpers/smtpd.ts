// runSmtpd(): starts a program the way qmail-smtpd starts its QMAILQUEUE program (notqmail qmail.c
// qmail_open / qmail_close): real blocking pipes on fd 0, 1, 2 and 6 (or 4), no arguments, exactly the
// given environment, a foreign cwd; the whole message, then the envelope, then the error pipe read to
// EOF, and only then the exit status.
//
// Node has no pipe(2) and spawn's 'pipe' gives the child a socketpair, so each pipe is a named FIFO in a
// private temp dir. Every open() of a FIFO is a separate open file description, so the parent's end can
// be non-blocking (event-driven net.Socket) while the child's end is blocking, like qmail's.

import { execFileSync, spawn, type StdioOptions } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export interface RunOptions {
  /** Default: the absolute path of <repo>/bin/nqqueue. */
  bin?: string;
  /** Default [] (qmail passes none). */
  args?: string[];
  message: Buffer | string;
  /** Raw envelope bytes; envelopeOf() builds them. */
  envelope: Buffer;
  /** Split points (byte offsets): the envelope goes out in several writes with small delays. */
  envelopeChunks?: number[];
  /** Delay between envelope writes when envelopeChunks is given (default 2 ms). */
  envelopeDelayMs?: number;
  /** The COMPLETE environment: nothing is inherited, no PATH unless given. */
  env?: Record<string, string>;
  /** Default 6. */
  errorFd?: 6 | 4 | 'none';
  /** Default: a fresh empty temp dir, removed afterwards. */
  cwd?: string;
  /**
   * A caller that stops writing (DATABYTES exceeded, client gone): only the first half of the message
   * (or this many bytes) is written before fd 0 is closed. The envelope is still written as given — pass
   * an empty or unterminated one to match what qmail-smtpd does then.
   */
  closeMessageEarly?: boolean | number;
  /** Kill the child (SIGKILL) after this long and report timedOut (default 30000). */
  timeoutMs?: number;
}

export interface RunResult {
  /** The pid of the program started (what qmail-smtpd shows in `250 ok ... qp PID`). */
  pid: number | undefined;
  code: number | null;
  signal: string | null;
  /** What the child wrote on the error fd: at most 255 bytes, like qmail. */
  errorText: Buffer;
  stderr: string;
  /** From spawn to the exit status (after the error pipe's EOF, as qmail sees it). */
  ms: number;
  timedOut: boolean;
  /** The first error writing fd 0 or fd 1 (e.g. 'EPIPE' after an early reject), else null. */
  writeError: string | null;
}

/**
 * The `nqqueue` program the helpers run (serve, subcommands): <repo>/bin/nqqueue (this file is compiled
 * to <repo>/dist-test/test/helpers/smtpd.js), or NQQ_TEST_NQQUEUE — scripts/run-tests.js sets it to the
 * `nqqueue` of the package it installed, for the process-level suites.
 */
export const NQQUEUE_BIN = process.env.NQQ_TEST_NQQUEUE || fileURLToPath(new URL('../../../bin/nqqueue', import.meta.url));

const ERROR_TEXT_MAX = 255;
const STDERR_MAX = 4 * 1024 * 1024;
/** After the exit status: how long to wait for stderr's EOF (a grandchild may hold it open). */
const STDERR_GRACE_MS = 200;
/** After SIGKILL on timeout: how long to wait for the exit status before giving up on it. */
const KILL_WAIT_MS = 5000;

/** F<sender>\0 T<rcpt>\0 ... \0 — strings are UTF-8. */
export function envelopeOf(sender: string | Buffer, recipients: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from('F'), Buffer.from(sender), Buffer.from([0])];
  for (const r of recipients) parts.push(Buffer.from('T'), Buffer.from(r), Buffer.from([0]));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

interface Fifo {
  /** Ours: non-blocking, close-on-exec (libuv opens everything O_CLOEXEC). */
  parent: number;
  /** The child's: blocking; closed here right after spawn. */
  child: number;
}

/**
 * Opens one FIFO; `childReads` says which side the child gets. The parent's read end is opened first, with
 * O_NONBLOCK (an open for reading alone would wait for a writer); after that, opening the other side
 * never blocks.
 */
function openFifo(path: string, childReads: boolean, opened: number[]): Fifo {
  const { O_RDONLY, O_WRONLY, O_NONBLOCK } = constants;
  const track = (fd: number): number => {
    opened.push(fd);
    return fd;
  };
  const probe = track(openSync(path, O_RDONLY | O_NONBLOCK));
  if (!childReads) return { parent: probe, child: track(openSync(path, O_WRONLY)) };
  const parent = track(openSync(path, O_WRONLY | O_NONBLOCK));
  const child = track(openSync(path, O_RDONLY));
  // No reader of ours may stay: when the child exits unread, our writes must fail with EPIPE.
  closeSync(probe);
  opened.splice(opened.indexOf(probe), 1);
  return { parent, child };
}

/** `data` cut at the given byte offsets (offsets outside 1..length-1 are ignored). */
export function splitAt(data: Buffer, points: number[] | undefined): Buffer[] {
  if (!points || points.length === 0) return [data];
  const cuts = [...new Set(points)].filter((p) => p > 0 && p < data.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of cuts) {
    out.push(data.subarray(from, c));
    from = c;
  }
  out.push(data.subarray(from));
  return out;
}

function writeChunk(sock: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** Writes the chunks in order; resolves to the error code of a failed write, or null. */
async function writeAll(sock: Socket, chunks: Buffer[], delayMs: number): Promise<string | null> {
  try {
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i] as Buffer;
      if (chunk.length > 0) await writeChunk(sock, chunk);
      if (delayMs > 0 && i < chunks.length - 1) await delay(delayMs);
    }
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function readSocket(fd: number, max: number): { sock: Socket; eof: Promise<void>; data: () => Buffer } {
  const sock = new Socket({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  let kept = 0;
  sock.on('data', (d: Buffer) => {
    if (kept < max) {
      const part = d.subarray(0, max - kept);
      chunks.push(part);
      kept += part.length;
    }
  });
  const eof = new Promise<void>((resolve) => {
    sock.once('end', resolve);
    sock.once('close', () => resolve());
    sock.on('error', () => resolve());
  });
  return { sock, eof, data: () => Buffer.concat(chunks) };
}

const TIMEOUT = Symbol('timeout');

/** p, or TIMEOUT after ms — and the timer is cleared either way, so nothing is left keeping node up. */
async function waitAtMost<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<typeof TIMEOUT>((resolve) => (t = setTimeout(() => resolve(TIMEOUT), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

export async function runSmtpd(o: RunOptions): Promise<RunResult> {
  const bin = o.bin ?? NQQUEUE_BIN;
  const errorFd = o.errorFd ?? 6;
  const timeoutMs = o.timeoutMs ?? 30000;
  const message = typeof o.message === 'string' ? Buffer.from(o.message) : o.message;

  const opened: number[] = [];
  const sockets: Socket[] = [];
  const fifoDir = mkdtempSync(join(tmpdir(), 'nqq-smtpd-'));
  const ownCwd = o.cwd === undefined ? mkdtempSync(join(tmpdir(), 'nqq-cwd-')) : undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const names = ['message', 'envelope', 'stderr', 'error'].map((n) => join(fifoDir, n));
    execFileSync('/usr/bin/mkfifo', ['-m', '600', ...names], { stdio: 'ignore' });
    const [mPath, ePath, sPath, xPath] = names as [string, string, string, string];
    const msg = openFifo(mPath, true, opened);
    const env = openFifo(ePath, true, opened);
    const err2 = openFifo(sPath, false, opened);
    const errp = errorFd === 'none' ? undefined : openFifo(xPath, false, opened);
    // The open descriptors are all that is needed from here on.
    rmSync(fifoDir, { recursive: true, force: true });

    const stdio: StdioOptions = [msg.child, env.child, err2.child];
    if (errp) {
      while (stdio.length < (errorFd as number)) stdio.push('ignore');
      stdio.push(errp.child);
    }

    const t0 = performance.now();
    const child = spawn(bin, o.args ?? [], { stdio, env: o.env ?? {}, cwd: o.cwd ?? ownCwd });
    const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, error });
      });
    });
    // The child has its copies; ours must go, or no pipe ever reaches EOF (or EPIPE).
    for (const fd of [msg.child, env.child, err2.child, ...(errp ? [errp.child] : [])]) {
      closeSync(fd);
      opened.splice(opened.indexOf(fd), 1);
    }
    const take = (fd: number): number => {
      opened.splice(opened.indexOf(fd), 1);
      return fd;
    };

    const stderr = readSocket(take(err2.parent), STDERR_MAX);
    sockets.push(stderr.sock);
    if (child.pid === undefined) {
      const r = await exited;
      throw r.error ?? new Error(`runSmtpd: could not start ${bin}`);
    }

    let timedOut = false;
    const deadline = new Promise<typeof TIMEOUT>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve(TIMEOUT);
      }, timeoutMs);
    });
    const within = <T>(p: Promise<T>): Promise<T | typeof TIMEOUT> => Promise.race([p, deadline]);

    let writeError: string | null = null;
    let errorText: Buffer = Buffer.alloc(0);
    let status: { code: number | null; signal: string | null } | typeof TIMEOUT = TIMEOUT;
    // Each step runs only if no deadline has passed; the steps are qmail's, in qmail's order.
    steps: {
      // 1. The whole message on fd 0, then close it.
      const mSock = new Socket({ fd: take(msg.parent), readable: false, writable: true });
      sockets.push(mSock);
      mSock.on('error', () => undefined);
      const early = o.closeMessageEarly;
      const mBytes =
        early === undefined || early === false
          ? message
          : message.subarray(0, early === true ? Math.floor(message.length / 2) : Math.max(0, early));
      const m = await within(writeAll(mSock, [mBytes], 0));
      if (m === TIMEOUT) break steps;
      writeError = m;
      mSock.destroy();

      // 2. The envelope on fd 1 (nothing after a failed message write, like qmail's flagerr), then close.
      const eSock = new Socket({ fd: take(env.parent), readable: false, writable: true });
      sockets.push(eSock);
      eSock.on('error', () => undefined);
      if (writeError === null) {
        const chunks = splitAt(o.envelope, o.envelopeChunks);
        const e = await within(writeAll(eSock, chunks, chunks.length > 1 ? (o.envelopeDelayMs ?? 2) : 0));
        if (e === TIMEOUT) break steps;
        writeError = e;
      }
      eSock.destroy();

      // 3. The error pipe, to EOF; at most 255 bytes are kept.
      if (errp) {
        const x = readSocket(take(errp.parent), ERROR_TEXT_MAX);
        sockets.push(x.sock);
        const r = await within(x.eof);
        errorText = x.data();
        if (r === TIMEOUT) break steps;
      }

      // 4. Only now, the exit status.
      status = await within(exited);
    }
    const ms = performance.now() - t0;

    if (status === TIMEOUT) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const late = await waitAtMost(exited, KILL_WAIT_MS);
      status = late === TIMEOUT ? { code: null, signal: null } : late;
    }
    clearTimeout(timer);
    await waitAtMost(stderr.eof, STDERR_GRACE_MS);

    return {
      pid: child.pid,
      code: status.code,
      signal: status.signal,
      errorText,
      stderr: stderr.data().toString('utf8'),
      ms,
      timedOut,
      writeError,
    };
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
    for (const fd of opened) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    rmSync(fifoDir, { recursive: true, force: true });
    if (ownCwd !== undefined) rmSync(ownCwd, { recursive: true, force: true });
  }
}
