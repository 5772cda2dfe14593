// Backend pools through the built program, with the real spamd behind counting proxies (one per
// address): round-robin spreads the messages over the addresses; with fail-over, an address that cannot
// be reached costs the first message only — the next ones skip it (the metrics show one error, not one
// per message) — and once it is back it is used again. In both modes: the daemon keeps what is out in
// the health directory the standalone processes read too.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { freePort, freePorts, requireDaemon } from '../helpers/daemons.js';
import { metricsUrl, samples, scrape } from '../helpers/metrics.js';
import { DAEMON_MODE, rcptsOf, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { startProxy, type Proxy } from '../helpers/proxy.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const LIMIT = { timeout: 180_000 };
const procs: ChildProcess[] = [];
const proxies: Proxy[] = [];
after(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const p of proxies) await p.close();
});
const make = setupsForThisFile();

async function proxy(spamd: string, port?: number): Promise<Proxy> {
  const p = await startProxy(spamd, port === undefined ? {} : { port });
  proxies.push(p);
  return p;
}

/** /metrics of the setup: its daemon's, or (standalone) a serve started to roll the journal up. */
async function metrics(s: Setup): Promise<() => Promise<Map<string, number>>> {
  if (DAEMON_MODE) {
    await s.run({ to: ['nobody-scanned@example.com'] });
    const url = await metricsUrl(join(s.dir, 'serve.log'));
    return async () => samples(await scrape(url));
  }
  const log = join(s.dir, 'metrics-serve.log');
  const fd = openSync(log, 'a');
  const proc = spawn(NQQUEUE_BIN, ['serve'], { env: { NQQUEUE_CONTROLDIR: s.control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path }, stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  procs.push(proc);
  const url = await metricsUrl(log);
  return async () => samples(await scrape(url));
}

function message(i: number): string {
  return SAMPLE.replace('Subject: test message', `Subject: pool ${i}`);
}

test('round-robin: the messages are spread over every address of the pool', LIMIT, async (t) => {
  const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
  if (!spamd) return;
  const p = [await proxy(spamd), await proxy(spamd), await proxy(spamd)];
  const s = make();
  s.write('nqqueue.cfb', `:spamassassin=${p.map((x) => `host=${x.address}`).join(',')},balance=round-robin\n`);
  const n = DAEMON_MODE ? 12 : 24;
  for (let i = 0; i < n; i++) {
    const r = await s.run({ message: message(i), to: ['rcpt@example.com'] });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(s.standIn.deliveries().length, n);
  const counts = p.map((x) => x.connections());
  assert.equal(counts.reduce((a, b) => a + b, 0), n, `one spamd call per message: ${counts}`);
  // The daemon turns the pool itself: exactly even. One-shot processes each start somewhere else.
  if (DAEMON_MODE) assert.deepEqual(counts, [4, 4, 4]);
  else for (const c of counts) assert.ok(c >= 1, `every address used: ${counts}`);
});

test('fail-over: an address that cannot be reached costs the first message only: the next ones skip it while it is out', LIMIT, async (t) => {
  const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
  if (!spamd) return;
  const deadPort = await freePort();
  const second = await proxy(spamd);
  const s = make();
  // A back-off far longer than the test: however slow the machine, the address stays out throughout.
  s.write('nqqueue.conf', 'metrics = 127.0.0.1:0\n[spamassassin]\nbackoff = 10m\n');
  s.write('nqqueue.cfb', `rcpt@example.com:spamassassin=host=127.0.0.1:${deadPort},host=${second.address}\n`);
  const read = await metrics(s);
  for (let i = 0; i < 6; i++) {
    const r = await s.run({ message: message(i), to: ['rcpt@example.com'] });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(second.connections(), 6, 'every message scanned by the second address');
  const dead = `{backend="spamd",address="127.0.0.1:${deadPort}"}`;
  const m = await read();
  assert.equal(m.get(`nqqueue_backend_errors_total${dead}`), 1, 'tried once, then skipped while out');
  assert.equal(m.get(`nqqueue_backend_failovers_total${dead}`), 1);
  assert.equal(s.standIn.deliveries().filter((d) => rcptsOf(d).includes('rcpt@example.com')).length, 6);
});

test('fail-over: an address that was out is used again once it is back and its back-off is over', LIMIT, async (t) => {
  const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
  if (!spamd) return;
  const deadPort = await freePort();
  const second = await proxy(spamd);
  const s = make();
  s.write('nqqueue.conf', '[spamassassin]\nbackoff = 1s\n');
  s.write('nqqueue.cfb', `rcpt@example.com:spamassassin=host=127.0.0.1:${deadPort},host=${second.address}\n`);
  const first = await s.run({ message: message(0), to: ['rcpt@example.com'] });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.connections(), 1);
  // It comes back where it was: after the back-off (a probe in the daemon; the next process itself in
  // standalone mode) it is first again.
  const back = await proxy(spamd, deadPort);
  let sent = 1;
  for (let i = 0; i < 60 && back.connections() === 0; i++) {
    await delay(500);
    const r = await s.run({ message: message(sent++), to: ['rcpt@example.com'] });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.ok(back.connections() > 0, 'used again');
  const before = second.connections();
  for (let i = 0; i < 3; i++) {
    const r = await s.run({ message: message(sent++), to: ['rcpt@example.com'] });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(second.connections(), before, 'in again: the second address is no longer used');
  assert.equal(s.standIn.deliveries().length, sent);
});

test('health files that are not what NQqueue writes (a FIFO, a symlink, garbage, a date far ahead) are ignored, never waited on', LIMIT, async () => {
  const [p1, p2, p3, p4] = await freePorts(4);
  const s = make();
  s.write('nqqueue.conf', 'deadline = 20s\n[spamassassin]\nconnect_timeout = 1s\n');
  s.write('nqqueue.cfb', `:spamassassin=host=127.0.0.1:${p1},host=127.0.0.1:${p2},host=127.0.0.1:${p3},host=127.0.0.1:${p4}\n`);
  const dir = join(s.home, 'backends');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (port: number): string => join(dir, createHash('sha256').update(`spamd 127.0.0.1:${port}`).digest('hex').slice(0, 24));
  assert.equal(spawnSync('mkfifo', [file(p1)]).status, 0, 'mkfifo');
  symlinkSync('/dev/zero', file(p2));
  writeFileSync(file(p3), 'x'.repeat(1 << 20));
  writeFileSync(file(p4), `${Date.now() + 365 * 86_400_000}\nspamd 127.0.0.1:${p4}\n`);
  const start = Date.now();
  const r = await s.run({ to: ['rcpt@example.com'], timeoutMs: 15_000 });
  // Every address is dead: deferred, in seconds, not hung on a FIFO or reading /dev/zero.
  assert.ok(r.code === 71 || r.code === 82, `deferred: ${r.code} ${r.stderr}`);
  assert.match(r.stderr, /result=defer/);
  // The one marked out for a year is tried like the others (no back-off lasts that long).
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${p4}: connect ECONNREFUSED`));
  assert.ok(Date.now() - start < 12_000, `answered in ${Date.now() - start} ms`);
  assert.equal(s.standIn.deliveries().length, 0);
});

test('balance and backoff are checked where they are written', LIMIT, async () => {
  const s = make();
  s.write('nqqueue.cfb', ':spamassassin=host=127.0.0.1:1,balance=random\n');
  const r = s.command(['check-config']);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /nqqueue\.cfb:1: .*balance must be failover or round-robin, not "random"/);
  s.write('nqqueue.cfb', ':spamassassin=host=127.0.0.1:1\n');
  s.write('nqqueue.conf', '[spamassassin]\nbackoff = 90m\n');
  const c = s.command(['check-config']);
  assert.notEqual(c.code, 0);
  assert.match(c.stdout + c.stderr, /nqqueue\.conf:2: .*backoff must be between 100ms and 1h, not 90m/);
});
