// bin/nqqueue-qq, the daemon-mode client, started exactly as qmail-smtpd starts it, against a fake
// daemon (fake-daemon.ts): frames, exit codes, the refusal channel, the log, the copies it hands to
// qmail-queue after 'D', the fallback to the standalone program with byte-exact input, the timeout.

import assert from 'node:assert/strict';
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { envelopeOf, runSmtpd, type RunOptions, type RunResult } from '../helpers/smtpd.js';
import { makeStandIn, type StandIn, type StandInOptions } from '../helpers/stand-in.js';
import { aheadBytes, answerBytes, envList, envOf, makeInstall, makeRecorder, startFakeDaemon, type Behaviour, type FakeDaemon, type Install } from './fake-daemon.js';

const cleanups: (() => void | Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const MESSAGE = Buffer.from(
  'Received: from client.example (HELO helo.client.example) (192.0.2.7)\n  by mx.example.com with SMTP; 26 Nov 2026 10:00:00 -0000\n' +
    'From: <sender@client.example>\nTo: <rcpt@example.com>\nSubject: test\n\nHello.\r lone CR stays\n',
);
const ENVELOPE = envelopeOf('sender@client.example', ['rcpt@example.com', 'other@example.org']);

/** Pseudo-random bytes (every value 0-255, NUL and CR/LF included) that compress to nothing. */
function noise(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

interface Ctx {
  inst: Install;
  daemon?: FakeDaemon;
  /** The qmail-queue the client runs for the daemon's copies (NQQUEUE_QMAILQUEUE). */
  queue: StandIn;
  env: Record<string, string>;
  run(o?: Partial<RunOptions>): Promise<RunResult>;
}

/** A fresh install (and, given a behaviour, a fake daemon on its socket). */
async function ctx(behaviour?: Behaviour, extraEnv: Record<string, string> = {}, queueOpts: StandInOptions = {}): Promise<Ctx> {
  const inst = makeInstall();
  cleanups.push(() => inst.cleanup());
  const queue = makeStandIn(queueOpts);
  cleanups.push(() => queue.cleanup());
  const daemon = behaviour ? await startFakeDaemon(inst.home, behaviour) : undefined;
  if (daemon) cleanups.push(() => daemon.close());
  const env = {
    NQQUEUE_HOME: inst.home,
    NQQUEUE_QMAILQUEUE: queue.path,
    PROTO: 'TCP',
    TCPREMOTEIP: '192.0.2.7',
    NQQUEUE_QQ_TIMEOUT: '20',
    ...extraEnv,
  };
  return {
    inst,
    daemon,
    queue,
    env,
    run: (o = {}) => runSmtpd({ bin: inst.qq, message: MESSAGE, envelope: ENVELOPE, env, ...o }),
  };
}

/** The fallback ran with exactly `message`/`envelope`, this environment plus the client's reason
 * (NQQUEUE_FALLBACK_REASON=why), argv = [its path], and none of the client's own descriptors;
 * `viaCopy`: fd 0/1 were the client's memfds (else qmail's pipes). */
function assertFallback(c: Ctx, r: RunResult, message: Buffer, envelope: Buffer, viaCopy: boolean, why: string, env = c.env): void {
  const f = c.inst.ran();
  assert.ok(f, `the standalone program did not run; stderr: ${r.stderr}`);
  assert.ok(f.message.equals(message), `message: got ${f.message.length} bytes, want ${message.length}`);
  assert.ok(f.envelope.equals(envelope), `envelope: got ${JSON.stringify(f.envelope.toString('latin1'))}`);
  assert.deepEqual(envList(f.env), envOf({ ...env, NQQUEUE_FALLBACK_REASON: why }));
  assert.equal(f.argv0, join(c.inst.dir, 'bin', 'nqqueue'));
  assert.equal(f.argc, 0);
  const kind = (fd: number) => f.fds.get(fd) ?? '';
  if (viaCopy) {
    assert.match(kind(0), /^\/memfd:nqqueue-qq-message/);
    assert.match(kind(1), /^\/memfd:nqqueue-qq-envelope/);
  } else {
    // runSmtpd's pipes are FIFOs it has already unlinked.
    assert.match(kind(0), /\/nqq-smtpd-[^/]+\/message \(deleted\)$/);
    assert.match(kind(1), /\/nqq-smtpd-[^/]+\/envelope \(deleted\)$/);
  }
  for (const [fd, what] of f.fds) {
    if (fd <= 1) continue;
    assert.doesNotMatch(what, /^socket:|memfd:/, `fd ${fd} (${what}) leaked into the standalone program`);
  }
}

// ---- talking to the daemon ----

test('streams the environment, message and envelope to the daemon as frames and relays exit 0', async () => {
  const c = await ctx({ kind: 'reply', code: 0 });
  const r = await c.run();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(c.inst.ran(), undefined);
  assert.equal(c.daemon!.connections.length, 1);
  const got = c.daemon!.connections[0]!;
  assert.ok(got.complete);
  assert.deepEqual(c.daemon!.violations, []);
  assert.ok(got.message.equals(MESSAGE));
  assert.ok(got.envelope.equals(ENVELOPE));
  // The client's environment, then its own pid, the descriptors its refusal text goes to, and that
  // it takes an answer ahead.
  assert.deepEqual(envList(got.env), envOf({ ...c.env, NQQUEUE_QQ_PID: String(r.pid), NQQUEUE_QQ_ERRFDS: '6', NQQUEUE_QQ_AHEAD: '1' }));
  assert.equal(got.raw.subarray(0, 4).toString(), 'NQQ1');
  assert.equal(r.errorText.length, 0);
});

test('a 5 MB message and an envelope split in many writes arrive whole, in frames of 1 to 1048576 bytes', async () => {
  const c = await ctx({ kind: 'reply', code: 0 });
  const message = noise(5 * 1024 * 1024, 7);
  const envelope = envelopeOf('s@x.example', Array.from({ length: 50 }, (_, i) => `r${i}@example.com`));
  const r = await c.run({ message, envelope, envelopeChunks: [1, 2, 3, 100, 200, 500] });
  assert.equal(r.code, 0, r.stderr);
  const got = c.daemon!.connections[0]!;
  assert.ok(got.message.equals(message));
  assert.ok(got.envelope.equals(envelope));
  assert.ok(got.frames.every((n) => n >= 1 && n <= 1024 * 1024));
  assert.deepEqual(c.daemon!.violations, []);
});

test("relays every exit code the daemon gives (0, 11, 31, 53, 54, 71, 81, 82, 91, 100, 255)", async () => {
  const c = await ctx({ kind: 'reply', code: 0 });
  for (const code of [0, 11, 31, 53, 54, 71, 81, 82, 91, 100, 255]) {
    c.daemon!.behaviour = { kind: 'reply', code, log: `code ${code}\n` };
    const r = await c.run();
    assert.equal(r.code, code, `daemon said ${code}; stderr: ${r.stderr}`);
    assert.equal(r.errorText.length, 0);
    assert.match(r.stderr, new RegExp(`code ${code}\n`));
  }
  assert.equal(c.inst.ran(), undefined);
});

test('refusal text with any code but 31/71 is not written and the code stays', async () => {
  const c = await ctx({ kind: 'reply', code: 0 });
  for (const code of [0, 11, 54, 81, 82, 91]) {
    c.daemon!.behaviour = { kind: 'reply', code, refusal: 'Dno thanks (#5.7.1)' };
    const r = await c.run();
    assert.equal(r.code, code);
    assert.equal(r.errorText.length, 0);
  }
});

test('the log text lands on fd 2 byte for byte', async () => {
  const log = 'nqqueue: accept from=<sender@client.example> rcpts=2 ip=192.0.2.7 total=12ms\nsecond line \x01\xff\n';
  const c = await ctx({ kind: 'reply', code: 0, log });
  const r = await c.run();
  assert.equal(r.code, 0);
  assert.equal(r.stderr, Buffer.from(log, 'latin1').toString('utf8'));
});

test("a reply sent in pieces, after 'D' with no copies, is put together", async () => {
  const d = Buffer.concat([Buffer.from('D\0\0\0\0'), answerBytes({ code: 31, refusal: 'Dvirus found (#5.7.1)', log: 'x'.repeat(3000) + '\n' })]);
  const c = await ctx({ kind: 'raw', bytes: d, then: 'end', cuts: [1, 2, 3, 5, 6, 7, 10, 26, 27, 28, 29, 500], gapMs: 3 });
  const r = await c.run();
  assert.equal(r.code, 82, r.stderr);
  assert.equal(r.errorText.toString(), 'Dvirus found (#5.7.1)');
  assert.ok(r.stderr.includes('x'.repeat(3000)));
});

// ---- the refusal channel (src/qmail/exit.ts rules) ----

const REFUSAL = 'Dmessage refused: black-listed sender (#5.7.1)';
const channelCases: { reject: string | undefined; errorFd: 6 | 4 | 'none'; code: 31 | 71; exit: number; written: boolean }[] = [
  { reject: undefined, errorFd: 6, code: 31, exit: 82, written: true },
  { reject: undefined, errorFd: 4, code: 31, exit: 82, written: true },
  { reject: undefined, errorFd: 'none', code: 31, exit: 31, written: false },
  { reject: undefined, errorFd: 6, code: 71, exit: 82, written: true },
  { reject: undefined, errorFd: 'none', code: 71, exit: 71, written: false },
  { reject: '', errorFd: 6, code: 31, exit: 82, written: true },
  { reject: 'auto', errorFd: 4, code: 71, exit: 82, written: true },
  { reject: 'bogus', errorFd: 6, code: 31, exit: 82, written: true },
  { reject: 'fd6', errorFd: 6, code: 31, exit: 82, written: true },
  { reject: 'fd6', errorFd: 4, code: 31, exit: 31, written: false },
  { reject: 'fd6', errorFd: 'none', code: 71, exit: 71, written: false },
  { reject: 'fd4', errorFd: 4, code: 71, exit: 82, written: true },
  { reject: 'fd4', errorFd: 6, code: 71, exit: 71, written: false },
  { reject: 'plain', errorFd: 6, code: 31, exit: 31, written: false },
  { reject: 'plain', errorFd: 4, code: 71, exit: 71, written: false },
];

test('refusal channel: NQQUEUE_REJECT auto/fd6/fd4/plain with fd 6, fd 4 or none; 82 only when written', async () => {
  const c = await ctx({ kind: 'reply', code: 31 });
  for (const k of channelCases) {
    c.daemon!.behaviour = { kind: 'reply', code: k.code, refusal: REFUSAL };
    const env = { ...c.env, ...(k.reject === undefined ? {} : { NQQUEUE_REJECT: k.reject }) };
    const r = await c.run({ env, errorFd: k.errorFd });
    const what = `NQQUEUE_REJECT=${k.reject} errorFd=${k.errorFd} code=${k.code}`;
    assert.equal(r.code, k.exit, what);
    assert.equal(r.errorText.toString(), k.written ? REFUSAL : '', what);
  }
  // No text: nothing to write, the plain code.
  c.daemon!.behaviour = { kind: 'reply', code: 31 };
  const r = await c.run();
  assert.equal(r.code, 31);
  assert.equal(r.errorText.length, 0);
});

test('refusal text is cleaned to printable ASCII before it reaches qmail-smtpd', async () => {
  const c = await ctx({ kind: 'reply', code: 31, refusal: 'Dbad\r\nline\x00\x7f\xe9' });
  const r = await c.run();
  assert.equal(r.code, 82);
  assert.equal(r.errorText.toString('latin1'), 'Dbad??line???');
});

/** Runs the client with arbitrary descriptors (not qmail's FIFOs); stderr is collected. */
function spawnQq(bin: string, stdio: StdioOptions, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { stdio, env, cwd: '/' });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

test('auto writes only to a pipe: fd 6 on a regular file gets nothing (31); NQQUEUE_REJECT=fd6 writes it (82)', async () => {
  const c = await ctx({ kind: 'reply', code: 31, refusal: REFUSAL });
  const dir = mkdtempSync(join(tmpdir(), 'nqq-qq-fd6-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'message'), MESSAGE);
  writeFileSync(join(dir, 'envelope'), ENVELOPE);
  for (const [reject, exit, text] of [
    ['auto', 31, ''],
    ['fd6', 82, REFUSAL],
  ] as const) {
    const fds = [openSync(join(dir, 'message'), 'r'), openSync(join(dir, 'envelope'), 'r'), openSync(join(dir, 'fd6'), 'w')];
    try {
      const r = await spawnQq(c.inst.qq, [fds[0]!, fds[1]!, 'pipe', 'ignore', 'ignore', 'ignore', fds[2]!], {
        ...c.env,
        NQQUEUE_REJECT: reject,
      });
      assert.equal(r.code, exit, r.stderr);
      assert.equal(readFileSync(join(dir, 'fd6'), 'latin1'), text);
    } finally {
      fds.forEach((fd) => closeSync(fd));
    }
  }
});

// ---- after 'D': the copies, run by the client's own qmail-queue ----

/** The message as the daemon would hand it on: its own header on top. */
const COPY1 = { message: Buffer.concat([Buffer.from('X-Scanned: yes\n'), MESSAGE]), envelope: envelopeOf('sender@client.example', ['rcpt@example.com']) };
const COPY2 = { message: Buffer.concat([Buffer.from('X-Scanned: no\n'), MESSAGE]), envelope: envelopeOf('sender@client.example', ['other@example.org']) };

test("'D' with two copies: each goes to qmail-queue byte for byte, its status back as 'q', then the reply", async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1, COPY2], then: { code: 0, log: 'accepted\n' } });
  const r = await c.run();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /accepted\n/);
  const d = c.queue.deliveries();
  assert.equal(d.length, 2);
  assert.ok(d[0]!.message.equals(COPY1.message) && d[0]!.envelope.equals(COPY1.envelope));
  assert.ok(d[1]!.message.equals(COPY2.message) && d[1]!.envelope.equals(COPY2.envelope));
  assert.deepEqual(c.daemon!.connections[0]!.statuses, [0, 0]);
  assert.deepEqual(c.daemon!.violations, []);
  assert.equal(c.inst.ran(), undefined);
});

