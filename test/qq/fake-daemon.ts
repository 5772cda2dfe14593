// Test doubles for bin/nqqueue-qq: a fake `nqqueue serve` on $NQQUEUE_HOME/nqqueue.sock that speaks
// docs/daemon-protocol.md (decision, copies for the client's qmail-queue, reply) and can be told to
// misbehave, and a recording program (a /bin/sh script) to stand for the standalone `nqqueue` next to a
// copy of the client, or for qmail-queue: it records exactly what it was started with.

import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { splitAt } from '../helpers/smtpd.js';

/** <repo>/bin/nqqueue-qq (this file is compiled to <repo>/dist-test/test/qq/). */
export const QQ_BIN = fileURLToPath(new URL('../../../bin/nqqueue-qq', import.meta.url));
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export interface Answer {
  code: number;
  refusal?: Buffer | string;
  log?: Buffer | string;
}

export interface Copy {
  message: Buffer;
  envelope: Buffer;
  /** The qmail-queue timeout sent with 'Q' (default 10000 ms). */
  timeoutMs?: number;
  /** Destroy the connection after this many bytes of the copy ('Q' included) instead of all. */
  cutAfter?: number;
}

export type Behaviour =
  /** A well-formed answer, sent in pieces at `cuts` (byte offsets) when given. */
  | ({ kind: 'reply'; cuts?: number[]; gapMs?: number } & Answer)
  /**
   * 'D' G (G = `announce`, default the number of copies), each copy for the client's qmail-queue (its
   * 'q' answer awaited), then the reply — or the connection destroyed / held silent instead.
   */
  | { kind: 'deliver'; announce?: number; copies: Copy[]; then: Answer | 'destroy' | 'hold'; frameSize?: number; pending?: Buffer | string; ahead?: { us: number; line: Buffer | string } }
  /** Any bytes (garbage, a truncated or oversized reply), then end, destroy, or keep the connection. */
  | { kind: 'raw'; bytes: Buffer | string; then: 'end' | 'destroy' | 'hold'; cuts?: number[]; gapMs?: number }
  /** Destroy the connection once this many bytes of the client's input have arrived. */
  | { kind: 'dieAfter'; bytes: number }
  /** Read everything, answer nothing, never close. */
  | { kind: 'silent' };

export interface Received {
  /** Every byte the client sent before the end of its input. */
  raw: Buffer;
  /** The input was complete (both 0-length frames, or the read-error marker). */
  complete: boolean;
  env: Buffer;
  message: Buffer;
  envelope: Buffer;
  /** The length of every data frame, both streams. */
  frames: number[];
  readError: boolean;
  /** The status byte of each 'q' answer. */
  statuses: number[];
  /** The qmail-queue pid of each 'q' answer. */
  pids: number[];
}

