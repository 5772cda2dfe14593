// The runner starts a program the way qmail-smtpd does: real blocking FIFOs on 0, 1, 2 and 6 (or 4),
// nothing else inherited, the exact environment, a foreign cwd, qmail's order of writes and reads.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { envelopeOf, runSmtpd, type RunResult } from '../helpers/smtpd.js';
import { makeStandIn, writeNodeScript } from '../helpers/stand-in.js';
import { O_ACCMODE, O_NONBLOCK, type ProbeConfig, type ProbeReport } from './fd-probe.js';

const PROBE = new URL('./fd-probe.js', import.meta.url).href;
const scratch = mkdtempSync(join(tmpdir(), 'nqq-smtpd-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let probes = 0;
function probeBin(cfg: ProbeConfig = {}): string {
  const path = join(scratch, `probe-${++probes}`);
  writeNodeScript(path, PROBE, 'probe', cfg);
  return path;
}

function report(r: RunResult): ProbeReport {
  const line = r.stderr.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no probe report; stderr: ${r.stderr}`);
  return JSON.parse(line) as ProbeReport;
}

function fdsOf(): number[] {
  return readdirSync('/proc/self/fd').map(Number);
}

/** Kills a probe's grandchild if it is still that process (pids wrap at 32768 here: check first). */
function killGrandchild(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    if (readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('setTimeout(() => {}, ')) process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * A /bin/sh program that lists its descriptors as execve left them (dash keeps its script on fd >= 10;
 * a node program cannot tell: node fills the low numbers with its own and marks fds 0–15 cloexec).
 */
const SH = '/bin/sh';
const STAT = '/usr/bin/stat';
const GREP = '/bin/grep';
const haveShell = [SH, STAT, GREP].every((p) => existsSync(p));
function shProbeBin(): string {
  const path = join(scratch, `sh-probe-${++probes}`);
  writeFileSync(
    path,
    `#!${SH}\n${STAT} -L -c 'fd %n %F' /proc/$$/fd/[0-9] >&2\n${GREP} -H '^flags' /proc/$$/fdinfo/[0-9] >&2\nexit 0\n`,
    { mode: 0o755 },
  );
  return path;
}
function shTable(r: RunResult): Map<number, { type: string; flags: number }> {
  const table = new Map<number, { type: string; flags: number }>();
  for (const line of r.stderr.split('\n')) {
    const t = /^fd \/proc\/\d+\/fd\/(\d) (.+)$/.exec(line);
    if (t) table.set(Number(t[1]), { ...(table.get(Number(t[1])) ?? { flags: NaN }), type: t[2] as string });
    const f = /^\/proc\/\d+\/fdinfo\/(\d):flags:\s+([0-7]+)$/.exec(line);
    if (f) table.set(Number(f[1]), { ...(table.get(Number(f[1])) ?? { type: '?' }), flags: Number.parseInt(f[2] as string, 8) });
  }
  return table;
}

for (const errorFd of [6, 4] as const) {
  test(`the child gets blocking FIFOs on 0, 1, 2 and ${errorFd} (fstat and fdinfo from a node program)`, async () => {
    const r = await runSmtpd({ bin: probeBin(), message: 'm', envelope: envelopeOf('a', ['b']), errorFd });
    assert.equal(r.code, 0, r.stderr);
    const rep = report(r);
    for (const fd of [0, 1, 2, errorFd]) {
      const d = rep.fds.find((x) => x.fd === fd);
      assert.ok(d, `fd ${fd} missing`);
      assert.equal(d.fifo, true, `fd ${fd} is not a FIFO: ${d.link}`);
      assert.equal(d.socket, false);
      assert.match(d.link, /\/nqq-smtpd-[^/]+\/(message|envelope|stderr|error) \(deleted\)$/);
      assert.equal(d.flags & O_NONBLOCK, 0, `fd ${fd} is non-blocking (flags 0${d.flags.toString(8)})`);
      assert.equal(d.flags & O_ACCMODE, fd <= 1 ? 0 : 1, `fd ${fd} has the wrong access mode`);
    }
    // Node's own descriptors take the free low numbers: the other one may be open, but not as a file.
    const other = rep.fds.find((x) => x.fd === (errorFd === 6 ? 4 : 6));
    if (other) assert.doesNotMatch(other.link, /^\//, `fd ${other.fd} is ${other.link}`);
  });

  test(`at execve the child has exactly 0, 1, 2 and ${errorFd} below 10, all blocking FIFOs (/bin/sh probe)`, { skip: !haveShell }, async () => {
    const r = await runSmtpd({ bin: shProbeBin(), message: 'm', envelope: envelopeOf('a', ['b']), errorFd });
    assert.equal(r.code, 0, r.stderr);
    const table = shTable(r);
    assert.deepEqual([...table.keys()].sort(), [0, 1, 2, errorFd], r.stderr);
    for (const [fd, d] of table) {
      assert.equal(d.type, 'fifo', `fd ${fd}`);
      assert.equal(d.flags & O_NONBLOCK, 0, `fd ${fd} is non-blocking (flags 0${d.flags.toString(8)})`);
    }
  });
}

test("errorFd 'none': only 0, 1 and 2", { skip: !haveShell }, async () => {
  const r = await runSmtpd({ bin: shProbeBin(), message: 'm', envelope: envelopeOf('a', ['b']), errorFd: 'none' });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...shTable(r).keys()].sort(), [0, 1, 2]);
  assert.equal(r.errorText.length, 0);
});