test('a 5 MB copy in 1 MiB frames reaches qmail-queue whole', async () => {
  const big = { message: noise(5 * 1024 * 1024, 11), envelope: COPY1.envelope };
  const c = await ctx({ kind: 'deliver', copies: [big], then: { code: 0 }, frameSize: 1024 * 1024 });
  const r = await c.run();
  assert.equal(r.code, 0, r.stderr);
  const d = c.queue.deliveries();
  assert.equal(d.length, 1);
  assert.ok(d[0]!.message.equals(big.message));
});

test("qmail-queue's own exit code is reported in 'q'; the daemon's reply decides", async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: { code: 53 } }, {}, { failOn: [{ call: 1, code: 53 }] });
  const r = await c.run();
  assert.equal(r.code, 53, r.stderr);
  assert.deepEqual(c.daemon!.connections[0]!.statuses, [53]);
  assert.equal(c.queue.deliveries().length, 0);
});

test('an answer ahead: once every copy is queued the client ends at once with its line, pids and ms filled in (text and JSON)', async () => {
  // The daemon holds the connection and never replies: only the line given ahead can end the client
  // before its timeout (which would give the pending line, with lost=).
  const line = 'nqqueue: id=abc result=accept rcpts=2 groups=1:queued,1:queued qq=\x01 ms=\x02 exit=0 qp=1 via=daemon\n';
  const c = await ctx({ kind: 'deliver', pending: 'nqqueue: id=abc pending', ahead: { us: 2600, line }, copies: [COPY1, COPY2], then: 'hold' }, { NQQUEUE_QQ_TIMEOUT: '20' });
  const r = await c.run({ timeoutMs: 15000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(c.daemon!.connections[0]!.statuses, [0, 0]);
  const pids = c.queue.calls().map((k) => k.pid).join(',');
  const m = /^nqqueue: id=abc result=accept rcpts=2 groups=1:queued,1:queued qq=([\d,]+) ms=(\d+) exit=0 qp=1 via=daemon$/.exec(r.stderr.trimEnd());
  assert.ok(m, r.stderr);
  assert.equal(m[1], pids);
  // The daemon's 2.6 ms so far, plus the client's own time since: never less.
  assert.ok(Number(m[2]) >= 3, r.stderr);
  assert.equal(c.queue.deliveries().length, 2);
  // JSON: the ms are a number, the pids a string.
  c.daemon!.behaviour = { kind: 'deliver', ahead: { us: 0, line: '{"prog":"nqqueue","id":"j","qq":"\x01","ms":\x02,"exit":0,"via":"daemon"}\n' }, copies: [COPY1], then: 'hold' };
  const j = await c.run({ timeoutMs: 15000 });
  assert.equal(j.code, 0, j.stderr);
  const obj = JSON.parse(j.stderr) as Record<string, unknown>;
  assert.deepEqual({ ...obj, ms: typeof obj.ms }, { prog: 'nqqueue', id: 'j', qq: String(c.queue.calls().at(-1)!.pid), ms: 'number', exit: 0, via: 'daemon' });
});

test('an answer ahead does not decide a copy that failed (the reply does), and one the client cannot complete gives the pending line', async () => {
  const line = 'nqqueue: id=abc result=accept qq=\x01 ms=\x02 exit=0 via=daemon\n';
  const c = await ctx({ kind: 'deliver', ahead: { us: 10, line }, copies: [COPY1], then: { code: 71, log: 'nqqueue: id=abc result=defer\n' } }, {}, { failOn: [{ call: 1, code: 53 }] });
  const failed = await c.run();
  assert.equal(failed.code, 71, failed.stderr);
  assert.equal(failed.stderr, 'nqqueue: id=abc result=defer\n');
  assert.deepEqual(c.daemon!.connections[0]!.statuses, [53]);
  // A second copy failing after a first was queued: likewise the reply's.
  c.queue.setOptions({ failOn: [{ call: 3, code: 53 }] });
  c.daemon!.behaviour = { kind: 'deliver', ahead: { us: 10, line }, copies: [COPY1, COPY2], then: { code: 0, log: 'nqqueue: id=abc spooled\n' } };
  const spooled = await c.run();
  assert.equal(spooled.code, 0, spooled.stderr);
  assert.equal(spooled.stderr, 'nqqueue: id=abc spooled\n');
  assert.deepEqual(c.daemon!.connections[1]!.statuses, [0, 53]);
  // No hole for the pids (not what a daemon sends): the pending line, and no wait for a reply that will not come.
  c.daemon!.behaviour = { kind: 'deliver', pending: 'nqqueue: id=abc pending', ahead: { us: 10, line: 'nqqueue: id=abc ms=\x02\n' }, copies: [COPY1], then: 'hold' };
  const odd = await c.run({ timeoutMs: 15000 });
  assert.equal(odd.code, 0, odd.stderr);
  assert.match(odd.stderr, /^nqqueue: id=abc pending exit=0 qq=\d+ lost="the line given ahead could not be completed"$/m);
});

test("'A' twice, after the decision, or longer than 65536 bytes is not the protocol: nothing queued, the standalone program runs", async () => {
  const once = aheadBytes(0, 'x\x01\x02\n');
  const c = await ctx({ kind: 'raw', bytes: Buffer.concat([once, once]), then: 'end' });
  for (const bytes of [Buffer.concat([once, once]), Buffer.concat([Buffer.from('D\0\0\0\x01'), once]), aheadBytes(0, Buffer.alloc(65537, 0x61))]) {
    c.daemon!.behaviour = { kind: 'raw', bytes, then: 'end' };
    c.inst.standalone.reset();
    const r = await c.run();
    assert.equal(r.code, 0, r.stderr);
    assertFallback(c, r, MESSAGE, ENVELOPE, true, 'protocol-error');
  }
  assert.equal(c.queue.calls().length, 0);
});

test("qmail-queue killed, hung past the copy's timeout, or not runnable: status 255", async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: { code: 71 } }, {}, { killOn: [1], hangOn: [2] });
  const killed = await c.run();
  assert.equal(killed.code, 71, killed.stderr);
  assert.match(killed.stderr, /nqqueue-qq: .* was killed by SIGKILL/);
  c.daemon!.behaviour = { kind: 'deliver', copies: [{ ...COPY1, timeoutMs: 300 }], then: { code: 71 } };
  const hung = await c.run();
  assert.equal(hung.code, 71, hung.stderr);
  assert.ok(hung.ms >= 250, `${hung.ms} ms`);
  assert.match(hung.stderr, /qmail-queue timed out/);
  for (const path of [join(c.inst.dir, 'no-such-qmail-queue'), 'relative/qmail-queue']) {
    const r = await c.run({ env: { ...c.env, NQQUEUE_QMAILQUEUE: path } });
    assert.equal(r.code, 71, r.stderr);
  }
  assert.deepEqual(
    c.daemon!.connections.map((k) => k.statuses),
    [[255], [255], [255], [255]],
  );
  assert.equal(c.queue.deliveries().length, 0);
  assert.equal(c.inst.ran(), undefined);
});

