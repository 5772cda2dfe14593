// The qmail-queue stand-in program: reads fd 0 to EOF, then the envelope on fd 1, validates it the way
// notqmail's qmail-queue.c does, and records what it received in a record directory (tmp → fsync →
// rename → fsync the directory: two fsyncs, like the real one). test/helpers/stand-in.ts generates the
// executable that runs it; everything it needs comes in its config, never from env, cwd or PATH.
//
// Kept free of imports beyond node:fs / node:path: it starts once per qmail-queue call.

import {
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface StandInOptions {
  /**
   * Exit with `code` on call number `call`. By default after reading the message and a valid envelope
   * (nothing is recorded as delivered); with `early: true` at once, reading nothing (the caller may
   * then get EPIPE).
   */
  failOn?: { call: number; code: number; early?: boolean }[];
  /** SIGKILL itself on these calls, after reading the message and a valid envelope. */
  killOn?: number[];
  /** Never exit on these calls, and read nothing at all (the caller's deadline must fire). */
  hangOn?: number[];
  /** Take `ms` milliseconds on call number `call` (after reading everything) before queueing it. */
  slowOn?: { call: number; ms: number }[];
}

export interface StandInConfig {
  /** The record directory (see LAYOUT). */
  dir: string;
  options: StandInOptions;
}

/** Names inside the record directory. */
export const LAYOUT = {
  /** One file per call, named by the call number; content `<pid> <outcome>\n` and an optional detail line. */
  calls: 'calls',
  /** One file per successful call, named by the call number (see encodeDelivery). */
  deliveries: 'deliveries',
  /** Temporary files, renamed into place. */
  tmp: 'tmp',
  /** The last call number handed out: a hint, the O_EXCL claim in calls/ is the authority. */
  counter: 'counter',
} as const;

/** qmail-queue.c's ADDR: an address must end within this many bytes (so 1002 is the longest). */
export const ADDR = 1003;

export type EnvelopeCheck =
  | { ok: true; sender: Buffer; recipients: Buffer[] }
  | { ok: false; code: 11 | 54 | 91; reason: string };

/**
 * The envelope as qmail-queue.c reads it, byte by byte, so the first error in stream order wins; plus
 * the check that nothing follows the final NUL.
 */
export function checkEnvelope(env: Buffer): EnvelopeCheck {
  let i = 0;
  const address = (): Buffer | EnvelopeCheck => {
    const start = i;
    for (let len = 0; len < ADDR; len++) {
      if (i >= env.length) return { ok: false, code: 54, reason: 'EOF inside an address' };
      if (env[i++] === 0) return env.subarray(start, i - 1);
    }
    return { ok: false, code: 11, reason: `address at offset ${start} is ${ADDR} bytes or more` };
  };

  if (env.length === 0) return { ok: false, code: 54, reason: 'empty envelope' };
  if (env[i++] !== 0x46) return { ok: false, code: 91, reason: 'first byte is not F' };
  const sender = address();
  if (!Buffer.isBuffer(sender)) return sender;
  const recipients: Buffer[] = [];
  for (;;) {
    if (i >= env.length) return { ok: false, code: 54, reason: 'EOF before the final NUL' };
    const ch = env[i++];
    if (ch === 0) break;
    if (ch !== 0x54) return { ok: false, code: 91, reason: `record at offset ${i - 1} does not start with T` };
    const rcpt = address();
    if (!Buffer.isBuffer(rcpt)) return rcpt;
    recipients.push(rcpt);
  }
  if (i !== env.length) return { ok: false, code: 91, reason: `${env.length - i} bytes after the final NUL` };
  return { ok: true, sender: Buffer.from(sender), recipients: recipients.map((r) => Buffer.from(r)) };
}

/** A delivery file: one header line, then the message bytes, then the envelope bytes as received. */
export function encodeDelivery(message: Buffer, envelope: Buffer, envelopeReads: number): Buffer {
  const head = `nqq-stand-in-delivery message=${message.length} envelope=${envelope.length} reads=${envelopeReads}\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), message, envelope]);
}

export function decodeDelivery(file: Buffer): { message: Buffer; envelope: Buffer; envelopeReads: number } {
  const nl = file.indexOf(0x0a);
  const m = /^nqq-stand-in-delivery message=(\d+) envelope=(\d+) reads=(\d+)$/.exec(
    file.subarray(0, nl < 0 ? 0 : nl).toString('latin1'),
  );
  if (!m) throw new Error('not a stand-in delivery file');
  const ml = Number(m[1]);
  const el = Number(m[2]);
  if (file.length !== nl + 1 + ml + el) throw new Error('stand-in delivery file has the wrong length');
  return {
    message: file.subarray(nl + 1, nl + 1 + ml),
    envelope: file.subarray(nl + 1 + ml),
    envelopeReads: Number(m[3]),
  };
}

const pause = new Int32Array(new SharedArrayBuffer(4));
function sleep(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/** Reads fd to EOF with readSync; fd may be a pipe, a socket, or non-blocking (EAGAIN → wait, retry). */
export function readAll(fd: number): { data: Buffer; reads: number } {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(65536);
  let reads = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
        sleep(1);
        continue;
      }
      throw err;
    }
    if (n === 0) return { data: Buffer.concat(chunks), reads };
    reads++;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

function writeAtomic(dir: string, target: string, data: Buffer | string, durable: boolean): void {
  const tmp = join(dir, LAYOUT.tmp, `${target.replace(/\//g, '_')}.${process.pid}`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, target));
  if (durable) {
    const dfd = openSync(join(dir, target, '..'), constants.O_RDONLY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}

/** Claims the next call number: O_EXCL-creates calls/<n>, so separate processes never share one. */
function claimCall(dir: string): number {
  let n = 0;
  try {
    n = Number.parseInt(readFileSync(join(dir, LAYOUT.counter), 'latin1'), 10) || 0;
  } catch {
    n = 0;
  }
  for (;;) {
    n++;
    let fd: number;
    try {
      fd = openSync(join(dir, LAYOUT.calls, String(n)), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    try {
      writeSync(fd, `${process.pid} started\n`);
    } finally {
      closeSync(fd);
    }
    writeAtomic(dir, LAYOUT.counter, String(n), false);
    return n;
  }
}

function exitWith(code: number): never {
  process.exit(code);
}

/**
 * The program. Outcomes written to calls/<n>: `delivered`, `exit <code>` (its own validation or read
 * error, as qmail-queue; the reason on the detail line), `fail <code>` (told to fail), `killed`, `hung`,
 * `error` (a stand-in bug, exit 81); `started` means it died before deciding (killed from outside).
 */
export function runStandIn(config: StandInConfig): never {
  const { dir, options } = config;
  let call = 0;
  const outcome = (text: string, detail = ''): void => {
    const body = `${process.pid} ${text}\n${detail === '' ? '' : `${detail.replace(/\n/g, ' ')}\n`}`;
    if (call > 0) writeAtomic(dir, join(LAYOUT.calls, String(call)), body, false);
  };
  try {
    for (const sub of [LAYOUT.calls, LAYOUT.deliveries, LAYOUT.tmp]) mkdirSync(join(dir, sub), { recursive: true });
    call = claimCall(dir);
    const fail = options.failOn?.find((f) => f.call === call);

    if (options.hangOn?.includes(call)) {
      outcome('hung');
      for (;;) Atomics.wait(pause, 0, 0);
    }
    if (fail?.early) {
      outcome(`fail ${fail.code}`);
      return exitWith(fail.code);
    }

    // Like qmail-queue: the whole message first, only then the envelope.
    let message: Buffer;
    let envelope: { data: Buffer; reads: number };
    try {
      message = readAll(0).data;
      envelope = readAll(1);
    } catch (err) {
      outcome('exit 54', `read error ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      return exitWith(54);
    }

    const check = checkEnvelope(envelope.data);
    if (!check.ok) {
      outcome(`exit ${check.code}`, check.reason);
      return exitWith(check.code);
    }
    if (fail) {
      outcome(`fail ${fail.code}`);
      return exitWith(fail.code);
    }
    if (options.killOn?.includes(call)) {
      outcome('killed');
      process.kill(process.pid, 'SIGKILL');
      for (;;) Atomics.wait(pause, 0, 0);
    }

    const slow = options.slowOn?.find((f) => f.call === call);
    if (slow) Atomics.wait(pause, 0, 0, slow.ms);
    writeAtomic(dir, join(LAYOUT.deliveries, String(call)), encodeDelivery(message, envelope.data, envelope.reads), true);
    outcome('delivered');
    return exitWith(0);
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    try {
      writeSync(2, `qmail-queue stand-in: ${text}\n`);
      outcome('error', text);
    } catch {
      // nothing left to report with
    }
    return exitWith(81);
  }
}
