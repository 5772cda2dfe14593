// The qmail-queue stand-in: qmail-queue.c's envelope rules, exact byte records, and the failures it
// can be told to act out (exit code, SIGKILL, hang) on its Nth call, counted across processes.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { envelopeOf, runSmtpd } from '../helpers/smtpd.js';
import { makeStandIn, type StandIn } from '../helpers/stand-in.js';

const made: StandIn[] = [];
after(() => {
  for (const s of made) s.cleanup();
});
function standIn(...a: Parameters<typeof makeStandIn>): StandIn {
  const s = makeStandIn(...a);
  made.push(s);
  return s;
}

/**
 * Runs the stand-in through node's own spawn 'pipe' (socketpairs, not FIFOs): independent of the runner
 * under test in smtpd.test.ts. child.stdio[1] is typed Readable but is a duplex socket at runtime.
 */
function direct(s: StandIn, message: Buffer | string, envelope: Buffer): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(s.path, [], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal }));
    const fd1 = child.stdio[1] as unknown as Socket;
    child.stdin?.on('error', () => undefined);
    fd1.on('error', () => undefined);
    child.stdin?.end(message, () => fd1.end(envelope));
  });
}

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const addr = (n: number, c = 0x61): Buffer => Buffer.alloc(n, c);

test('the executable: mode 0755, #! this node, runs with no environment (no PATH) from a foreign cwd', async () => {
  const s = standIn();
  assert.equal(statSync(s.path).mode & 0o777, 0o755);
  assert.equal(readFileSync(s.path, 'utf8').split('\n')[0], `#!${process.execPath}`);
  const r = await runSmtpd({ bin: s.path, message: 'hi\n', envelope: envelopeOf('a@b', ['c@d']), env: {} });
  assert.deepEqual([r.code, r.signal, r.stderr], [0, null, '']);
  assert.equal(s.deliveries().length, 1);
});

const rows: { name: string; env: Buffer; code: number }[] = [
  { name: 'empty envelope', env: B(''), code: 54 },
  { name: 'first byte not F', env: B('Ta\0Tb\0\0'), code: 91 },
  { name: 'first byte not F (a NUL)', env: B('\0'), code: 91 },
  { name: 'a record not starting with T', env: B('Fa\0Tb\0Xc\0\0'), code: 91 },
  { name: 'sender of 1003 bytes', env: Buffer.concat([B('F'), addr(1003), B('\0\0')]), code: 11 },
  { name: 'recipient of 1003 bytes', env: Buffer.concat([B('Fa\0T'), addr(1003), B('\0\0')]), code: 11 },
  { name: '1003 bytes then EOF: 11 comes first, as qmail-queue reads it', env: Buffer.concat([B('Fa\0T'), addr(1003)]), code: 11 },
  { name: 'EOF inside the sender', env: B('Fa'), code: 54 },
  { name: 'EOF inside a recipient', env: B('Fa\0Tb'), code: 54 },
  { name: 'EOF before the final NUL', env: B('Fa\0Tb\0'), code: 54 },
  { name: 'a 91 before an EOF', env: B('Fa\0Q'), code: 91 },
  { name: 'bytes after the final NUL', env: B('Fa\0Tb\0\0x'), code: 91 },
  { name: 'a NUL after the final NUL', env: B('Fa\0\0\0'), code: 91 },
];
for (const row of rows) {
  test(`envelope: ${row.name} → exit ${row.code}, nothing recorded`, async () => {
    const s = standIn();
    const r = await direct(s, 'msg\n', row.env);
    assert.equal(r.code, row.code);
    assert.deepEqual(s.deliveries(), []);
    assert.deepEqual(s.calls().map((c) => [c.call, c.outcome]), [[1, `exit ${row.code}`]]);
  });
}

const accepted: { name: string; sender: Buffer; recipients: Buffer[] }[] = [
  { name: 'zero recipients', sender: B('a@b'), recipients: [] },
  { name: 'empty sender (a bounce)', sender: B(''), recipients: [B('c@d')] },
  { name: 'sender and recipient of 1002 bytes', sender: addr(1002), recipients: [addr(1002, 0x62)] },
  { name: 'an empty recipient', sender: B('a'), recipients: [B('')] },
  {
    name: 'arbitrary bytes in addresses',
    sender: Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1)),
    recipients: [B('\r\n'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), B('F'), B('T')],
  },
];
for (const row of accepted) {
  test(`envelope: ${row.name} → accepted, recorded byte for byte`, async () => {
    const s = standIn();
    const message = Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0x2e, 0x0d]);
    const r = await direct(s, message, envelopeOf(row.sender, row.recipients));
    assert.equal(r.code, 0);
    const [d, ...rest] = s.deliveries();
    assert.deepEqual(rest, []);
    assert.ok(d);
    assert.equal(d.call, 1);
    assert.deepEqual(d.message, message);
    assert.deepEqual(d.sender, row.sender);
    assert.deepEqual(d.recipients, row.recipients);
    assert.deepEqual(s.calls().map((c) => c.outcome), ['delivered']);
  });
}

