// Daemon mode: `nqqueue serve` with bin/nqqueue-qq as the QMAILQUEUE program.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';

import { REPO, setup, type Setup } from '../helpers/nqq.js';
import { envelopeOf, NQQUEUE_BIN, runSmtpd } from '../helpers/smtpd.js';

const QQ = join(REPO, 'bin', 'nqqueue-qq');

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

function haveClient(t: TestContext): boolean {
  if (existsSync(QQ)) return true;
  if (process.env.CI === 'true') assert.fail(`${QQ} is missing (npm run build builds it)`);
  t.skip(`${QQ} is missing: run npm run build`);
  return false;
}

interface Served {
  s: Setup;
  proc: ChildProcess;
  log(): string;
  exited: Promise<number | null>;
  run(o: { from?: string; to?: string[]; message?: string; errorFd?: 6 | 4 | 'none'; extraEnv?: Record<string, string> }): ReturnType<typeof runSmtpd>;
}

async function served(files: Record<string, string> = {}): Promise<Served> {
  const s = setup({ files });
  const logFile = join(s.dir, 'serve.log');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const proc = spawn(NQQUEUE_BIN, ['serve'], {
    env: { NQQUEUE_CONTROLDIR: s.control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path },
    stdio: ['ignore', 'ignore', fd],
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    s.cleanup();
  });
  const sock = join(s.home, 'nqqueue.sock');
  for (let i = 0; i < 500 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(sock), readFileSync(logFile, 'utf8'));
  return {
    s,
    proc,
    exited,
    log: () => readFileSync(logFile, 'utf8'),
    run: (o) =>
      runSmtpd({
        bin: QQ,
        message: o.message ?? 'Subject: daemon\nMessage-ID: <x@y>\n\nbody\n',
        envelope: envelopeOf(o.from ?? 'sender@client.example', o.to ?? ['rcpt@example.com']),
        env: { ...s.env, ...(o.extraEnv ?? {}) },
        errorFd: o.errorFd ?? 6,
      }),
  };
}

test('the socket is 0600 in a 0700 home; messages are answered by the daemon, the log line reaches fd 2', async (t) => {
  if (!haveClient(t)) return;
  const d = await served({ 'general.cfb': ':black=bad@x.example\n' });
  assert.equal(statSync(join(d.s.home, 'nqqueue.sock')).mode & 0o777, 0o600);
  assert.equal(statSync(d.s.home).mode & 0o777, 0o700);
  const ok = await d.run({});
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /^nqqueue: .*result=accept.*via=daemon\n$/);
  const bad = await d.run({ from: 'bad@x.example' });
  assert.equal(bad.code, 82);
  assert.equal(bad.errorText.toString(), 'Dmail from this sender is not accepted (#5.7.1)');
  assert.equal(d.s.standIn.deliveries().length, 1);
});

test('the daemon uses its own configuration, whatever paths the client environment names', async (t) => {
  if (!haveClient(t)) return;
  const d = await served({ 'general.cfb': ':black=bad@x.example\n' });
  const elsewhere = join(d.s.dir, 'other-control');
  mkdirSync(elsewhere);
  writeFileSync(join(elsewhere, 'general.cfb'), ':\n');
  const r = await d.run({ from: 'bad@x.example', extraEnv: { NQQUEUE_CONTROLDIR: elsewhere } });
  assert.equal(r.code, 82);
});

test('a second daemon on the same socket refuses to start; a stale socket is taken over', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const second = spawn(NQQUEUE_BIN, ['serve'], { env: { NQQUEUE_CONTROLDIR: d.s.control, NQQUEUE_HOME: d.s.home, NQQUEUE_QMAILQUEUE: d.s.standIn.path }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  second.stderr!.on('data', (c) => (err += c));
  const code = await new Promise((r) => second.on('exit', r));
  assert.equal(code, 111);
  assert.match(err, /another nqqueue serve is listening/);
  assert.equal((await d.run({})).code, 0, 'the first one still works');
  d.proc.kill('SIGKILL');
  await d.exited;
  assert.ok(existsSync(join(d.s.home, 'nqqueue.sock')), 'a killed daemon leaves its socket');
  const third = spawn(NQQUEUE_BIN, ['serve'], { env: { NQQUEUE_CONTROLDIR: d.s.control, NQQUEUE_HOME: d.s.home, NQQUEUE_QMAILQUEUE: d.s.standIn.path }, stdio: 'ignore' });
  cleanups.push(() => third.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 600));
  const r = await d.run({});
  assert.equal(r.code, 0);
  assert.match(r.stderr, /via=daemon/);
  third.kill('SIGTERM');
});

