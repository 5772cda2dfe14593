// The bench's qmail-smtpd: bench/smtpd.c, a C process that runs a QMAILQUEUE program as qmail.c does
// (pipes on fd 0, 1 and 6, vfork, execv; the message, then the envelope, then the error pipe to EOF,
// then waitpid) and times it, while this node process sleeps. runSmtpd (test/helpers/smtpd.ts) gives the
// program the same descriptors in the same order, but it spawns through libuv, makes FIFOs with a
// mkfifo process and feeds the pipes from its event loop: on 2 cores that node process competes with
// the program it times, and with a program of several processes (nqqueue-qq, the daemon, qmail-queue)
// more than with the stand-in alone. qmail-smtpd spends its time blocked in write and wait.
//
// One C process runs one program at a time; `run` takes an idle one or starts another, so messages in
// flight at once (the throughput and memory rows) each have their own, as each SMTP session has its own
// qmail-smtpd.

import { spawn } from 'node:child_process';

const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const str = (s) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(String(s));
  return [u32(b.length), b];
};

const SIGNALS = { 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM' };

class Runner {
  constructor(bin) {
    this.proc = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.buf = Buffer.alloc(0);
    this.waiting = undefined;
    // Its death is told by 'exit' below; a write to it after that must not end the bench.
    this.proc.stdin.on('error', () => undefined);
    this.proc.stdout.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    this.proc.once('exit', (code, signal) => {
      this.dead = `bench/smtpd exited (${signal ?? code})`;
      this.waiting?.reject(new Error(this.dead));
      this.waiting = undefined;
    });
  }

  parse() {
    const b = this.buf;
    if (!this.waiting || b.length < 24) return;
    const logLen = b.readUInt32LE(20);
    if (b.length < 24 + logLen + 4) return;
    const errLen = b.readUInt32LE(24 + logLen);
    const end = 28 + logLen + errLen;
    if (b.length < end) return;
    const status = b.readUInt32LE(0);
    const result = {
      pid: b.readUInt32LE(4) || undefined,
      code: status >= 256 ? null : status,
      signal: status >= 256 ? (SIGNALS[status - 256] ?? `signal ${status - 256}`) : null,
      ms: Number(b.readBigUInt64LE(8)) / 1e6,
      timedOut: b.readUInt32LE(16) === 1,
      stderr: b.subarray(24, 24 + logLen).toString('utf8'),
      errorText: Buffer.from(b.subarray(28 + logLen, end)),
      writeError: null,
    };
    this.buf = b.subarray(end);
    const w = this.waiting;
    this.waiting = undefined;
    w.resolve(result);
  }

  run(o) {
    if (this.dead) return Promise.reject(new Error(this.dead));
    const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const args = o.args ?? [];
    const parts = [
      u32(o.timeoutMs ?? 60_000),
      ...str(o.bin),
      u32(args.length),
      ...args.flatMap(str),
      u32(env.length),
      ...env.flatMap(str),
      ...str(o.cwd),
      ...str(o.message),
      ...str(o.envelope),
    ];
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.proc.stdin.write(Buffer.concat(parts));
    });
  }

  stop() {
    this.proc.stdin.end();
  }
}

/** Runners of the C program `bin`, one per message in flight. */
export class Smtpd {
  constructor(bin) {
    this.bin = bin;
    this.idle = [];
    this.all = [];
  }

  /** As runSmtpd: { bin, args, message, envelope, env, cwd, timeoutMs } → { code, signal, stderr, ms, pid, timedOut, errorText }. */
  async run(o) {
    const r = this.idle.pop() ?? this.add();
    try {
      return await r.run(o);
    } finally {
      if (!r.dead) this.idle.push(r);
    }
  }

  add() {
    const r = new Runner(this.bin);
    this.all.push(r);
    return r;
  }

  stop() {
    for (const r of this.all) r.stop();
  }
}