test('a big message and many recipients, through sockets', async () => {
  const s = standIn();
  const message = Buffer.alloc(3_000_000);
  for (let i = 0; i < message.length; i++) message[i] = (i * 31) & 0xff;
  const recipients = Array.from({ length: 500 }, (_, i) => `r${i}@example.com`);
  assert.equal((await direct(s, message, envelopeOf('a@b', recipients))).code, 0);
  const [d] = s.deliveries();
  assert.ok(d?.message.equals(message));
  assert.deepEqual(d?.recipients.map(String), recipients);
});

test('fail on the Nth call: counted across separate processes and option changes; nothing recorded', async () => {
  const s = standIn({ failOn: [{ call: 2, code: 71 }, { call: 4, code: 53 }] });
  const env = envelopeOf('a', ['b']);
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push((await direct(s, `m${i + 1}`, env)).code);
  s.setOptions({ failOn: [{ call: 5, code: 31 }] });
  for (let i = 3; i < 6; i++) codes.push((await direct(s, `m${i + 1}`, env)).code);
  assert.deepEqual(codes, [0, 71, 0, 0, 31, 0]);
  assert.deepEqual(s.calls().map((c) => `${c.call} ${c.outcome}`), ['1 delivered', '2 fail 71', '3 delivered', '4 delivered', '5 fail 31', '6 delivered']);
  assert.deepEqual(s.deliveries().map((d) => [d.call, d.message.toString()]), [[1, 'm1'], [3, 'm3'], [4, 'm4'], [6, 'm6']]);
});

test('fail early on the Nth call: exits at once without reading (the caller may see EPIPE)', async () => {
  const s = standIn({ failOn: [{ call: 1, code: 61, early: true }] });
  const r = await runSmtpd({ bin: s.path, message: Buffer.alloc(1 << 20), envelope: envelopeOf('a', ['b']) });
  assert.equal(r.code, 61);
  assert.equal(r.writeError, 'EPIPE');
  assert.deepEqual(s.calls().map((c) => c.outcome), ['fail 61']);
});

test('killed on the Nth call: the caller sees SIGKILL, nothing recorded', async () => {
  const s = standIn({ killOn: [2] });
  const env = envelopeOf('a', ['b']);
  const r1 = await runSmtpd({ bin: s.path, message: 'one', envelope: env });
  const r2 = await runSmtpd({ bin: s.path, message: 'two', envelope: env });
  const r3 = await runSmtpd({ bin: s.path, message: 'three', envelope: env });
  assert.deepEqual([r1.code, r1.signal], [0, null]);
  assert.deepEqual([r2.code, r2.signal], [null, 'SIGKILL']);
  assert.equal(r2.timedOut, false);
  assert.deepEqual([r3.code, r3.signal], [0, null]);
  assert.deepEqual(s.calls().map((c) => c.outcome), ['delivered', 'killed', 'delivered']);
  assert.deepEqual(s.deliveries().map((d) => d.message.toString()), ['one', 'three']);
});

