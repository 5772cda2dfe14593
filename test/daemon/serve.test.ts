// Daemon mode: `nqqueue serve` with bin/nqqueue-qq as the QMAILQUEUE program.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';

import { requireDaemon } from '../helpers/daemons.js';
import { pluginDir, REPO, setup, type Setup } from '../helpers/nqq.js';
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

/** Wait until a connection to the Unix socket `path` is accepted. */
async function socketAnswers(path: string, withinMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const until = Date.now() + withinMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(path);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing answers on ${path} after ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
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
  // Until a connection is taken: the socket's file exists from its bind, a moment before its listen
  // (a client then is refused, and nqqueue-qq would fall back).
  const { connect } = await import('node:net');
  const listening = () =>
    new Promise<boolean>((resolve) => {
      const c = connect(sock);
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
  let up = false;
  for (let i = 0; i < 500 && !(up = existsSync(sock) && (await listening())); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(up, readFileSync(logFile, 'utf8'));
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
  // Taken over once the socket answers again (the killed daemon's file stays until then).
  await socketAnswers(join(d.s.home, 'nqqueue.sock'), 20_000);
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
  // The log says what changed.
  assert.match(d.log(), /nqqueue serve: configuration reloaded \(\/\S+\/general\.cfb changed\)\n/);
  const list = join(d.s.dir, 'senders');
  writeFileSync(list, 'one@x.example\n');
  d.s.write('general.cfb', `:black=file:${list}\n`);
  assert.equal((await d.run({ from: 'one@x.example' })).code, 82);
  writeFileSync(list, 'two@x.example\n');
  assert.equal((await d.run({ from: 'two@x.example' })).code, 0, 'the list is read once per configuration');
  d.proc.kill('SIGHUP');
  for (let i = 0; i < 100 && !/reload requested/.test(d.log()); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await d.run({ from: 'two@x.example' })).code, 82, 'SIGHUP reloads');
  assert.match(d.log(), /configuration reloaded \(SIGHUP\)/);
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
  // The daemon's log says which reload (and why) configured it again, should it.
  assert.equal(readFileSync(count, 'utf8'), 'x', d.log());
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

/** Waits until `f()` is true (every 20 ms, at most `ms`). */
async function until(f: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; waited < ms && !f(); waited += 20) await new Promise((r) => setTimeout(r, 20));
}

/** The client's side by hand (docs/daemon-protocol.md): what the daemon sends for one message whose copy is answered `status`. */
async function exchange(d: Served, envEntries: string[], status: number, message = 'Subject: ahead\nMessage-ID: <ahead@x>\n\nbody\n'): Promise<{ records: string[]; ahead?: { us: number; line: string }; log?: string; after: number }> {
  const { connect } = await import('node:net');
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const sock = connect(join(d.s.home, 'nqqueue.sock'));
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake = () => {};
  sock.on('data', (c: Buffer) => ((buf = Buffer.concat([buf, c])), wake()));
  sock.on('close', () => ((ended = true), wake()));
  sock.on('error', () => undefined);
  const take = async (n: number): Promise<Buffer> => {
    while (buf.length < n) {
      assert.ok(!ended, `the connection ended with ${buf.length} of ${n} bytes`);
      await new Promise<void>((r) => (wake = r));
    }
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  const env = Buffer.from(envEntries.map((e) => `${e}\0`).join(''));
  const msg = Buffer.from(message);
  const envelope = envelopeOf('sender@client.example', ['rcpt@example.com']);
  sock.write(Buffer.concat([Buffer.from('NQQ1'), u32(env.length), env, u32(msg.length), msg, u32(0), u32(envelope.length), envelope, u32(0)]));
  const records: string[] = [];
  let ahead: { us: number; line: string } | undefined;
  for (;;) {
    const kind = (await take(1)).toString('latin1');
    records.push(kind);
    if (kind === 'L') await take((await take(4)).readUInt32BE(0));
    else if (kind === 'A') {
      const us = (await take(4)).readUInt32BE(0);
      ahead = { us, line: (await take((await take(4)).readUInt32BE(0))).toString() };
    } else if (kind === 'D') await take(4);
    else if (kind === 'Q') {
      await take(4);
      for (let stream = 0; stream < 2; ) {
        const n = (await take(4)).readUInt32BE(0);
        if (n === 0) stream++;
        else await take(n);
      }
      const q = Buffer.from([0x71, status, 0, 0, 0, 0]);
      q.writeUInt32BE(4242, 2);
      sock.write(q);
      if (ahead && status === 0) break;
    } else if (kind === 'R') {
      const [, nref] = await take(2);
      await take(nref!);
      const log = (await take((await take(4)).readUInt32BE(0))).toString();
      sock.destroy();
      return { records, ahead, log, after: buf.length };
    } else assert.fail(`record ${JSON.stringify(kind)}`);
  }
  // Every copy queued after an answer ahead: nothing more comes, the daemon closes.
  while (!ended) await new Promise<void>((r) => (wake = r));
  return { records, ahead, after: buf.length };
}

test("an answer ahead ('A') is the line the reply would have had, and once every copy is queued no reply follows", async (t) => {
  if (!haveClient(t)) return;
  for (const conf of ['', 'log_format = json\n']) {
    const d = await served({ 'nqqueue.conf': conf });
    const base = ['TCPREMOTEIP=192.0.2.7', 'NQQUEUE_QQ_PID=777'];
    const fill = (line: string) => line.replace('\x01', '4242').replace('\x02', '5');
    const mask = (line: string) => line.replace(/("id":"|id=)[^" ]+/, '$1ID').replace(/("ms":|ms=)\d+/, '$15');
    const ahead = await exchange(d, [...base, 'NQQUEUE_QQ_AHEAD=1'], 0);
    assert.deepEqual(ahead.records, ['L', 'A', 'D', 'Q'], conf);
    assert.equal(ahead.after, 0, 'no reply after an answer ahead');
    assert.ok(ahead.ahead!.us > 0);
    // Without the offer (an older client): no 'A', and the reply's line is the same but for id and ms.
    const plain = await exchange(d, base, 0);
    assert.deepEqual(plain.records, ['L', 'D', 'Q', 'R'], conf);
    assert.equal(mask(fill(ahead.ahead!.line)), mask(plain.log!), conf);
    assert.match(plain.log!, conf ? /"qq":"4242"/ : / qq=4242 /);
    // Offered, but the copy fails: the reply decides, as without one.
    const failed = await exchange(d, [...base, 'NQQUEUE_QQ_AHEAD=1'], 53);
    assert.deepEqual(failed.records, ['L', 'A', 'D', 'Q', 'R'], conf);
    assert.match(failed.log!, conf ? /"exit":53/ : / exit=53 /);
    // Debug lines go in the reply: no answer ahead then.
    const debug = await exchange(d, [...base, 'NQQUEUE_DEBUG=2', 'NQQUEUE_QQ_AHEAD=1'], 0);
    assert.deepEqual(debug.records, ['L', 'D', 'Q', 'R'], conf);
    // An offer that is not the block's last entry is an inherited one (an older client passes it on).
    const inherited = await exchange(d, ['NQQUEUE_QQ_AHEAD=1', ...base], 0);
    assert.deepEqual(inherited.records, ['L', 'D', 'Q', 'R'], conf);
    assert.doesNotMatch(d.log(), /given ahead|connection failed|protocol error/);
  }
  // A message spilled to a file (its removal is the daemon's last word) and a plugin's onSettled action
  // waiting: no answer ahead.
  const d = await served({ 'nqqueue.conf': 'spill = 1K\n' });
  const big = await exchange(d, ['NQQUEUE_QQ_PID=777', 'NQQUEUE_QQ_AHEAD=1'], 0, `Subject: big\n\n${'x'.repeat(4000)}\n`);
  assert.deepEqual(big.records, ['L', 'D', 'Q', 'R'], 'spilled');
  const small = await exchange(d, ['NQQUEUE_QQ_PID=777', 'NQQUEUE_QQ_AHEAD=1'], 0);
  assert.deepEqual(small.records, ['L', 'A', 'D', 'Q']);
  const dir = pluginDir(d.s, {
    settles: "export default { name: 'settles', version: '1', stages: ['general'], configure() { return {}; }, async run(ctx) { ctx.onSettled(() => {}); return { verdict: 'accept' }; } };\n",
  });
  d.s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  d.s.write('general.cfb', ':settles\n');
  const settled = await exchange(d, ['NQQUEUE_QQ_PID=777', 'NQQUEUE_QQ_AHEAD=1'], 0);
  assert.deepEqual(settled.records, ['L', 'D', 'Q', 'R'], `onSettled waiting: ${settled.log ?? ''}`);
  assert.match(settled.log!, /general=settles:accept/);
});

test('the spill file is gone before the reply is sent, even when the client is slow to read it', async (t) => {
  if (!haveClient(t)) return;
  // Every one of 6000 recipients refuses the sender: the reply's log line (one entry per recipient) is
  // larger than a socket buffer, so the daemon's write of it cannot complete before the client reads.
  const d = await served({ 'nqqueue.conf': 'spill = 1K\n', 'nqqueue.cfb': ':black=sender@client.example\n' });
  const tmp = join(d.s.home, 'tmp');
  const msg = Buffer.from('Subject: x\n\n' + 'y'.repeat(20_000) + '\n');
  const envelope = envelopeOf('sender@client.example', Array.from({ length: 6000 }, (_, i) => `recipient-number-${String(i).padStart(5, '0')}@example.com`));
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  // The client's side by hand: it stops reading at the reply's first bytes and looks at the disk then.
  const { connect } = await import('node:net');
  const sock = connect(join(d.s.home, 'nqqueue.sock'));
  await new Promise((r) => sock.once('connect', r));
  const first = new Promise<{ byte: number; files: string[] }>((resolve) =>
    sock.once('data', (c: Buffer) => {
      sock.pause();
      resolve({ byte: c[0]!, files: readdirSync(tmp) });
    }),
  );
  sock.write(Buffer.concat([Buffer.from('NQQ1'), u32(0), u32(msg.length), msg, u32(0), u32(envelope.length), envelope, u32(0)]));
  const got = await first;
  assert.equal(String.fromCharCode(got.byte), 'R');
  assert.deepEqual(got.files, [], 'the spill file was still there when the reply arrived');
  sock.destroy();
});

test('a client that falls back says why in the line: no socket, connection refused', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  d.proc.kill('SIGKILL');
  await d.exited;
  const refused = await d.run({});
  assert.equal(refused.code, 0, refused.stderr);
  assert.match(refused.stderr, /^nqqueue: .* via=fallback why=refused$/m);
  unlinkSync(join(d.s.home, 'nqqueue.sock'));
  const none = await d.run({});
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stderr, /^nqqueue: .* qp=\d+ via=fallback why=no-socket$/m);
  assert.match(none.stderr, new RegExp(`qp=${none.pid} `));
});

test('a reload that finds a broken settings line or .cfb line logs each problem once, file:line, and defers', async (t) => {
  if (!haveClient(t)) return;
  const d = await served({ 'general.cfb': ':black=bad@x.example\n' });
  assert.equal((await d.run({})).code, 0);
  d.s.write('nqqueue.conf', 'deadline = 30s\nno such setting here\n');
  for (let i = 0; i < 3; i++) {
    const r = await d.run({});
    assert.equal(r.code, 82, r.stderr);
    assert.match(r.errorText.toString(), /^Z/);
  }
  const settingsLine = `${join(d.s.control, 'nqqueue.conf')}:2:`;
  await until(() => d.log().includes(settingsLine));
  assert.equal(d.log().split(settingsLine).length - 1, 1, `once per change, not per message:\n${d.log()}`);
  assert.match(d.log(), /configuration reloaded: it cannot be used, messages are deferred/);
  d.s.write('nqqueue.conf', 'deadline = 30s\n');
  assert.equal((await d.run({})).code, 0, 'fixed: accepted again');
  d.s.write('general.cfb', ':black=bad@x.example\n:black=x@y;nosuchplugin\n');
  for (let i = 0; i < 3; i++) {
    const r = await d.run({});
    assert.equal(r.code, 82, r.stderr);
    assert.match(r.errorText.toString(), /^Z/);
  }
  const cfbLine = `${join(d.s.control, 'general.cfb')}:2:`;
  await until(() => d.log().includes(cfbLine));
  assert.equal(d.log().split(cfbLine).length - 1, 1, `once per change, not per message:\n${d.log()}`);
  assert.match(d.log(), /configuration problem\(s\): messages that need/);
});

test('a reload with a plugin naming no module logs its file:line; the standalone program defers the same mail', async (t) => {
  if (!haveClient(t)) return;
  const d = await served({ 'general.cfb': ':black=bad@x.example\n', 'nqqueue.cfb': 'a@example.com:nosuchplugin\n' });
  const a = await d.run({ to: ['a@example.com'] });
  assert.equal(a.code, 82, a.stderr);
  const b = await d.run({ to: ['b@example.com'] });
  assert.equal(b.code, 0, b.stderr);
  const standalone = await runSmtpd({ message: 'Subject: x\n\nbody\n', envelope: envelopeOf('s@client.example', ['a@example.com']), env: d.s.env });
  assert.equal(standalone.code, a.code);
  await until(() => /nqqueue\.cfb:1: .*nosuchplugin/.test(d.log()));
  assert.match(d.log(), /nqqueue serve: configuration: .*nqqueue\.cfb:1: .*nosuchplugin/);
});

test('a reload loads changed plugin code: the next message gets the new verdict', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const plugin = (verdict: string) =>
    `export default { name: 'judge', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: '${verdict}', text: 'judged ${verdict} (#5.7.1)' }; } };\n`;
  const dir = pluginDir(d.s, { judge: plugin('accept') });
  d.s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  d.s.write('general.cfb', ':judge\n');
  assert.equal((await d.run({})).code, 0);
  writeFileSync(join(dir, 'judge.js'), plugin('reject'), { mode: 0o644 });
  const r = await d.run({});
  assert.equal(r.code, 82, r.stderr);
  assert.equal(r.errorText.toString(), 'Djudged reject (#5.7.1)');
  writeFileSync(join(dir, 'judge.js'), plugin('accept'), { mode: 0o644 });
  d.proc.kill('SIGHUP');
  await until(() => /reload requested/.test(d.log()));
  assert.equal((await d.run({})).code, 0, 'and back, on SIGHUP too');
});