test('exactly the given environment, no arguments, a fresh empty cwd', async () => {
  const bare = await runSmtpd({ bin: probeBin(), message: '', envelope: envelopeOf('', []) });
  const rep = report(bare);
  assert.deepEqual(rep.env, {});
  assert.deepEqual(rep.argv, []);
  assert.notEqual(rep.cwd, process.cwd());
  assert.deepEqual(rep.cwdEntries, []);
  assert.equal(readdirSync(tmpdir()).includes(rep.cwd.split('/').pop() ?? ''), false, 'the temp cwd was not removed');

  const env = { PROTO: 'TCP', TCPREMOTEIP: '192.0.2.1', RELAYCLIENT: '' };
  const given = await runSmtpd({ bin: probeBin(), message: '', envelope: envelopeOf('', []), env, cwd: scratch });
  assert.deepEqual(report(given).env, env);
  assert.equal(report(given).cwd, scratch);
});

test('message and envelope arrive intact; the envelope in the writes asked for', async () => {
  const message = Buffer.alloc(300_000);
  for (let i = 0; i < message.length; i++) message[i] = (i * 7 + 3) & 0xff;
  const envelope = envelopeOf(Buffer.from([0xff, 0x0d, 0x41]), ['x@y', Buffer.from([0x80, 0x0a])]);
  const r = await runSmtpd({
    bin: probeBin(),
    message,
    envelope,
    envelopeChunks: Array.from({ length: envelope.length - 1 }, (_, i) => i + 1),
  });
  const rep = report(r);
  assert.deepEqual(rep.message, { length: message.length, sha256: createHash('sha256').update(message).digest('hex') });
  assert.equal(rep.envelope?.hex, envelope.toString('hex'));
  assert.ok((rep.envelope?.reads ?? 0) > 1, 'the envelope came in one read');
  assert.equal(r.writeError, null);
});

test('the error fd: text kept up to 255 bytes, exit status reported', async () => {
  const r = await runSmtpd({ bin: probeBin({ errorText: `D${'x'.repeat(299)}`, exitCode: 82 }), message: 'm', envelope: envelopeOf('a', ['b']) });
  assert.equal(r.code, 82);
  assert.equal(r.signal, null);
  assert.equal(r.errorText.length, 255);
  assert.equal(r.errorText.toString('latin1'), `D${'x'.repeat(254)}`);

  const r4 = await runSmtpd({ bin: probeBin({ errorText: 'Zlater', errorFd: 4, exitCode: 82 }), message: 'm', envelope: envelopeOf('a', ['b']), errorFd: 4 });
  assert.equal(r4.errorText.toString(), 'Zlater');
});

test('the error pipe is read to EOF before the exit status counts (a grandchild holding it delays the answer)', async () => {
  const r = await runSmtpd({ bin: probeBin({ errorText: 'Dno', exitCode: 82, grandchildMs: 800 }), message: 'm', envelope: envelopeOf('a', ['b']) });
  killGrandchild(report(r).grandchild);
  assert.equal(r.code, 82);
  assert.equal(r.timedOut, false);
  assert.equal(r.errorText.toString(), 'Dno');
  assert.ok(r.ms >= 750, `answered after ${r.ms} ms, before the grandchild closed fd 6`);
});

test('an error fd never closed: the timeout fires instead of hanging', async () => {
  const t0 = Date.now();
  const r = await runSmtpd({ bin: probeBin({ errorText: 'Zx', exitCode: 82, grandchildMs: 60_000 }), message: 'm', envelope: envelopeOf('a', ['b']), timeoutMs: 1000 });
  killGrandchild(report(r).grandchild);
  assert.equal(r.timedOut, true);
  assert.equal(r.code, 82, 'the child itself did exit');
  assert.equal(r.errorText.toString(), 'Zx');
  assert.ok(Date.now() - t0 < 5000);
});

test('an early reject (child exits unread, 1 MB message): EPIPE is reported, not thrown', async () => {
  const r = await runSmtpd({
    bin: probeBin({ read: false, errorText: 'Dgo away', exitCode: 82 }),
    message: Buffer.alloc(1 << 20, 0x61),
    envelope: envelopeOf('a', ['b']),
  });
  assert.equal(r.code, 82);
  assert.equal(r.errorText.toString(), 'Dgo away');
  assert.equal(r.writeError, 'EPIPE');
});

test('closeMessageEarly: the child sees a truncated message and the envelope given', async () => {
  const r = await runSmtpd({ bin: probeBin(), message: Buffer.alloc(1000, 0x62), envelope: Buffer.alloc(0), closeMessageEarly: true });
  const rep = report(r);
  assert.equal(rep.message?.length, 500);
  assert.equal(rep.envelope?.hex, '');
  const r2 = await runSmtpd({ bin: probeBin(), message: Buffer.alloc(1000, 0x62), envelope: Buffer.from('Fa\0Tb'), closeMessageEarly: 10 });
  assert.equal(report(r2).message?.length, 10);
});

test('a program that cannot be started rejects, and leaks nothing', async () => {
  const before = fdsOf().length;
  await assert.rejects(runSmtpd({ bin: join(scratch, 'does-not-exist'), message: 'm', envelope: envelopeOf('a', ['b']) }), { code: 'ENOENT' });
  assert.equal(fdsOf().length, before);
});

test('the runner closes every descriptor it opened, timeouts included', async () => {
  const s = makeStandIn({ hangOn: [2] });
  try {
    const before = fdsOf().length;
    await runSmtpd({ bin: s.path, message: 'm', envelope: envelopeOf('a', ['b']) });
    await runSmtpd({ bin: s.path, message: 'm', envelope: envelopeOf('a', ['b']), timeoutMs: 500 });
    await runSmtpd({ bin: probeBin(), message: 'm', envelope: envelopeOf('a', ['b']), errorFd: 'none' });
    assert.equal(fdsOf().length, before);
  } finally {
    s.cleanup();
  }
});