/** Strings are taken byte for byte (latin1). */
export function bytesOf(x: Buffer | string): Buffer {
  return typeof x === 'string' ? Buffer.from(x, 'latin1') : x;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function answerBytes(a: Answer): Buffer {
  const refusal = bytesOf(a.refusal ?? '');
  const log = bytesOf(a.log ?? '');
  return Buffer.concat([Buffer.from('R'), Buffer.from([a.code, refusal.length]), refusal, u32(log.length), log]);
}

/** 'L' and the line the client writes itself if the daemon goes away after its decision. */
export function pendingBytes(line: Buffer | string): Buffer {
  const b = bytesOf(line);
  return Buffer.concat([Buffer.from('L'), u32(b.length), b]);
}

/** 'A', the microseconds so far and the line given ahead (byte 1: the pids, byte 2: the ms). */
export function aheadBytes(us: number, line: Buffer | string): Buffer {
  const b = bytesOf(line);
  return Buffer.concat([Buffer.from('A'), u32(us), u32(b.length), b]);
}

/** 'Q', the timeout, the message and the envelope as frames of at most `frameSize` bytes. */
export function copyBytes(c: Copy, frameSize = 65536): Buffer {
  const parts: Buffer[] = [Buffer.from('Q'), u32(c.timeoutMs ?? 10000)];
  for (const data of [c.message, c.envelope]) {
    for (let i = 0; i < data.length; i += frameSize) {
      const f = data.subarray(i, i + frameSize);
      parts.push(u32(f.length), f);
    }
    parts.push(u32(0));
  }
  return Buffer.concat(parts);
}

/** Parses the client's input incrementally; bytes after it (the 'q' answers) are kept apart. */
class Connection {
  private pending: Buffer = Buffer.alloc(0);
  private state: 'magic' | 'envlen' | 'env' | 'len' | 'data' | 'done' | 'bad' = 'magic';
  private want = 4;
  private stream = 0;
  private readonly chunks: Buffer[][] = [[], []];
  private readonly rawChunks: Buffer[] = [];
  private after: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed = false;
  readonly rec: Received = {
    raw: Buffer.alloc(0),
    complete: false,
    env: Buffer.alloc(0),
    message: Buffer.alloc(0),
    envelope: Buffer.alloc(0),
    frames: [],
    readError: false,
    statuses: [],
    pids: [],
  };

  /** True once the input is complete. */
  push(chunk: Buffer): boolean {
    if (this.state === 'done') {
      this.after = Buffer.concat([this.after, chunk]);
      this.notify();
      return true;
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.state !== 'done' && this.state !== 'bad' && this.pending.length >= this.want) {
      const part = this.pending.subarray(0, this.want);
      this.pending = this.pending.subarray(this.want);
      switch (this.state) {
        case 'magic':
          this.state = part.toString('latin1') === 'NQQ1' ? 'envlen' : 'bad';
          this.want = 4;
          break;
        case 'envlen':
          this.want = part.readUInt32BE(0);
          this.state = this.want > 65536 ? 'bad' : 'env';
          break;
        case 'env':
          this.rec.env = Buffer.from(part);
          this.state = 'len';
          this.want = 4;
          break;
        case 'len': {
          const n = part.readUInt32BE(0);
          if (n === 0xffffffff) {
            this.rec.readError = true;
            this.state = 'done';
          } else if (n === 0) {
            this.stream++;
            this.want = 4;
            if (this.stream === 2) this.state = 'done';
          } else if (n > 1024 * 1024) {
            this.state = 'bad';
          } else {
            this.rec.frames.push(n);
            this.want = n;
            this.state = 'data';
          }
          break;
        }
        case 'data':
          this.chunks[this.stream]!.push(Buffer.from(part));
          this.state = 'len';
          this.want = 4;
          break;
      }
    }
    const rest = this.pending.length;
    this.rawChunks.push(this.state === 'done' ? chunk.subarray(0, chunk.length - rest) : chunk);
    if (this.state === 'done' && rest > 0) {
      this.after = Buffer.from(this.pending);
      this.pending = Buffer.alloc(0);
    }
    this.rec.raw = Buffer.concat(this.rawChunks);
    this.rec.complete = this.state === 'done';
    this.rec.message = Buffer.concat(this.chunks[0]!);
    this.rec.envelope = Buffer.concat(this.chunks[1]!);
    return this.state === 'done';
  }

  get bad(): boolean {
    return this.state === 'bad';
  }

  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The next n bytes the client sends after its input, or undefined if the connection ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.after.length < n) {
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const out = this.after.subarray(0, n);
    this.after = this.after.subarray(n);
    return out;
  }
}


export interface FakeDaemon {
  readonly path: string;
  behaviour: Behaviour;
  /** One record per connection, in order. */
  readonly connections: Received[];
  /** Protocol violations by the client (a bad greeting, an oversized frame, a bad 'q' answer). */
  readonly violations: string[];
  close(): Promise<void>;
}