test('plugins are torn down at reload, once their messages are done, and at stop', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const record = join(d.s.dir, 'teardowns');
  const started = join(d.s.dir, 'started');
  const go = join(d.s.dir, 'go');
  writeFileSync(record, '');
  const src =
    `import { appendFileSync, existsSync, writeFileSync } from 'node:fs';\n` +
    `let n = 0;\n` +
    `export default { name: 'pooled', version: '1', stages: ['general'], params: { words: ['one', 'two'] },\n` +
    `  configure({ params }) { return { id: params.raw + '#' + (++n) }; },\n` +
    `  async run() { writeFileSync(${JSON.stringify(started)}, ''); while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 10)); return { verdict: 'accept' }; },\n` +
    `  teardown(config) { appendFileSync(${JSON.stringify(record)}, config.id + '\\n'); } };\n`;
  const dir = pluginDir(d.s, { pooled: src });
  d.s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  d.s.write('general.cfb', ':pooled=one\n');
  writeFileSync(go, '');
  const firstRun = await d.run({});
  assert.equal(firstRun.code, 0, firstRun.stderr);
  // A message in flight with the first generation while the configuration changes.
  rmSync(go);
  rmSync(started, { force: true });
  const inFlight = d.run({});
  await until(() => existsSync(started));
  d.s.write('general.cfb', ':pooled=two\n');
  writeFileSync(go, '');
  assert.equal((await d.run({})).code, 0);
  assert.equal((await inFlight).code, 0);
  await until(() => readFileSync(record, 'utf8') !== '');
  assert.equal(readFileSync(record, 'utf8'), 'one#1\n', 'the old generation, once its message was done');
  d.proc.kill('SIGTERM');
  assert.equal(await d.exited, 0);
  // The module stays loaded (its file did not change): its counter shows each line configured once.
  assert.equal(readFileSync(record, 'utf8'), 'one#1\ntwo#2\n', 'the last one at stop');
});

