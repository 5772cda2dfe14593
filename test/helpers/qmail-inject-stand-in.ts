// The qmail-inject stand-in program: what qmail-inject(8) documents for the flags NQqueue uses, and a
// record of each call. It parses its arguments with qmail-inject's own getopt rules (djb's sgetopt,
// "aAhHnNf:": clustered letters, -fSENDER or -f SENDER, "--" ends the options, an unknown letter exits
// 100), reads the message on stdin to EOF, refuses a header field qmail-inject would refuse (a name
// with a space or a control character, a line with no colon: exit 100), takes the recipients from the
// arguments with -a (or by default when there are any), and records argv, the environment, the
// envelope (the -f sender, else qmail-inject's default from QMAILSUSER/QMAILSHOST...) and the bytes.
// Header recipients (-h, -H, no arguments) are not done: it exits 100 saying so, so a caller that
// relies on them is noticed. -n prints the message instead of queueing it, as qmail-inject does.
// Kept free of imports beyond node:fs / node:path: it is copied next to the executable that runs it.

import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface InjectStandInOptions {
  /** Exit with this code (111 temporary, 100 permanent) on these calls (numbered from 1), after reading the message. */
  failOn?: { call: number; code: number }[];
  /** Exit with this code on every call. */
  failAll?: number;
  /** Take this long (after reading the message) before deciding: a slow queue. */
  delayMs?: number;
}

export interface InjectStandInConfig {
  dir: string;
  options: InjectStandInOptions;
}

/** What one call left in `calls/<n>.json` (written whole, renamed into place). */
export interface InjectCall {
  call: number;
  pid: number;
  /** The user it ran as. */
  uid: number;
  argv: string[];
  env: Record<string, string>;
  /** `queued` (exit 0), `printed` (-n), `fail <code>` (told to), `exit 100 <why>` (its own refusal). */
  outcome: string;
  sender?: string;
  recipients?: string[];
  /** The message exactly as read from stdin, base64. */
  message: string;
}

function readAll(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EINTR') continue;
      if (code === 'EOF') return Buffer.concat(chunks);
      throw err;
    }
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

/** sgetopt over "aAhHnNf:": the options seen, in order, and where the operands start; or the bad letter. */
export function sgetopt(args: string[]): { opts: [string, string?][]; operands: string[] } | { bad: string } {
  const opts: [string, string?][] = [];
  let i = 0;
  while (i < args.length) {
    const a = args[i]!;
    if (a[0] !== '-' || a === '-') break;
    if (a === '--') {
      i++;
      break;
    }
    for (let p = 1; p < a.length; p++) {
      const c = a[p]!;
      if (c === 'f') {
        const rest = a.slice(p + 1);
        if (rest !== '') opts.push(['f', rest]);
        else {
          i++;
          if (i >= args.length) return { bad: 'f' };
          opts.push(['f', args[i]!]);
        }
        break;
      }
      if (!'aAhHnN'.includes(c)) return { bad: c };
      opts.push([c]);
    }
    i++;
  }
  return { opts, operands: args.slice(i) };
}

/** hfield_valid: a field name of bytes 33..126 before a colon (blanks allowed before the colon). */
function headerProblem(message: Buffer): string | undefined {
  const text = message.toString('latin1');
  const end = text.search(/\n\n|^\n/);
  const head = end < 0 ? text : text.slice(0, end);
  for (const line of head.split('\n')) {
    if (line === '' || line[0] === ' ' || line[0] === '\t') continue;
    const colon = line.indexOf(':');
    if (colon < 0) return `invalid header field: ${line.slice(0, 80)}`;
    const name = line.slice(0, colon).replace(/[ \t]+$/, '');
    if (name === '' || /[^\x21-\x7e]/.test(name)) return `invalid header field: ${line.slice(0, 80)}`;
  }
  return undefined;
}

function claim(dir: string): number {
  for (let n = 1; ; n++) {
    try {
      closeSync(openSync(join(dir, 'calls', `${n}.claim`), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644));
      return n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

export function runInjectStandIn(config: InjectStandInConfig): never {
  const { dir, options } = config;
  mkdirSync(join(dir, 'calls'), { recursive: true });
  const call = claim(dir);
  const argv = process.argv.slice(2);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const record = (r: Omit<InjectCall, 'call' | 'pid' | 'uid' | 'argv' | 'env'>, code: number): never => {
    const full: InjectCall = { call, pid: process.pid, uid: process.getuid?.() ?? -1, argv, env, ...r };
    const tmp = join(dir, 'calls', `${call}.tmp`);
    writeFileSync(tmp, JSON.stringify(full));
    renameSync(tmp, join(dir, 'calls', `${call}.json`));
    process.exit(code);
  };
  const message = readAll(0);
  const m64 = message.toString('base64');
  const parsed = sgetopt(argv);
  if ('bad' in parsed) {
    writeSync(2, `qmail-inject: usage: qmail-inject [ -nNaAhH ] [ -fsender ] [ recip ... ]\n`);
    return record({ outcome: `exit 100 bad option -${parsed.bad}`, message: m64 }, 100);
  }
  let strategy = 'default';
  let sender: string | undefined;
  let print = false;
  for (const [c, arg] of parsed.opts) {
    if (c === 'f') sender = arg;
    else if (c === 'n') print = true;
    else if (c === 'N') print = false;
    else strategy = c === 'a' ? 'args' : c === 'A' ? 'default' : c === 'h' ? 'header' : 'both';
  }
  if (strategy === 'default') strategy = parsed.operands.length > 0 ? 'args' : 'header';
  if (strategy !== 'args') {
    writeSync(2, 'qmail-inject stand-in: header recipients (-h, -H, or no recipient argument) are not done by the stand-in\n');
    return record({ outcome: 'exit 100 header recipients', message: m64 }, 100);
  }
  const bad = headerProblem(message);
  if (bad) {
    writeSync(2, `qmail-inject: fatal: ${bad}\n`);
    return record({ outcome: `exit 100 ${bad}`, message: m64 }, 100);
  }
  // qmail-inject's default envelope sender: QMAILSUSER (else the From user) @ QMAILSHOST (else the host).
  const user = env.QMAILSUSER ?? env.QMAILUSER ?? env.MAILUSER ?? env.USER ?? env.LOGNAME ?? 'anonymous';
  const host = env.QMAILSHOST ?? env.QMAILHOST ?? env.MAILHOST;
  const envelope = { sender: sender ?? (host ? `${user}@${host}` : user), recipients: parsed.operands };
  if (print) {
    writeSync(1, message);
    return record({ outcome: 'printed', ...envelope, message: m64 }, 0);
  }
  if (options.delayMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, options.delayMs);
  const code = options.failAll ?? options.failOn?.find((f) => f.call === call)?.code;
  if (code !== undefined) {
    writeSync(2, `qmail-inject: fatal: told to fail (${code})\n`);
    return record({ outcome: `fail ${code}`, ...envelope, message: m64 }, code);
  }
  return record({ outcome: 'queued', ...envelope, message: m64 }, 0);
}

/** Every finished call, in call order. */
export function readInjectCalls(dir: string): InjectCall[] {
  let names: string[];
  try {
    names = readdirSync(join(dir, 'calls'));
  } catch {
    return [];
  }
  return names
    .filter((n) => /^\d+\.json$/.test(n))
    .map((n) => JSON.parse(readFileSync(join(dir, 'calls', n), 'utf8')) as InjectCall)
    .sort((a, b) => a.call - b.call);
}