test('qmail-queue gets fd 0-2 only (never fd 6/4, the socket or a memfd), the environment and argv of the client', async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: { code: 0 } });
  const rec = makeRecorder(join(c.inst.dir, 'qmail-queue'), join(c.inst.dir, 'qrec'));
  for (const errorFd of [6, 4] as const) {
    rec.reset();
    const env = { ...c.env, NQQUEUE_QMAILQUEUE: rec.path };
    const r = await c.run({ env, errorFd });
    assert.equal(r.code, 0, r.stderr);
    const [q, ...more] = rec.runs();
    assert.ok(q && more.length === 0);
    assert.ok(q.message.equals(COPY1.message));
    assert.ok(q.envelope.equals(COPY1.envelope));
    assert.deepEqual(envList(q.env), envOf(env));
    assert.equal(q.argv0, rec.path);
    assert.equal(q.argc, 0);
    assert.match(q.fds.get(0) ?? '', /^pipe:/);
    assert.match(q.fds.get(1) ?? '', /^pipe:/);
    assert.match(q.fds.get(2) ?? '', /\/stderr \(deleted\)$/);
    for (const [fd, what] of q.fds) {
      if (fd <= 2) continue;
      // dash keeps its script open on a high descriptor: that one is its own.
      assert.equal(what, rec.path, `fd ${fd} (${what}) leaked into qmail-queue`);
    }
  }
});