export async function startFakeDaemon(home: string, behaviour: Behaviour): Promise<FakeDaemon> {
  const path = join(home, 'nqqueue.sock');
  const sockets = new Set<Socket>();
  const connections: Received[] = [];
  const violations: string[] = [];
  const state = { behaviour };

  const send = async (sock: Socket, data: Buffer, cuts?: number[], gapMs?: number): Promise<void> => {
    const parts = splitAt(data, cuts);
    for (let i = 0; i < parts.length; i++) {
      if (sock.destroyed) return;
      if (parts[i]!.length > 0) sock.write(parts[i]!);
      if (i < parts.length - 1) await delay(gapMs ?? 2);
    }
  };

  const deliver = async (sock: Socket, c: Connection, b: Extract<Behaviour, { kind: 'deliver' }>): Promise<void> => {
    sock.write(
      Buffer.concat([
        ...(b.pending === undefined ? [] : [pendingBytes(b.pending)]),
        ...(b.ahead === undefined ? [] : [aheadBytes(b.ahead.us, b.ahead.line)]),
        Buffer.from('D'),
        u32(b.announce ?? b.copies.length),
      ]),
    );
    for (const copy of b.copies) {
      const bytes = copyBytes(copy, b.frameSize);
      if (copy.cutAfter !== undefined) {
        sock.write(bytes.subarray(0, copy.cutAfter), () => sock.destroy());
        return;
      }
      sock.write(bytes);
      const q = await c.read(6);
      if (!q) return;
      if (q[0] !== 0x71) violations.push(`expected q, got ${q[0]}`);
      c.rec.statuses.push(q[1]!);
      c.rec.pids.push(q.readUInt32BE(2));
    }
    if (b.then === 'destroy') sock.destroy();
    else if (b.then !== 'hold') sock.end(answerBytes(b.then));
  };

  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    const b = state.behaviour;
    const c = new Connection();
    connections.push(c.rec);
    const gone = () => {
      c.closed = true;
      c.notify();
    };
    sock.on('close', () => {
      sockets.delete(sock);
      gone();
    });
    sock.on('end', gone);
    sock.on('error', () => undefined);
    let seen = 0;
    let answered = false;
    sock.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      const done = c.push(chunk);
      if (c.bad) violations.push('bad input');
      if (b.kind === 'dieAfter') {
        if (seen >= b.bytes) sock.destroy();
        return;
      }
      if (!done || answered) return;
      answered = true;
      if (b.kind === 'reply') {
        void send(sock, answerBytes(b), b.cuts, b.gapMs).then(() => sock.end());
      } else if (b.kind === 'deliver') {
        void deliver(sock, c, b);
      } else if (b.kind === 'raw') {
        void send(sock, bytesOf(b.bytes), b.cuts, b.gapMs).then(() => {
          if (b.then === 'end') sock.end();
          else if (b.then === 'destroy') sock.destroy();
        });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    path,
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(v: Behaviour) {
      state.behaviour = v;
    },
    connections,
    violations,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RunRecord {
  message: Buffer;
  envelope: Buffer;
  /** The environment exactly as execve gave it (/proc/PID/environ). */
  env: Buffer;
  argv0: string;
  argc: number;
  /** fd number → what /proc/PID/fd/N pointed to when the program started. */
  fds: Map<number, string>;
}

export interface Recorder {
  readonly path: string;
  /** Sets what the program does: its exit code and what it writes on fd 6 / fd 4. */
  set(o: { code?: number; text?: string; textFd?: 6 | 4 }): void;
  /** Every run since the last reset, in order. */
  runs(): RunRecord[];
  reset(): void;
}

/**
 * A program at `path` that records each run in a numbered directory under `rec`: fd 0 and fd 1 read to
 * EOF, its environment, argv and descriptors. Absolute paths only: it may be given no PATH.
 */
export function makeRecorder(path: string, rec: string): Recorder {
  mkdirSync(rec, { recursive: true, mode: 0o700 });
  const set = (o: { code?: number; text?: string; textFd?: 6 | 4 }): void => {
    const text = o.text === undefined ? '' : `printf '%s' '${o.text.replace(/'/g, `'\\''`)}' >&${o.textFd ?? 6}\n`;
    // The descriptor list comes first, from ls in a subshell: dash applies a simple command's
    // redirections in the shell itself, which would show up in the list.
    const script =
      '#!/bin/sh\n' +
      `r='${rec}'\n` +
      '( /bin/ls -l /proc/$$/fd/ > "$r/fds.$$" )\n' +
      'n=1\n' +
      'while ! /bin/mkdir "$r/$n" 2>/dev/null; do n=$((n + 1)); done\n' +
      'r="$r/$n"\n' +
      '/bin/mv "$r/../fds.$$" "$r/fds.tmp"\n' +
      '/bin/cat /proc/$$/environ > "$r/environ"\n' +
      '/bin/cat > "$r/message"\n' +
      '/bin/cat <&1 > "$r/envelope"\n' +
      `printf '%s\\n%s\\n' "$0" "$#" > "$r/argv"\n` +
      text +
      '/bin/mv "$r/fds.tmp" "$r/fds"\n' +
      `exit ${o.code ?? 0}\n`;
    writeFileSync(`${path}.tmp`, script, { mode: 0o755 });
    chmodSync(`${path}.tmp`, 0o755);
    renameSync(`${path}.tmp`, path);
  };
  set({});
  return {
    path,
    set,
    reset: () => {
      for (const f of readdirSync(rec)) rmSync(join(rec, f), { recursive: true, force: true });
    },
    runs: () =>
      readdirSync(rec)
        .filter((n) => /^\d+$/.test(n))
        .map(Number)
        .sort((a, b) => a - b)
        .map((n) => {
          const d = join(rec, String(n));
          if (!existsSync(join(d, 'fds'))) throw new Error(`${path} run ${n} started but did not finish`);
          const [argv0 = '', argc = ''] = readFileSync(join(d, 'argv'), 'utf8').split('\n');
          const fds = new Map<number, string>();
          for (const line of readFileSync(join(d, 'fds'), 'utf8').split('\n')) {
            const m = / (\d+) -> (.*)$/.exec(line);
            if (m) fds.set(Number(m[1]), m[2]!);
          }
          return {
            message: readFileSync(join(d, 'message')),
            envelope: readFileSync(join(d, 'envelope')),
            env: readFileSync(join(d, 'environ')),
            argv0,
            argc: Number(argc),
            fds,
          };
        }),
  };
}

export interface Install {
  /** The temp dir: bin/ (a copy of the client and the fake nqqueue), home/, rec/. */
  readonly dir: string;
  /** The copy of the client to run. */
  readonly qq: string;
  readonly home: string;
  /** The fake standalone program, bin/nqqueue next to the client. */
  readonly standalone: Recorder;
  /** What the standalone program was given, or undefined if it did not run. */
  ran(): RunRecord | undefined;
  cleanup(): void;
}

/** A temp installation: a copy of `bin` (default bin/nqqueue-qq) with a fake `nqqueue` beside it. */
export function makeInstall(bin = QQ_BIN): Install {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-qq-'));
  const binDir = join(dir, 'bin');
  const home = join(dir, 'home');
  for (const d of [binDir, home]) mkdirSync(d, { mode: 0o700 });
  const qq = join(binDir, 'nqqueue-qq');
  copyFileSync(bin, qq);
  chmodSync(qq, 0o755);
  const standalone = makeRecorder(join(binDir, 'nqqueue'), join(dir, 'rec'));
  return {
    dir,
    qq,
    home,
    standalone,
    ran: () => {
      const runs = standalone.runs();
      if (runs.length > 1) throw new Error('the standalone program ran more than once');
      return runs[0];
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** NAME=VALUE\0 ... as a sorted list, for comparing environments whatever their order. */
export function envList(block: Buffer): string[] {
  return block
    .toString('latin1')
    .split('\0')
    .filter((e) => e !== '')
    .sort();
}

export function envOf(o: { [name: string]: string }): string[] {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
}