test('hangs on the Nth call: the caller times out; cleanup() kills what is still hanging', async () => {
  const s = makeStandIn({ hangOn: [1, 2] });
  try {
    const t0 = Date.now();
    const r = await runSmtpd({ bin: s.path, message: Buffer.alloc(200_000), envelope: envelopeOf('a', ['b']), timeoutMs: 800 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL', 'the runner killed it');
    assert.ok(Date.now() - t0 < 5000);

    // A caller that abandons it: the process stays until cleanup().
    const child = spawn(s.path, [], { stdio: ['pipe', 'pipe', 'ignore'], env: {} });
    const gone = new Promise((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
    for (let i = 0; i < 500 && s.calls().filter((c) => c.outcome === 'hung').length < 2; i++) await new Promise((r2) => setTimeout(r2, 10));
    assert.deepEqual(s.calls().map((c) => c.outcome), ['hung', 'hung']);
    assert.equal(s.deliveries().length, 0);
    s.cleanup();
    assert.equal(await gone, 'SIGKILL');
    assert.equal(existsSync(s.dir), false);
  } finally {
    s.cleanup();
  }
});

test('calls from concurrent processes still get distinct numbers', async () => {
  const s = standIn({ failOn: [{ call: 3, code: 71 }] });
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => direct(s, `m${i}`, envelopeOf('a', [`r${i}`]))));
  assert.deepEqual(results.map((r) => r.code).sort(), [0, 0, 0, 0, 0, 71]);
  assert.deepEqual(s.calls().map((c) => c.call), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(s.deliveries().map((d) => d.call), [1, 2, 4, 5, 6]);
  for (const d of s.deliveries()) assert.equal(`r${d.message.toString().slice(1)}`, d.recipients[0]?.toString());
});

test('through the runner, message and envelope arrive intact even in 1-byte envelope writes', async () => {
  const s = standIn();
  const message = Buffer.concat([B('Received: from x\n\n'), Buffer.alloc(10_000, 0x2e), Buffer.from([0x0d, 0, 0xff])]);
  const envelope = envelopeOf(B('s\xe9nder@x'), [B('a@b'), Buffer.from([1, 2, 3]), B('')]);
  const r = await runSmtpd({
    bin: s.path,
    message,
    envelope,
    envelopeChunks: Array.from({ length: envelope.length - 1 }, (_, i) => i + 1),
    // Long enough that a stand-in slowed by a loaded machine still meets the envelope mid-way.
    envelopeDelayMs: 25,
  });
  assert.deepEqual([r.code, r.signal, r.timedOut, r.writeError], [0, null, false, null]);
  const [d] = s.deliveries();
  assert.ok(d);
  assert.ok(d.message.equals(message));
  assert.ok(d.envelope.equals(envelope));
  assert.deepEqual(d.sender, B('s\xe9nder@x'));
  assert.deepEqual(d.recipients, [B('a@b'), Buffer.from([1, 2, 3]), B('')]);
  assert.ok(d.envelopeReads > 1, `the envelope came in ${d.envelopeReads} read(s)`);
});

test('a truncated message with an empty envelope (caller over DATABYTES) → 54, nothing recorded', async () => {
  const s = standIn();
  const r = await runSmtpd({ bin: s.path, message: Buffer.alloc(10_000), envelope: Buffer.alloc(0), closeMessageEarly: true });
  assert.equal(r.code, 54);
  assert.deepEqual(s.deliveries(), []);
  assert.deepEqual(s.calls().map((c) => c.outcome), ['exit 54']);
});

test('timing: one stand-in call for a 10 KB message through the runner (median of 20)', async (t) => {
  const s = standIn();
  const message = Buffer.alloc(10 * 1024, 0x78);
  const env = envelopeOf('a@b', ['c@d']);
  const ms: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await runSmtpd({ bin: s.path, message, envelope: env });
    assert.equal(r.code, 0);
    ms.push(r.ms);
  }
  ms.sort((a, b) => a - b);
  const median = ((ms[9] as number) + (ms[10] as number)) / 2;
  t.diagnostic(`stand-in, 10 KB, ${process.version}: median ${median.toFixed(1)} ms, min ${(ms[0] as number).toFixed(1)}, max ${(ms[19] as number).toFixed(1)}`);
  assert.equal(s.deliveries().length, 20);
});

test('reads non-blocking descriptors too (EAGAIN: waits and retries)', async () => {
  const s = standIn();
  const dir = mkdtempSync(join(tmpdir(), 'nqq-eagain-'));
  const { O_RDONLY, O_WRONLY, O_NONBLOCK } = constants;
  const fds: number[] = [];
  const sockets: Socket[] = [];
  try {
    execFileSync('/usr/bin/mkfifo', [join(dir, 'm'), join(dir, 'e')]);
    const open = (p: string, f: number): number => {
      const fd = openSync(join(dir, p), f);
      fds.push(fd);
      return fd;
    };
    const mr = open('m', O_RDONLY | O_NONBLOCK);
    const mw = open('m', O_WRONLY);
    const er = open('e', O_RDONLY | O_NONBLOCK);
    const ew = open('e', O_WRONLY);
    const child = spawn(s.path, [], { stdio: [mr, er, 'inherit'], env: {} });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // libuv made the child's fds 0-2 blocking — on the description we share. Wrapping our copies in
    // sockets turns O_NONBLOCK back on for both of us (uv_pipe_open); nobody reads through them.
    for (const fd of [mr, er]) {
      sockets.push(new Socket({ fd, readable: false, writable: false }));
      fds.splice(fds.indexOf(fd), 1); // the socket owns it now
    }
    const flags = (fd: number): number => Number.parseInt(/flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1] ?? '', 8);
    assert.notEqual(flags(mr) & O_NONBLOCK, 0);
    assert.notEqual(flags(er) & O_NONBLOCK, 0);
    const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
    await pause();
    writeSync(mw, 'first half, ');
    await pause();
    writeSync(mw, 'second half');
    closeSync(mw);
    fds.splice(fds.indexOf(mw), 1);
    await pause();
    writeSync(ew, 'Fa\0T');
    await pause();
    writeSync(ew, 'b\0\0');
    closeSync(ew);
    fds.splice(fds.indexOf(ew), 1);
    assert.equal(await exited, 0);
    const [d] = s.deliveries();
    assert.equal(d?.message.toString(), 'first half, second half');
    assert.deepEqual(d?.recipients.map(String), ['b']);
  } finally {
    for (const so of sockets) so.destroy();
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