test("the daemon gone after 'D' with nothing queued: the standalone program runs on the exact input", async () => {
  const c = await ctx({ kind: 'deliver', copies: [], announce: 1, then: 'destroy' });
  for (const [b, why] of [
    [{ kind: 'deliver', copies: [], announce: 1, then: 'destroy' }, 'daemon-died'],
    [{ kind: 'deliver', copies: [], announce: 0, then: 'destroy' }, 'daemon-died'],
    [{ kind: 'raw', bytes: 'D\0\0', then: 'end' }, 'daemon-died'],
    [{ kind: 'raw', bytes: 'D\0\0\0\x01DD', then: 'end' }, 'protocol-error'],
    [{ kind: 'raw', bytes: 'D\0\0\0\x01R\0\x05Dab', then: 'end' }, 'daemon-died'],
    [{ kind: 'raw', bytes: 'D\0\0\0\x01Q\0\0\0\x01\xff\xff\xff\xff', then: 'end' }, 'protocol-error'],
    [{ kind: 'raw', bytes: 'D\0\0\0\x00Q', then: 'end' }, 'protocol-error'],
    [{ kind: 'raw', bytes: 'L\0\0\0\x01xLD', then: 'end' }, 'protocol-error'],
    [{ kind: 'raw', bytes: 'L\0\x01\0\x01', then: 'end' }, 'protocol-error'],
    // qmail-queue refused the copy (status 53), then the daemon vanished: still nothing queued.
    [{ kind: 'deliver', copies: [{ ...COPY1, envelope: Buffer.from('Xbroken\0\0') }], then: 'destroy' }, 'daemon-died'],
  ] as [Behaviour, string][]) {
    c.inst.standalone.reset();
    c.daemon!.behaviour = b;
    const r = await c.run();
    assert.equal(r.code, 0, `${JSON.stringify(b)}: ${r.stderr}`);
    assertFallback(c, r, MESSAGE, ENVELOPE, true, why);
  }
  assert.equal(c.queue.deliveries().length, 0);
});

