// What only the daemon counts: nqqueue-qq's fallbacks to the standalone program (reported through the
// standalone run's journal record, by reason), configuration reloads and whether the last one can be
// used; and the listener itself (only /metrics, only where the setting says).

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';

import { metricsUrl, promtoolCheck, samples, scrape } from '../helpers/metrics.js';
import { REPO, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { envelopeOf, NQQUEUE_BIN, runSmtpd } from '../helpers/smtpd.js';

const QQ = join(REPO, 'bin', 'nqqueue-qq');
const procs: ChildProcess[] = [];
// Before the setups are removed (hooks run in the order they were added).
after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});
const make = setupsForThisFile();

function haveClient(t: TestContext): boolean {
  if (existsSync(QQ)) return true;
  if (process.env.CI === 'true') assert.fail(`${QQ} is missing (npm run build builds it)`);
  t.skip(`${QQ} is missing: run npm run build`);
  return false;
}

async function serve(s: Setup): Promise<{ log: () => string; stop: () => Promise<void> }> {
  const logFile = join(s.dir, 'serve.log');
  const starts = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '').split('listening on').length;
  const before = starts();
  const fd = openSync(logFile, 'a');
  const proc = spawn(NQQUEUE_BIN, ['serve'], { env: { NQQUEUE_CONTROLDIR: s.control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path }, stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  procs.push(proc);
  const sock = join(s.home, 'nqqueue.sock');
  for (let i = 0; i < 1000 && starts() === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(sock), readFileSync(logFile, 'utf8'));
  return {
    log: () => readFileSync(logFile, 'utf8'),
    stop: async () => {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
    },
  };
}

const qq = (s: Setup) => runSmtpd({ bin: QQ, message: 'Subject: x\n\nbody\n', envelope: envelopeOf('sender@client.example', ['a@example.com']), env: { ...s.env } });

test('fallbacks by reason, reloads and the last one being usable, counted by the daemon; promtool accepts it all', { timeout: 60_000 }, async (t) => {
  if (!haveClient(t)) return;
  const s = make();
  s.write('nqqueue.conf', 'metrics = 127.0.0.1:0\n');
  const d = await serve(s);
  const url = await metricsUrl(join(s.dir, 'serve.log'));
  assert.equal((await qq(s)).code, 0);
  // The socket moved away: nqqueue-qq finds none and runs the standalone program, which says why.
  const sock = join(s.home, 'nqqueue.sock');
  renameSync(sock, `${sock}.away`);
  const fell = await qq(s);
  assert.equal(fell.code, 0, fell.stderr);
  assert.match(fell.stderr, /via=fallback why=no-socket/);
  renameSync(`${sock}.away`, sock);
  // A settings line the daemon cannot use: the reload fails, messages are deferred.
  s.write('nqqueue.conf', 'metrics = 127.0.0.1:0\nno_such_key = 1\n');
  const deferred = await qq(s);
  assert.equal(deferred.code, 82);
  assert.match(deferred.errorText.toString(), /^Z/);
  let m = samples(await scrape(url));
  assert.equal(m.get('nqqueue_messages_total{result="accept",via="daemon"}'), 1);
  assert.equal(m.get('nqqueue_messages_total{result="defer",via="daemon"}'), 1);
  assert.equal(m.get('nqqueue_messages_total{result="accept",via="fallback"}'), 1);
  assert.equal(m.get('nqqueue_client_fallbacks_total{reason="no-socket"}'), 1);
  assert.equal(m.get('nqqueue_client_fallbacks_total{reason="refused"}'), 0);
  assert.equal(m.get('nqqueue_config_reloads_total{result="failure"}'), 1);
  assert.equal(m.get('nqqueue_config_reloads_total{result="success"}'), 0);
  assert.equal(m.get('nqqueue_config_last_reload_successful'), 0);
  s.write('nqqueue.conf', 'metrics = 127.0.0.1:0\n');
  assert.equal((await qq(s)).code, 0);
  const text = await scrape(url);
  const check = promtoolCheck(text);
  assert.equal(check.code, 0, check.output);
  m = samples(text);
  assert.equal(m.get('nqqueue_config_reloads_total{result="success"}'), 1);
  assert.equal(m.get('nqqueue_config_last_reload_successful'), 1);
  assert.equal(m.get('nqqueue_messages_total{result="accept",via="daemon"}'), 2);
  assert.ok((m.get('process_resident_memory_bytes') ?? 0) > 0);
  // Nothing but GET /metrics.
  const base = url.replace(/\/metrics$/, '');
  assert.equal((await fetch(`${base}/`)).status, 404);
  assert.equal((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 405);
  await d.stop();
  assert.match(d.log(), /nqqueue serve: metrics on http:\/\/127\.0\.0\.1:\d+\/metrics\n/);
});

test('no metrics setting: no listener; a metrics address that is not loopback is refused at file:line by check-config and not listened on', { timeout: 60_000 }, async () => {
  const s = make();
  let d = await serve(s);
  await d.stop();
  assert.doesNotMatch(d.log(), /metrics on/);
  s.write('nqqueue.conf', 'log_format = text\nmetrics = 0.0.0.0:9466\n');
  const c = s.command(['check-config']);
  assert.equal(c.code, 1);
  assert.match(c.stdout + c.stderr, /nqqueue\.conf:2: .*0\.0\.0\.0 is not a loopback address: write "0\.0\.0\.0:9466 public"/);
  d = await serve(s);
  await d.stop();
  assert.doesNotMatch(d.log(), /metrics on/);
});
