#!/usr/bin/env node
// What each scanner plugin adds to one message: the median, over N distinct 10 KB messages, of the
// time bin/nqqueue takes with that plugin minus the time it takes with no plugins, each run the way
// qmail-smtpd runs it (test/helpers/smtpd.ts) against the qmail-queue stand-in, with the real daemons
// the test suite starts (and the dspam stand-in: dspam is not packaged here).
//
//   node scripts/plugin-cost.js [N]        (default N = 20; builds the tests first)
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.argv[2] ?? 20);
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
spawnSync(process.execPath, [tsc, '-p', join(root, 'test', 'tsconfig.json')], { stdio: 'inherit' });

const t = (p) => import(join(root, 'dist-test', 'test', p));
const { startDaemons, eicar } = await t('helpers/daemons.js');
const { setup } = await t('helpers/nqq.js');
const { ham } = await t('fixtures/messages.js');
// qmail-smtpd's own Received line in front, as every message has (rspamd and spamd read it).
const RECEIVED = 'Received: from client.example (HELO helo.client.example) (192.0.2.7)\n  by mx.example.com with SMTP; 26 Nov 2026 10:00:00 -0000\n';
const viaSmtpd = (m) => Buffer.concat([Buffer.from(RECEIVED), m]);
const { makeDspamStandIn } = await t('helpers/dspam.js');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const daemons = await startDaemons();
const env = daemons.env;
const setups = [];
try {
  const make = (files) => {
    const s = setup({ files });
    setups.push(s);
    return s;
  };
  const dspamDir = make({});
  const dspam = makeDspamStandIn(dspamDir.dir);
  const cases = [
    { name: 'clamav', files: { 'general.cfb': `:clamav=socket=${env.NQQ_TEST_CLAMD_SOCKET}\n` } },
    { name: 'spamassassin', files: { 'nqqueue.cfb': `:spamassassin=host=${env.NQQ_TEST_SPAMD}\n` } },
    { name: 'rspamd', files: { 'nqqueue.cfb': `:rspamd=url=${env.NQQ_TEST_RSPAMD_URL}\n` } },
    { name: 'dspam (stand-in)', files: { 'nqqueue.cfb': `:dspam=bin=${dspam.path}\n` } },
    // Storing a copy: clamav=pass + quarantine against clamav=pass alone, on messages with EICAR. A
    // remote recipient too, so both make one qmail-queue call (the quarantined copy makes none).
    {
      to: ['rcpt@example.com', 'far@remote.example'],
      name: 'quarantine (storing)',
      files: { 'general.cfb': `:clamav=socket=${env.NQQ_TEST_CLAMD_SOCKET},pass\n`, 'nqqueue.cfb': ':quarantine=clamav\n' },
      baseline: { 'general.cfb': `:clamav=socket=${env.NQQ_TEST_CLAMD_SOCKET},pass\n` },
      infected: true,
    },
  ];
  const plain = make({});
  const msg = (infected) => viaSmtpd(infected ? Buffer.concat([ham(10 * 1024 - 80), eicar(), Buffer.from('\n')]) : ham(10 * 1024));
  const run = async (s, message, to = ['rcpt@example.com']) => {
    const r = await s.run({ message, to });
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
    if (r.deliveries.length === 0 && to.length > 1) throw new Error('nothing delivered');
    return r.ms;
  };
  // Warm the page cache, the daemons and node's compile cache.
  for (let i = 0; i < 3; i++) await run(plain, msg(false));
  const rows = [];
  for (const c of cases) {
    const withS = make(c.files);
    const base = c.baseline ? make(c.baseline) : plain;
    for (let i = 0; i < 3; i++) await run(withS, msg(c.infected), c.to);
    const withMs = [];
    const baseMs = [];
    for (let i = 0; i < N; i++) {
      // Distinct messages for each run: clamd caches the results of messages it has seen.
      baseMs.push(await run(base, msg(c.infected), c.to));
      withMs.push(await run(withS, msg(c.infected), c.to));
    }
    const diffs = withMs.map((w, i) => w - baseMs[i]);
    rows.push([c.name, median(baseMs), median(withMs), median(diffs)]);
  }
  const f = (x) => x.toFixed(1).padStart(8);
  process.stdout.write(`\n${N} distinct 10 KB messages each, one local recipient, node ${process.version}, load average ${(await import('node:os')).loadavg()[0].toFixed(2)}\n`);
  process.stdout.write(`${'plugin'.padEnd(22)}${'without'.padStart(8)}${'with'.padStart(8)}${'added'.padStart(8)}  (ms, medians; added = median of paired differences)\n`);
  for (const [name, b, w, d] of rows) process.stdout.write(`${name.padEnd(22)}${f(b)}${f(w)}${f(d)}\n`);
} finally {
  for (const s of setups) s.cleanup();
  await daemons.stop();
}