/** The daemon's open sockets (from /proc). */
function socketsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

test('clamd sessions of a replaced configuration are closed: 8 reloads do not add connections', async (t) => {
  if (!haveClient(t)) return;
  const clamd = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  if (!clamd) return;
  const d = await served({ 'general.cfb': `:clamav=socket=${clamd}\n` });
  assert.equal((await d.run({})).code, 0);
  await until(() => false, 300);
  const before = socketsOf(d.proc.pid!);
  for (let i = 0; i < 8; i++) {
    // Each edit is a new configuration with its own clamd client (and pool).
    d.s.write('general.cfb', `:clamav=socket=${clamd},timeout=${30 + i}s\n`);
    const r = await d.run({});
    assert.equal(r.code, 0, r.stderr);
  }
  await until(() => socketsOf(d.proc.pid!) <= before, 3000);
  assert.ok(socketsOf(d.proc.pid!) <= before, `sockets: ${before} before, ${socketsOf(d.proc.pid!)} after 8 reloads`);
});

/**
 * Shell lines: kill -9 the daemon, then wait until it was reaped (every thread gone, so every descriptor
 * closed: /proc/PID/fd of a dying leader can be empty while its other threads still hold the sockets).
 */
function killAndWait(d: Served): string {
  const gone = join(d.s.dir, 'daemon-gone');
  void d.exited.then(() => writeFileSync(gone, ''));
  return `kill -9 ${d.proc.pid}\nwhile [ ! -e ${gone} ]; do sleep 0.01; done`;
}