test("a copy cut off mid-stream: qmail-queue sees an unfinished envelope and queues nothing; fallback", async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: 'destroy' });
  const whole = 5 + COPY1.message.length + 4 + 4 + COPY1.envelope.length + 4 + 4;
  for (const cutAfter of [3, 5 + 4 + 10, 5 + 4 + COPY1.message.length + 4 + 4 + 3, whole - 6]) {
    c.inst.standalone.reset();
    c.daemon!.behaviour = { kind: 'deliver', copies: [{ ...COPY1, cutAfter }], then: 'destroy' };
    const r = await c.run();
    assert.equal(r.code, 0, `cut at ${cutAfter}: ${r.stderr}`);
    assertFallback(c, r, MESSAGE, ENVELOPE, true, 'daemon-died');
  }
  assert.equal(c.queue.deliveries().length, 0);
  assert.ok(c.queue.calls().length >= 2, 'qmail-queue was started for the copies that began');
});

test("the daemon gone after every copy was queued: exit 0, no fallback; after some of them: 71", async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: 'destroy' });
  const all = await c.run();
  assert.equal(all.code, 0, all.stderr);
  assert.equal(c.queue.deliveries().length, 1);
  c.daemon!.behaviour = { kind: 'deliver', copies: [COPY1, COPY2], then: 'destroy' };
  const both = await c.run();
  assert.equal(both.code, 0, both.stderr);
  c.daemon!.behaviour = { kind: 'deliver', copies: [COPY1], announce: 2, then: 'destroy' };
  const some = await c.run();
  assert.equal(some.code, 71, some.stderr);
  c.daemon!.behaviour = { kind: 'deliver', copies: [COPY1, { ...COPY2, cutAfter: 30 }], then: 'destroy' };
  const cut = await c.run();
  assert.equal(cut.code, 71, cut.stderr);
  assert.equal(c.queue.deliveries().length, 5);
  assert.equal(c.inst.ran(), undefined);
});

test("silence after 'D': at NQQUEUE_QQ_TIMEOUT the same rules (nothing queued: fallback; all: 0)", async () => {
  const c = await ctx({ kind: 'deliver', copies: [], announce: 1, then: 'hold' }, { NQQUEUE_QQ_TIMEOUT: '1' });
  const none = await c.run();
  assert.equal(none.code, 0, none.stderr);
  assert.ok(none.ms >= 900 && none.ms < 10000, `${none.ms} ms`);
  assertFallback(c, none, MESSAGE, ENVELOPE, true, 'timeout');
  c.inst.standalone.reset();
  c.daemon!.behaviour = { kind: 'deliver', copies: [COPY1], then: 'hold' };
  const all = await c.run();
  assert.equal(all.code, 0, all.stderr);
  assert.equal(c.inst.ran(), undefined);
  assert.equal(c.queue.deliveries().length, 1);
});

// ---- the fallback ----

test('no daemon: the standalone program runs at once on the untouched fd 0/1, with the same environment, fd 6 and argv', async () => {
  const c = await ctx();
  for (const code of [0, 11, 31, 53, 54, 71, 81, 91]) {
    c.inst.standalone.reset();
    c.inst.standalone.set({ code });
    const r = await c.run();
    assert.equal(r.code, code, r.stderr);
    assertFallback(c, r, MESSAGE, ENVELOPE, false, 'no-socket');
    assert.match(c.inst.ran()!.fds.get(6) ?? '', /\/error \(deleted\)$/);
    assert.match(r.stderr, /cannot connect to .*nqqueue\.sock/);
  }
});

test('the standalone program keeps fd 6 / fd 4 and its refusal text and exit 82 get through', async () => {
  const c = await ctx();
  for (const fd of [6, 4] as const) {
    c.inst.standalone.reset();
    c.inst.standalone.set({ code: 82, text: 'Dfrom the standalone program', textFd: fd });
    const r = await c.run({ errorFd: fd });
    assert.equal(r.code, 82, r.stderr);
    assert.equal(r.errorText.toString(), 'Dfrom the standalone program');
    assert.match(c.inst.ran()!.fds.get(fd) ?? '', /\/error \(deleted\)$/);
  }
});

test('NQQUEUE_HOME missing, relative, or too long for a socket path: fallback with the input untouched', async () => {
  const c = await ctx();
  for (const [home, why] of [
    [join(c.inst.dir, 'nowhere'), 'no-socket'],
    ['relative/home', 'bad-home'],
    ['/tmp/' + 'h'.repeat(110), 'bad-home'],
  ] as const) {
    c.inst.standalone.reset();
    const env = { ...c.env, NQQUEUE_HOME: home };
    const r = await c.run({ env });
    assert.equal(r.code, 0, `${home}: ${r.stderr}`);
    assertFallback(c, r, MESSAGE, ENVELOPE, false, why, env);
  }
});

test('an environment over 65536 bytes: fallback at once, input untouched', async () => {
  const c = await ctx({ kind: 'reply', code: 31 });
  const env = { ...c.env, BIG: 'x'.repeat(70000) };
  const r = await c.run({ env });
  assert.equal(r.code, 0, r.stderr);
  assertFallback(c, r, MESSAGE, ENVELOPE, false, 'env-too-big', env);
  assert.equal(c.daemon!.connections.length, 0);
});

test('the daemon dies mid-message (5 MB): the standalone program gets exactly the original input', async () => {
  const c = await ctx({ kind: 'dieAfter', bytes: 1536 * 1024 });
  const message = noise(5 * 1024 * 1024, 3);
  const r = await c.run({ message, envelopeChunks: [5, 9] });
  assert.equal(r.code, 0, r.stderr);
  assertFallback(c, r, message, ENVELOPE, true, 'daemon-died');
  const got = c.daemon!.connections[0]!;
  assert.ok(!got.complete && got.message.length > 0 && got.message.length < message.length);
});

test('the daemon dies at each stage (greeting, envelope, after the input): fallback with the exact input', async () => {
  const c = await ctx({ kind: 'dieAfter', bytes: 1 });
  const helloLen = 8 + Object.entries(c.env).reduce((n, [k, v]) => n + Buffer.byteLength(`${k}=${v}`) + 1, 0);
  const inputLen = helloLen + 4 + MESSAGE.length + 4 + 4 + ENVELOPE.length + 4;
  for (const bytes of [1, helloLen, helloLen + 4 + MESSAGE.length + 4 + 6, inputLen]) {
    c.inst.standalone.reset();
    c.daemon!.behaviour = { kind: 'dieAfter', bytes };
    const r = await c.run();
    assert.equal(r.code, 0, `${bytes}: ${r.stderr}`);
    assertFallback(c, r, MESSAGE, ENVELOPE, true, 'daemon-died');
  }
});

