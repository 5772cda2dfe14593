// What the metrics add to one message in daemon mode, in the daemon's own process: the front door's facts
// (jobFacts), two backend counts, and DaemonMetrics.message() — the journal record made, counted into the
// registry and appended to the hour's file (one write). Run by scripts/bench.js with each node:
//   node bench/metrics-cost.mjs DIST_ROOT   → one line of JSON on stdout
// A message like the bench's clamav row: one general result, two recipients with a per-user result each,
// one qmail-queue call.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const dist = process.argv[2];
const load = (p) => import(pathToFileURL(join(dist, p)).href);
const [{ jobFacts }, { DaemonMetrics }, { countBackend }, { defaultSettings }, { readJournal }, { RowSet }] = await Promise.all([
  load('queue/process.js'),
  load('metrics/daemon.js'),
  load('metrics/counter.js'),
  load('config/settings.js'),
  load('metrics/journal.js'),
  load('metrics/rollup-rows.js'),
]);

const result = (plugin, verdict, ms) => ({ plugin, params: '', version: '1', stage: 'general', verdict, flagged: false, details: plugin === 'clamav' ? { virus: null } : {}, headers: [], replaced: false, ms });
const addr = (a) => ({ address: a, raw: Buffer.from(a) });
const envelope = { sender: addr('sender@client.example'), recipients: [addr('a@example.com'), addr('b@example.com')] };
const outcome = {
  general: [result('clamav', 'accept', 1.3)],
  recipients: [
    { address: addr('a@example.com'), fate: 'deliver', results: [result('spamassassin', 'accept', 140)] },
    { address: addr('b@example.com'), fate: 'deliver', results: [result('spamassassin', 'accept', 141)] },
  ],
};
const calls = [{ ms: 2.1, ok: true }];
const job = { exit: 0, fields: { result: 'accept' } };

async function measure(journal, n) {
  const home = mkdtempSync(join(tmpdir(), 'nqq-metrics-cost-'));
  const settings = { ...defaultSettings(), metricsJournal: journal, metrics: undefined };
  const m = new DaemonMetrics({ home, settings, log: () => {}, inFlight: () => 0, store: async () => { throw new Error('no store here'); } });
  await m.start();
  const one = () => {
    countBackend('clamd', '/run/clamav/clamd.ctl', 'ok');
    countBackend('spamd', '127.0.0.1:783', 'ok');
    m.message(jobFacts(job, envelope, outcome, calls));
  };
  for (let i = 0; i < 2000; i++) one();
  const t = performance.now();
  for (let i = 0; i < n; i++) one();
  const ms = (performance.now() - t) / n;
  return { ms, m, home };
}

const N = 20_000;
const withJournal = await measure(true, N);
const registryOnly = await measure(false, N);
// The rollup writer's share, in the same process later: each record read back, decoded and rolled up.
let t = performance.now();
const { records } = readJournal(withJournal.home, new Map());
const rows = new RowSet('mx1');
for (const r of records) rows.record(r);
const rollupMs = (performance.now() - t) / records.length;
t = performance.now();
const text = await withJournal.m.registry.exposition();
const scrapeMs = performance.now() - t;
for (const x of [withJournal, registryOnly]) {
  await x.m.stop();
  rmSync(x.home, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify({ n: N, messageMs: withJournal.ms, rollupMs, perMessageMs: withJournal.ms + rollupMs, registryOnlyMs: registryOnly.ms, scrapeMs, scrapeBytes: Buffer.byteLength(text), records: records.length })}\n`);