test('configuration is reloaded when a file changes, and on SIGHUP for what lies outside the control directory', async (t) => {
  if (!haveClient(t)) return;
  const d = await served({ 'general.cfb': ':black=bad@x.example\n' });
  assert.equal((await d.run({ from: 'worse@x.example' })).code, 0);
  d.s.write('general.cfb', ':black=worse@x.example\n');
  assert.equal((await d.run({ from: 'worse@x.example' })).code, 82, 'edited in place: picked up at the next message');
  const list = join(d.s.dir, 'senders');
  writeFileSync(list, 'one@x.example\n');
  d.s.write('general.cfb', `:black=file:${list}\n`);
  assert.equal((await d.run({ from: 'one@x.example' })).code, 82);
  writeFileSync(list, 'two@x.example\n');
  assert.equal((await d.run({ from: 'two@x.example' })).code, 0, 'the list is read once per configuration');
  d.proc.kill('SIGHUP');
  for (let i = 0; i < 100 && !/reload requested/.test(d.log()); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await d.run({ from: 'two@x.example' })).code, 82, 'SIGHUP reloads');
  assert.match(d.log(), /configuration reloaded/);
});

test('plugins are configured once per routing line, not per message', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const dir = join(d.s.dir, 'plugins');
  mkdirSync(dir, { mode: 0o755 });
  const count = join(d.s.dir, 'configured');
  writeFileSync(
    join(dir, 'counted.js'),
    `import { appendFileSync } from 'node:fs';\nexport default { name: 'counted', version: '1', stages: ['general'], configure() { appendFileSync(${JSON.stringify(count)}, 'x'); return {}; }, async run() { return { verdict: 'accept' }; } };\n`,
    { mode: 0o644 },
  );
  d.s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  d.s.write('general.cfb', ':counted\n');
  for (let i = 0; i < 4; i++) assert.equal((await d.run({})).code, 0);
  assert.equal(readFileSync(count, 'utf8'), 'x');
});

test('many messages are in flight at once', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const log = join(d.s.dir, 'overlap');
  const work = d.s.script('work.sh', `#!/bin/sh\ncat >/dev/null\necho + >> ${log}\nsleep 0.5\necho - >> ${log}\n`);
  d.s.write('general.cfb', `:exec=${work}\n`);
  const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => d.run({ from: `s${i}@client.example` })));
  assert.deepEqual(rs.map((r) => r.code), [0, 0, 0, 0, 0, 0]);
  let cur = 0;
  let max = 0;
  for (const l of readFileSync(log, 'utf8').trim().split('\n')) {
    cur += l === '+' ? 1 : -1;
    max = Math.max(max, cur);
  }
  assert.equal(max, 6);
});

test('graceful stop: the message in flight finishes; new messages go to the standalone program', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const started = join(d.s.dir, 'started');
  const slow = d.s.script('slow.sh', `#!/bin/sh\ncat >/dev/null\ntouch ${started}\nsleep 1\n`);
  d.s.write('general.cfb', `:exec=${slow}\n`);
  const inFlight = d.run({ from: 'first@client.example' });
  for (let i = 0; i < 300 && !existsSync(started); i++) await new Promise((r) => setTimeout(r, 10));
  d.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(existsSync(join(d.s.home, 'nqqueue.sock')), false, 'the socket is gone at once');
  const next = await d.run({ from: 'second@client.example' });
  assert.equal(next.code, 0, next.stderr);
  assert.doesNotMatch(next.stderr, /via=daemon/, 'handled by the standalone program');
  const first = await inFlight;
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /via=daemon/);
  assert.equal(await d.exited, 0);
  assert.match(d.log(), /stopping; 1 message\(s\) in flight/);
  assert.deepEqual(d.s.standIn.deliveries().map((x) => x.sender.toString()).sort(), ['first@client.example', 'second@client.example']);
});

test('killing the daemon during a burst loses nothing and duplicates nothing', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const total = 40;
  const codes = new Map<number, number>();
  let next = 0;
  let killed = false;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      if (i === 12 && !killed) {
        killed = true;
        d.proc.kill('SIGKILL');
      }
      const r = await d.run({ message: `Subject: burst\nMessage-ID: <m${i}@burst>\n\nbody ${i}\n` });
      codes.set(i, r.code ?? -1);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const delivered = new Map<string, number>();
  for (const dl of d.s.standIn.deliveries()) {
    const id = /Message-ID: <(m\d+)@burst>/.exec(dl.message.toString())![1]!;
    delivered.set(id, (delivered.get(id) ?? 0) + 1);
  }
  for (let i = 0; i < total; i++) {
    const code = codes.get(i);
    const n = delivered.get(`m${i}`) ?? 0;
    assert.ok(n <= 1, `m${i} delivered ${n} times`);
    if (code === 0) assert.equal(n, 1, `m${i} accepted but not delivered`);
    else {
      assert.equal(code, 71, `m${i}: exit ${code}`);
      assert.equal(n, 0, `m${i} deferred but delivered: the sender's retry would duplicate it`);
    }
  }
});