test('no answer within NQQUEUE_QQ_TIMEOUT: fallback with the exact input', async () => {
  const c = await ctx({ kind: 'silent' }, { NQQUEUE_QQ_TIMEOUT: '1' });
  const r = await c.run();
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.ms >= 900, `${r.ms} ms`);
  assertFallback(c, r, MESSAGE, ENVELOPE, true, 'timeout');
  assert.match(r.stderr, /no word from the daemon for 1 s/);
});

test('garbage, truncated or oversized replies before D: fallback with the exact input', async () => {
  const c = await ctx({ kind: 'silent' });
  const big = Buffer.from([0x52, 0, 0, 0, 0x10, 0, 1]); // 'R' 0 0 then a log length of 1 MiB + 1
  for (const [b, why] of [
    [{ kind: 'raw', bytes: 'HTTP/1.1 400 Bad Request\r\n\r\n', then: 'end' }, 'protocol-error'],
    [{ kind: 'raw', bytes: '', then: 'end' }, 'daemon-died'],
    [{ kind: 'raw', bytes: 'R', then: 'end' }, 'daemon-died'],
    [{ kind: 'raw', bytes: 'R\x00\x05Dab', then: 'destroy' }, 'daemon-died'],
    [{ kind: 'raw', bytes: 'R\x00\x00\x00\x00\x00\x10abc', then: 'end' }, 'daemon-died'],
    [{ kind: 'raw', bytes: Buffer.from([0x52, 0, 0, 0xff, 0xff, 0xff, 0xff]), then: 'end' }, 'protocol-error'],
    [{ kind: 'raw', bytes: big, then: 'hold' }, 'protocol-error'],
    [{ kind: 'raw', bytes: 'RR', then: 'end' }, 'daemon-died'],
  ] as [Behaviour, string][]) {
    c.inst.standalone.reset();
    c.daemon!.behaviour = b;
    const r = await c.run();
    assert.equal(r.code, 0, `${JSON.stringify(b)}: ${r.stderr}`);
    assertFallback(c, r, MESSAGE, ENVELOPE, true, why);
  }
});

test('a truncated input (the caller stopped writing) reaches the daemon and the fallback byte for byte', async () => {
  const c = await ctx({ kind: 'reply', code: 54 });
  const message = noise(300000, 9);
  for (const envelope of [Buffer.alloc(0), Buffer.from('Fsender@client.example\0Trcpt@exa')]) {
    const r = await c.run({ message, envelope, closeMessageEarly: true });
    assert.equal(r.code, 54, r.stderr);
    const got = c.daemon!.connections.at(-1)!;
    assert.ok(got.complete);
    assert.ok(got.message.equals(message.subarray(0, 150000)));
    assert.ok(got.envelope.equals(envelope));
  }
  await c.daemon!.close();
  c.inst.standalone.set({ code: 54 });
  const envelope = Buffer.from('Fsender@client.example\0Trcpt@exa');
  const r = await c.run({ message, envelope, closeMessageEarly: 12345 });
  assert.equal(r.code, 54);
  assertFallback(c, r, message.subarray(0, 12345), envelope, false, 'no-socket');
  c.inst.standalone.reset();
  c.daemon = await startFakeDaemon(c.inst.home, { kind: 'dieAfter', bytes: 70000 });
  cleanups.push(() => c.daemon!.close());
  const r2 = await c.run({ message, envelope, closeMessageEarly: 200000 });
  assert.equal(r2.code, 54);
  assertFallback(c, r2, message.subarray(0, 200000), envelope, true, 'daemon-died');
});

test('fd 0 unreadable: the read-error marker goes to the daemon and 54 comes back; no fallback even if the daemon dies', async () => {
  const c = await ctx({ kind: 'reply', code: 54, log: 'read error\n' });
  const dirFd = openSync(c.inst.dir, 'r'); // read() on a directory fails with EISDIR
  cleanups.push(() => closeSync(dirFd));
  const r = await spawnQq(c.inst.qq, [dirFd, 'ignore', 'pipe'], c.env);
  assert.equal(r.code, 54, r.stderr);
  assert.ok(c.daemon!.connections[0]!.readError);
  assert.match(r.stderr, /read error\n/);
  c.daemon!.behaviour = { kind: 'raw', bytes: '', then: 'destroy' };
  const r2 = await spawnQq(c.inst.qq, [dirFd, 'ignore', 'pipe'], c.env);
  assert.equal(r2.code, 54, r2.stderr);
  assert.equal(c.inst.ran(), undefined);
});

// ---- what the client tells the daemon of itself, and the line it writes when the daemon is lost ----

test("'q' carries each qmail-queue's pid (0 when none could be started)", async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1, COPY2], then: { code: 0 } });
  const r = await c.run();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(c.daemon!.connections[0]!.pids, c.queue.calls().map((k) => k.pid));
  assert.ok(c.daemon!.connections[0]!.pids.every((p) => p > 0));
  const none = await c.run({ env: { ...c.env, NQQUEUE_QMAILQUEUE: join(c.inst.dir, 'no-such-qmail-queue') } });
  assert.equal(none.code, 0);
  // posix_spawn reports the failed exec itself: no qmail-queue ever ran, as for a relative path.
  assert.deepEqual(c.daemon!.connections[1]!.pids, [0, 0], 'exec failed: never started');
  const relative = await c.run({ env: { ...c.env, NQQUEUE_QMAILQUEUE: 'relative/qmail-queue' } });
  assert.equal(relative.code, 0);
  assert.deepEqual(c.daemon!.connections[2]!.pids, [0, 0], 'never started: 0');
});

