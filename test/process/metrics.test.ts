// /metrics of `nqqueue serve` after a known mix of messages — accepted, refused (a virus, a blocked
// sender), quarantined, deferred (spamd down at both its addresses) — with exact counts, the exposition
// checked by promtool. Run in both modes: in daemon mode the daemon counts its own messages; in
// standalone mode a `nqqueue serve` started for the figures counts what bin/nqqueue wrote to the journal.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import { freePorts, requireDaemon } from '../helpers/daemons.js';
import { metricsUrl, promtoolCheck, samples, scrape } from '../helpers/metrics.js';
import { DAEMON_MODE, pluginDir, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';
import { eicarPlain } from '../fixtures/messages.js';

const VIA = DAEMON_MODE ? 'daemon' : 'standalone';
const procs: ChildProcess[] = [];
// Before the setups are removed (hooks run in the order they were added).
after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});
const make = setupsForThisFile();

const FLAGGER =
  "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', flagged: true, details: {} }; } };\n";

/** The `nqqueue serve` whose /metrics is scraped: the setup's own daemon, or one started for the figures. */
async function metricsServe(s: Setup): Promise<{ url: string; stop(): Promise<void> }> {
  if (DAEMON_MODE) {
    return { url: await metricsUrl(join(s.dir, 'serve.log')), stop: async () => {} };
  }
  const logFile = join(s.dir, 'metrics-serve.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(NQQUEUE_BIN, ['serve'], { env: { NQQUEUE_CONTROLDIR: s.control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path }, stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  procs.push(proc);
  const url = await metricsUrl(logFile);
  return {
    url,
    stop: async () => {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

test('a known mix of messages: /metrics counts each exactly, and promtool accepts the exposition', { timeout: 120_000 }, async (t) => {
  const clamd = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
  if (!clamd) return;
  const s = make();
  const [down1, down2] = await freePorts(2);
  const dir = pluginDir(s, { flagger: FLAGGER });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\nmetrics = 127.0.0.1:0\n`);
  s.write('general.cfb', `:clamav=socket=${clamd};black=spammer@bad.example\n`);
  s.write('nqqueue.cfb', `held@example.com:flagger;quarantine=all\ndown@example.com:spamassassin=host=127.0.0.1:${down1},host=127.0.0.1:${down2}\n`);
  let serve: Awaited<ReturnType<typeof metricsServe>> | undefined;
  if (!DAEMON_MODE) serve = await metricsServe(s);

  const codes: number[] = [];
  const run = async (o: Parameters<Setup['run']>[0]) => {
    const r = await s.run(o);
    codes.push(r.code ?? -1);
    return r;
  };
  await run({ to: ['a@example.com', 'b@example.com'] }); // accepted: 2 delivered
  serve ??= await metricsServe(s);
  await run({ message: eicarPlain(), to: ['a@example.com'] }); // refused: a virus
  await run({ from: 'spammer@bad.example', to: ['a@example.com', 'c@example.com'] }); // refused: blocked sender
  await run({ to: ['held@example.com', 'a@example.com'] }); // accepted: 1 quarantined, 1 delivered
  await run({ message: SAMPLE.replace('test message', 'to spamd'), to: ['down@example.com'] }); // deferred: spamd down
  assert.deepEqual(codes, [0, 82, 82, 0, 82]);

  const text = await scrape(serve.url);
  const check = promtoolCheck(text);
  assert.equal(check.code, 0, `${check.output}\n${text}`);
  const m = samples(text);
  const expect: Record<string, number> = {
    [`nqqueue_messages_total{result="accept",via="${VIA}"}`]: 2,
    [`nqqueue_messages_total{result="reject",via="${VIA}"}`]: 2,
    [`nqqueue_messages_total{result="defer",via="${VIA}"}`]: 1,
    'nqqueue_recipients_total{fate="deliver"}': 3,
    'nqqueue_recipients_total{fate="quarantine"}': 1,
    'nqqueue_recipients_total{fate="reject"}': 3,
    'nqqueue_recipients_total{fate="tempfail"}': 1,
    'nqqueue_plugin_verdicts_total{plugin="clamav",verdict="accept"}': 4,
    'nqqueue_plugin_verdicts_total{plugin="clamav",verdict="reject"}': 1,
    'nqqueue_plugin_verdicts_total{plugin="black",verdict="accept"}': 3,
    'nqqueue_plugin_verdicts_total{plugin="black",verdict="reject"}': 1,
    'nqqueue_plugin_verdicts_total{plugin="flagger",verdict="accept"}': 1,
    'nqqueue_plugin_verdicts_total{plugin="quarantine",verdict="drop"}': 1,
    'nqqueue_plugin_verdicts_total{plugin="spamassassin",verdict="tempfail"}': 1,
    'nqqueue_plugin_duration_seconds_count{plugin="clamav"}': 5,
    'nqqueue_plugin_duration_seconds_bucket{plugin="clamav",le="+Inf"}': 5,
    'nqqueue_virus_messages_total': 1,
    [`nqqueue_backend_calls_total{backend="clamd",address="${clamd}"}`]: 5,
    [`nqqueue_backend_errors_total{backend="spamd",address="127.0.0.1:${down1}"}`]: 1,
    [`nqqueue_backend_errors_total{backend="spamd",address="127.0.0.1:${down2}"}`]: 1,
    [`nqqueue_backend_failovers_total{backend="spamd",address="127.0.0.1:${down1}"}`]: 1,
    'nqqueue_qmail_queue_duration_seconds_count': 2,
    'nqqueue_qmail_queue_failures_total': 0,
    'nqqueue_quarantine_items': 1,
    'nqqueue_spool_items': 0,
    'nqqueue_client_fallbacks_total{reason="no-socket"}': 0,
    'nqqueue_messages_in_flight': 0,
    'nqqueue_config_last_reload_successful': 1,
  };
  for (const [k, v] of Object.entries(expect)) assert.equal(m.get(k), v, k);

  // Stopped, the serve has rolled the journal up into the store: the same counts, per minute.
  if (DAEMON_MODE) await stopDaemon(s);
  else await serve.stop();
  const totals = await rollupTotals(s, ['messages', 'recipients', 'sender', 'sender_domain', 'virus', 'refusal', 'plugin_verdict', 'backend_error', 'backend_failover', 'backend_ok', 'qmail_queue_ms', 'quarantine_items']);
  assert.deepEqual(totals.messages, { accept: 2, reject: 2, defer: 1 });
  assert.deepEqual(totals.recipients, { deliver: 3, quarantine: 1, reject: 3, tempfail: 1 });
  assert.deepEqual(totals.sender, { 'sender@client.example': 4, 'spammer@bad.example': 1 });
  assert.deepEqual(totals.sender_domain, { 'client.example': 4, 'bad.example': 1 });
  assert.deepEqual(totals.virus, { 'Eicar-Test-NDB.UNOFFICIAL': 1 });
  assert.deepEqual(totals.refusal, { 'Message rejected because it contains a virus: Eicar-Test-NDB.UNOFFICIAL (#5.7.1)': 1, 'mail from this sender is not accepted (#5.7.1)': 1 });
  assert.deepEqual(totals.plugin_verdict, {
    'clamav:accept': 4,
    'clamav:reject': 1,
    'black:accept': 3,
    'black:reject': 1,
    'flagger:accept': 1,
    'quarantine:drop': 1,
    'spamassassin:tempfail': 1,
  });
  assert.deepEqual(totals.backend_ok, { [`clamd ${clamd}`]: 5 });
  assert.deepEqual(totals.backend_error, { [`spamd 127.0.0.1:${down1}`]: 1, [`spamd 127.0.0.1:${down2}`]: 1 });
  assert.deepEqual(totals.backend_failover, { [`spamd 127.0.0.1:${down1}`]: 1 });
  assert.deepEqual(totals.qmail_queue_ms, { '': 2 });
  assert.ok((totals.quarantine_items?.[''] ?? 0) >= 1, 'the quarantine gauge was sampled');
});

/** SIGTERM to the setup's daemon, and wait until it is gone (its last rollup pass is done by then). */
async function stopDaemon(s: Setup): Promise<void> {
  const pid = s.daemonPid();
  assert.ok(pid, 'the daemon runs');
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 1000; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('the daemon did not stop');
}

/** Each series' keys added up over the last hours, as the store has them. */
async function rollupTotals(s: Setup, series: string[]): Promise<Record<string, Record<string, number>>> {
  const store = await openStore(s.home, defaultSettings());
  try {
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const before = new Date(Date.now() + 3_600_000).toISOString();
    const out: Record<string, Record<string, number>> = {};
    for (const name of series) {
      const { rows } = await store.rollupTotals({ series: name, since, before });
      out[name] = Object.fromEntries(rows.map((r) => [r.key, r.count]));
    }
    return out;
  } finally {
    await store.close();
  }
}