test('copies queued just before the daemon died: the client writes the line itself, exit and qmail-queue pid included', async (t) => {
  if (!haveClient(t)) return;
  const d = await served({ 'general.cfb': ':black=bad@x.example\n' });
  const pidFile = join(d.s.dir, 'qq-pid');
  // qmail-queue for the client: the stand-in queues the copy, then the daemon dies (its descriptors
  // closed) before the 'q'.
  const queue = d.s.script('qmail-queue', `#!/bin/sh\necho $$ > ${pidFile}\n${d.s.standIn.path}\nrc=$?\n${killAndWait(d)}\nexit $rc\n`);
  const r = await d.run({ extraEnv: { NQQUEUE_QMAILQUEUE: queue }, message: 'Subject: x\nMessage-ID: <lost@x>\n\nbody\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(d.s.standIn.deliveries().length, 1);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('nqqueue:'));
  assert.equal(lines.length, 1, r.stderr);
  const line = lines[0]!;
  for (const re of [/result=accept/, /from=<sender@client\.example>/, /msgid=<lost@x>/, new RegExp(`qp=${r.pid} `), /via=daemon/, / exit=0 /, /lost="/]) assert.match(line, re);
  assert.match(line, new RegExp(` qq=${readFileSync(pidFile, 'utf8').trim()} `));
});

test('with log_format = json, the line the client completes after losing the daemon is one JSON object', async (t) => {
  if (!haveClient(t)) return;
  const d = await served({ 'nqqueue.conf': 'log_format = json\n', 'general.cfb': ':black=bad@x.example\n' });
  // The daemon is gone (its descriptors closed) before the copy's answer: the client's 'q' fails, so
  // it cannot have ended with the line given ahead.
  const queue = d.s.script('qmail-queue', `#!/bin/sh\n${d.s.standIn.path}\nrc=$?\n${killAndWait(d)}\nexit $rc\n`);
  const r = await d.run({ extraEnv: { NQQUEUE_QMAILQUEUE: queue }, message: 'Subject: x\nMessage-ID: <lost@json>\n\nbody\n' });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
  assert.equal(lines.length, 1, r.stderr);
  const o = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(o.prog, 'nqqueue');
  assert.equal(o.result, 'accept');
  assert.equal(o.msgid, '<lost@json>');
  assert.equal(o.qp, r.pid);
  assert.equal(o.via, 'daemon');
  assert.equal(o.exit, 0);
  assert.match(String(o.qq), /^\d+$/);
  assert.equal(typeof o.lost, 'string');
});

test('a plugin whose teardown hangs or throws holds up neither the other teardowns nor the stop', async (t) => {
  if (!haveClient(t)) return;
  const d = await served();
  const record = join(d.s.dir, 'teardowns');
  writeFileSync(record, '');
  const mod = (name: string, teardown: string) =>
    `import { appendFileSync } from 'node:fs';\n` +
    `export default { name: '${name}', version: '1', stages: ['general'],\n` +
    `  configure() { return {}; }, async run() { return { verdict: 'accept' }; },\n` +
    `  ${teardown} };\n`;
  const dir = pluginDir(d.s, {
    hangs: mod('hangs', 'teardown() { return new Promise(() => {}); }'),
    throws: mod('throws', "teardown() { throw new Error('socket already gone'); }"),
    polite: mod('polite', `teardown() { appendFileSync(${JSON.stringify(record)}, 'polite\\n'); }`),
  });
  d.s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  d.s.write('general.cfb', ':hangs;throws;polite\n');
  assert.equal((await d.run({})).code, 0);
  const stopped = Date.now();
  d.proc.kill('SIGTERM');
  const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
  assert.equal(code, 0, d.log());
  assert.ok(Date.now() - stopped < 15_000, `stopped in ${Date.now() - stopped} ms`);
  assert.equal(readFileSync(record, 'utf8'), 'polite\n', 'the other plugin was torn down');
  assert.match(d.log(), /plugin hangs .*teardown did not finish/);
  assert.match(d.log(), /plugin throws .*teardown failed: .*socket already gone/);
});