test('the environment block ends with the client pid, the descriptors its refusal text goes to and its offer of an answer ahead', async () => {
  const c = await ctx({ kind: 'reply', code: 0 });
  const cases: { reject?: string; errorFd: 6 | 4 | 'none'; errfds: string }[] = [
    { errorFd: 6, errfds: '6' },
    { errorFd: 4, errfds: '4' },
    { errorFd: 'none', errfds: '' },
    { reject: 'plain', errorFd: 6, errfds: '' },
    { reject: 'fd4', errorFd: 6, errfds: '' },
    { reject: 'fd6', errorFd: 6, errfds: '6' },
  ];
  for (const [i, k] of cases.entries()) {
    const env = { ...c.env, ...(k.reject === undefined ? {} : { NQQUEUE_REJECT: k.reject }) };
    const r = await c.run({ env, errorFd: k.errorFd });
    assert.equal(r.code, 0, r.stderr);
    const entries = c.daemon!.connections[i]!.env.toString('latin1').split('\0').filter((e) => e !== '');
    assert.deepEqual(entries.slice(-3), [`NQQUEUE_QQ_PID=${r.pid}`, `NQQUEUE_QQ_ERRFDS=${k.errfds}`, 'NQQUEUE_QQ_AHEAD=1'], JSON.stringify(k));
  }
});

test('variables of the names the client sets itself are dropped from what it was given', async () => {
  const forged = { NQQUEUE_FALLBACK_REASON: 'forged x=1', NQQUEUE_QQ_PID: '1', NQQUEUE_QQ_ERRFDS: '6,4', NQQUEUE_QQ_AHEAD: 'yes' };
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: { code: 0 } }, forged);
  const rec = makeRecorder(join(c.inst.dir, 'qmail-queue'), join(c.inst.dir, 'qrec'));
  const clean = Object.fromEntries(Object.entries(c.env).filter(([k]) => !(k in forged)));
  const r = await c.run({ env: { ...c.env, NQQUEUE_QMAILQUEUE: rec.path } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(envList(c.daemon!.connections[0]!.env), envOf({ ...clean, NQQUEUE_QMAILQUEUE: rec.path, NQQUEUE_QQ_PID: String(r.pid), NQQUEUE_QQ_ERRFDS: '6', NQQUEUE_QQ_AHEAD: '1' }));
  assert.deepEqual(envList(rec.runs()[0]!.env), envOf({ ...clean, NQQUEUE_QMAILQUEUE: rec.path }));
  await c.daemon!.close();
  const fb = await c.run();
  assert.equal(fb.code, 0, fb.stderr);
  assertFallback(c, fb, MESSAGE, ENVELOPE, false, 'no-socket', clean);
});

test("the daemon gone after its decision: the client completes the daemon's pending line (text and JSON)", async () => {
  const text = 'nqqueue: id=abc result=accept from=<sender@client.example> rcpts=2 qp=1 via=daemon';
  const c = await ctx({ kind: 'deliver', pending: text, copies: [COPY1, COPY2], then: 'destroy' });
  const all = await c.run();
  assert.equal(all.code, 0, all.stderr);
  const pids = c.queue.calls().map((k) => k.pid).join(',');
  const line = all.stderr.split('\n').find((l) => l.startsWith('nqqueue: '));
  assert.equal(line, `${text} exit=0 qq=${pids} lost="the daemon closed the connection before its reply was complete"`);
  // Some copies queued: deferred, and said so.
  c.daemon!.behaviour = { kind: 'deliver', pending: text, copies: [COPY1], announce: 2, then: 'destroy' };
  const some = await c.run();
  assert.equal(some.code, 71, some.stderr);
  assert.match(some.stderr, new RegExp(`^nqqueue: id=abc .* via=daemon exit=71 qq=${c.queue.calls().at(-1)!.pid} lost="[^"]+"$`, 'm'));
  // JSON: the fields go inside the object.
  c.daemon!.behaviour = { kind: 'deliver', pending: '{"prog":"nqqueue","id":"abc","via":"daemon"}', copies: [COPY1], then: 'destroy' };
  const json = await c.run();
  assert.equal(json.code, 0, json.stderr);
  const obj = JSON.parse(json.stderr.split('\n').find((l) => l.startsWith('{'))!) as Record<string, unknown>;
  assert.deepEqual(obj, { prog: 'nqqueue', id: 'abc', via: 'daemon', exit: 0, qq: String(c.queue.calls().at(-1)!.pid), lost: 'the daemon closed the connection before its reply was complete' });
  // A complete reply: the daemon's own log, never the pending line.
  c.daemon!.behaviour = { kind: 'deliver', pending: text, copies: [COPY1], then: { code: 0, log: 'nqqueue: the real line\n' } };
  const done = await c.run();
  assert.equal(done.code, 0);
  assert.equal(done.stderr, 'nqqueue: the real line\n');
  // Nothing queued: the standalone program runs and writes its own line; the pending one is not written.
  c.daemon!.behaviour = { kind: 'deliver', pending: text, copies: [], announce: 1, then: 'destroy' };
  const none = await c.run();
  assert.equal(none.code, 0);
  assert.doesNotMatch(none.stderr, /id=abc/);
});

// ---- the first copy's qmail-queue, started once the daemon is connected (NQQUEUE_QQ_EARLY=yes) ----

test('early qmail-queue: it is running once the daemon is connected, before the input is complete, and takes the first copy', async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: { code: 0 } }, { NQQUEUE_QQ_EARLY: 'yes' });
  // The envelope's last byte comes 4 s after the rest, as a slow SMTP client's end of DATA would.
  const run = c.run({ envelopeChunks: [ENVELOPE.length - 1], envelopeDelayMs: 4000 });
  const t0 = Date.now();
  while (c.queue.calls().length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.queue.calls().length, 1, 'qmail-queue started while the input was still coming');
  assert.equal(c.daemon!.connections.length, 1);
  assert.equal(c.daemon!.connections[0]!.complete, false, 'the input was not complete yet');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  // That one took the copy: one qmail-queue for one copy.
  assert.deepEqual(c.queue.calls().map((k) => k.outcome), ['delivered']);
  assert.deepEqual(c.daemon!.connections[0]!.pids, [c.queue.calls()[0]!.pid]);
  const d = c.queue.deliveries();
  assert.equal(d.length, 1);
  assert.ok(d[0]!.message.equals(COPY1.message) && d[0]!.envelope.equals(COPY1.envelope));
});

test('early qmail-queue killed while it waited: the copy goes to one started then, and the log says so', async () => {
  const c = await ctx({ kind: 'deliver', copies: [COPY1], then: { code: 0 } }, { NQQUEUE_QQ_EARLY: 'yes' });
  const run = c.run({ envelopeChunks: [ENVELOPE.length - 1], envelopeDelayMs: 3000 });
  const t0 = Date.now();
  while (!(c.queue.calls()[0]?.pid) && Date.now() - t0 < 2500) await new Promise((r) => setTimeout(r, 20));
  const early = c.queue.calls()[0];
  assert.ok(early && early.pid > 0, 'the early qmail-queue is running');
  process.kill(early.pid, 'SIGKILL');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^nqqueue-qq: the early qmail-queue ended before the copy came \(signal 9\): starting another$/m);
  const calls = c.queue.calls();
  assert.deepEqual(calls.map((k) => k.outcome), ['started', 'delivered']);
  assert.deepEqual(c.daemon!.connections[0]!.pids, [calls[1]!.pid]);
  assert.equal(c.queue.deliveries().length, 1);
});

test('early qmail-queue: a daemon lost mid-input, or an unreadable input, leaves it given nothing and waited for', async () => {
  const c = await ctx({ kind: 'dieAfter', bytes: 70000 }, { NQQUEUE_QQ_EARLY: 'yes' });
  const message = noise(300000, 11);
  // It gives up once the daemon is lost, not only once the rest of a slow input has come.
  let done = false;
  const run = c.run({ message, envelopeChunks: [ENVELOPE.length - 1], envelopeDelayMs: 3000 }).finally(() => (done = true));
  const t0 = Date.now();
  while (c.queue.calls()[0]?.outcome !== 'exit 54' && Date.now() - t0 < 2500) await new Promise((res) => setTimeout(res, 20));
  assert.equal(c.queue.calls()[0]?.outcome, 'exit 54', 'the early qmail-queue ended while the input was still coming');
  assert.equal(done, false);
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assertFallback(c, r, message, ENVELOPE, true, 'daemon-died');
  assert.deepEqual(c.queue.calls().map((k) => k.outcome), ['exit 54']);
  // fd 0 unreadable: the daemon answers 54; the early one queued nothing and was waited for.
  await c.daemon!.close();
  c.daemon = await startFakeDaemon(c.inst.home, { kind: 'reply', code: 54, log: 'read error\n' });
  cleanups.push(() => c.daemon!.close());
  const dirFd = openSync(c.inst.dir, 'r'); // read() on a directory fails with EISDIR
  cleanups.push(() => closeSync(dirFd));
  const r2 = await spawnQq(c.inst.qq, [dirFd, 'ignore', 'pipe'], c.env);
  assert.equal(r2.code, 54, r2.stderr);
  assert.deepEqual(c.queue.calls().map((k) => k.outcome), ['exit 54', 'exit 54']);
  assert.equal(c.queue.deliveries().length, 0);
});

test('qmail-queue is started while the daemon decides; with no copy it is given nothing, queues nothing, and is waited for', async () => {
  // A daemon that never answers: the client's qmail-queue must already be running while it waits.
  const c = await ctx({ kind: 'silent' }, { NQQUEUE_QQ_TIMEOUT: '2', NQQUEUE_QQ_EARLY: 'yes' });
  let done = false;
  const run = c.run().finally(() => (done = true));
  const t0 = Date.now();
  while (c.queue.calls().length === 0 && Date.now() - t0 < 1500) await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.queue.calls().length, 1, 'qmail-queue started before any word from the daemon');
  assert.equal(done, false);
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assertFallback(c, r, MESSAGE, ENVELOPE, true, 'timeout');
  // Waited for before the standalone program ran: its outcome is in, and it is the empty envelope's 54.
  assert.deepEqual(c.queue.calls().map((k) => k.outcome), ['exit 54']);
  assert.equal(c.queue.deliveries().length, 0);
});

test('early qmail-queue: a refusal (no D, or D 0) or a daemon gone before D leaves nothing queued; each copy has one qmail-queue', async () => {
  const c = await ctx({ kind: 'reply', code: 31, refusal: REFUSAL }, { NQQUEUE_QQ_EARLY: '1' });
  const refused = await c.run();
  assert.equal(refused.code, 82, refused.stderr);
  c.daemon!.behaviour = { kind: 'raw', bytes: Buffer.concat([Buffer.from('D\0\0\0\0'), answerBytes({ code: 31, refusal: REFUSAL })]), then: 'end' };
  const none = await c.run();
  assert.equal(none.code, 82, none.stderr);
  c.daemon!.behaviour = { kind: 'deliver', copies: [], announce: 1, then: 'destroy' };
  c.inst.standalone.reset();
  const gone = await c.run();
  assert.equal(gone.code, 0, gone.stderr);
  assertFallback(c, gone, MESSAGE, ENVELOPE, true, 'daemon-died');
  assert.deepEqual(c.queue.calls().map((k) => k.outcome), ['exit 54', 'exit 54', 'exit 54']);
  assert.equal(c.queue.deliveries().length, 0);
  // Two copies: the early one takes the first, a second qmail-queue the other; no third is started.
  c.daemon!.behaviour = { kind: 'deliver', copies: [COPY1, COPY2], then: { code: 0 } };
  const two = await c.run();
  assert.equal(two.code, 0, two.stderr);
  const calls = c.queue.calls().slice(3);
  assert.deepEqual(calls.map((k) => k.outcome), ['delivered', 'delivered']);
  assert.deepEqual(c.daemon!.connections.at(-1)!.pids, calls.map((k) => k.pid));
  const d = c.queue.deliveries();
  assert.ok(d[0]!.message.equals(COPY1.message) && d[0]!.envelope.equals(COPY1.envelope));
  assert.ok(d[1]!.message.equals(COPY2.message) && d[1]!.envelope.equals(COPY2.envelope));
});

test('NQQUEUE_QQ_EARLY unset (the default), no, or anything but yes/1: qmail-queue starts only for a copy', async () => {
  for (const off of [undefined, 'no', '0', '', 'YES', 'true']) {
    const c = await ctx({ kind: 'reply', code: 31, refusal: REFUSAL }, off === undefined ? {} : { NQQUEUE_QQ_EARLY: off });
    assert.equal((await c.run()).code, 82);
    assert.equal(c.queue.calls().length, 0, `NQQUEUE_QQ_EARLY=${off}`);
    c.daemon!.behaviour = { kind: 'deliver', copies: [COPY1], then: { code: 0 } };
    assert.equal((await c.run()).code, 0);
    assert.deepEqual(c.queue.calls().map((k) => k.outcome), ['delivered']);
  }
});
