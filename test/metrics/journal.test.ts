// Standalone counting: bin/nqqueue appends one record per answered message to the journal, whole even
// when many run at once, none for a run killed before it answered; the rollup writer adds each record to
// the store exactly once, whether it is killed before or after its commit (kill -9 of `nqqueue serve`
// mid-pass included).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { journalDir, readJournal } from '../../src/metrics/journal.js';
import { RollupWriter, type RollupStore } from '../../src/metrics/rollup.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { moduleRecorder } from '../helpers/modules.js';
import { setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { envelopeOf, NQQUEUE_BIN, runSmtpd } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const HOUR = 3_600_000;

function journalLines(s: Setup): string[] {
  const dir = journalDir(s.home);
  return readdirSync(dir)
    .filter((n) => n.startsWith('journal-'))
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean));
}

async function totals(store: Store, series: string): Promise<Record<string, number>> {
  const { rows } = await store.rollupTotals({ series, since: new Date(Date.now() - HOUR).toISOString(), before: new Date(Date.now() + HOUR).toISOString() });
  return Object.fromEntries(rows.map((r) => [r.key, r.count]));
}

test('30 standalone runs at once: 30 whole records; runs killed (kill -9) before they answered: none, and the lines around them intact', { timeout: 120_000 }, async () => {
  const s = make();
  const slow = s.script('slow.sh', '#!/bin/sh\nexec sleep 20\n');
  s.write('nqqueue.cfb', `slow@example.com:exec=${slow}\n`);
  const runs: Promise<{ code: number | null; timedOut?: boolean }>[] = [];
  for (let i = 0; i < 30; i++) runs.push(s.run({ to: [`r${i}@example.com`] }));
  // Killed with SIGKILL by the runner while the exec plugin sleeps: never answered.
  for (let i = 0; i < 5; i++) runs.push(s.run({ to: ['slow@example.com'], timeoutMs: 2500 }));
  const results = await Promise.all(runs);
  assert.deepEqual(results.slice(0, 30).map((r) => r.code), new Array(30).fill(0));
  assert.ok(results.slice(30).every((r) => r.code === null), 'the slow runs were killed');
  const lines = journalLines(s);
  assert.equal(lines.length, 30);
  for (const l of lines) assert.equal(JSON.parse(l).result, 'accept');
  const { records, skipped } = readJournal(s.home, new Map());
  assert.equal(records.length, 30);
  assert.equal(skipped, 0);
});

test('the queue path loads the record and journal modules only: no registry, no listener, no rollups, nothing of the store', async () => {
  const s = make();
  const modules = moduleRecorder(s.dir);
  const list = join(s.dir, 'modules.txt');
  const r = await s.run({ to: ['a@example.com'], extraEnv: modules.env(list) });
  assert.equal(r.code, 0, r.stderr);
  const metrics = modules
    .read(list)
    .filter((m) => m.includes('/dist/metrics/'))
    .map((m) => m.slice(m.indexOf('/dist/metrics/') + '/dist/metrics/'.length));
  assert.deepEqual([...new Set(metrics)].sort(), ['buckets.js', 'counter.js', 'journal.js', 'listen.js', 'record.js']);
  assert.deepEqual(modules.read(list).filter((m) => /\/dist\/store\//.test(m)), []);
  assert.equal(journalLines(s).length, 1);
});

test('metrics_journal = no: nothing is written', async () => {
  const s = make();
  s.write('nqqueue.conf', 'metrics_journal = no\n');
  const r = await s.run({ to: ['a@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(journalDir(s.home)), false);
});

/** A store that fails the way a process killed around the commit would leave it. */
function failing(store: Store, when: 'before' | 'after'): RollupStore {
  return {
    async addRollups(rows) {
      if (when === 'after') await store.addRollups(rows);
      throw new Error(`killed ${when} the commit`);
    },
    pruneRollups: (b) => store.pruneRollups(b),
    rollupGaugeLatest: (q) => store.rollupGaugeLatest(q),
  };
}

test('a rollup pass cut off before or after its commit: the next one adds each record exactly once', async () => {
  const s = make();
  for (let i = 0; i < 3; i++) assert.equal((await s.run({ to: ['a@example.com'] })).code, 0);
  const store = await openStore(s.home, defaultSettings());
  try {
    const writer = (st: RollupStore) => new RollupWriter({ home: s.home, host: 'mx1', store: async () => st, gauges: async () => ({}), historyMs: 30 * 86_400_000, log: () => {} });
    await assert.rejects(writer(failing(store, 'before')).pass(), /killed before/);
    assert.deepEqual(await totals(store, 'messages'), {});
    await assert.rejects(writer(failing(store, 'after')).pass(), /killed after/);
    assert.deepEqual(await totals(store, 'messages'), { accept: 3 });
    for (let i = 0; i < 2; i++) assert.equal((await s.run({ to: ['a@example.com'] })).code, 0);
    assert.equal(await writer(store).pass(), 2, 'only the two new records');
    assert.deepEqual(await totals(store, 'messages'), { accept: 5 });
    assert.equal((await s.run({ to: ['a@example.com'] })).code, 0);
    await assert.rejects(writer(failing(store, 'before')).pass(), /killed before/);
    assert.equal(await writer(store).pass(), 1);
    assert.equal(await writer(store).pass(), 0);
    assert.deepEqual(await totals(store, 'messages'), { accept: 6 });
    assert.deepEqual(await totals(store, 'recipients'), { deliver: 6 });
  } finally {
    await store.close();
  }
});

test('kill -9 of nqqueue serve again and again while standalone runs go on: the rollups hold every message exactly once', { timeout: 180_000 }, async () => {
  const s = make();
  mkdirSync(s.home, { recursive: true, mode: 0o700 });
  const logFile = join(s.dir, 'serve.log');
  const startServe = () => {
    const fd = openSync(logFile, 'a');
    const p = spawn(NQQUEUE_BIN, ['serve'], { env: { NQQUEUE_CONTROLDIR: s.control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path }, stdio: ['ignore', 'ignore', fd] });
    closeSync(fd);
    return p;
  };
  let sent = 0;
  for (let round = 0; round < 6; round++) {
    const serve = startServe();
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 4; i++) {
      runs.push(
        runSmtpd({ message: 'Subject: x\n\nbody\n', envelope: envelopeOf('sender@client.example', ['a@example.com']), env: { ...s.env } }).then((r) => {
          assert.equal(r.code, 0, r.stderr);
          sent++;
        }),
      );
    }
    await Promise.all(runs);
    // Around its first pass (a second after start): sometimes before, during or after it.
    await new Promise((r) => setTimeout(r, 900 + round * 80));
    const gone = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGKILL');
    await gone;
  }
  const serve = startServe();
  // Stopped once it listens (a stop asked for earlier ends it before any pass).
  const listening = () => (readFileSync(logFile, 'utf8').match(/listening on/g) ?? []).length;
  for (let i = 0; i < 1000 && listening() < 7; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(listening(), 7, readFileSync(logFile, 'utf8'));
  const gone = new Promise((r) => serve.once('exit', r));
  serve.kill('SIGTERM'); // the last pass at stop
  await gone;
  const store = await openStore(s.home, defaultSettings());
  try {
    assert.deepEqual(await totals(store, 'messages'), { accept: sent });
    assert.equal(sent, 24);
  } finally {
    await store.close();
  }
});

test('rollups older than metrics_history are pruned by the rollup writer; newer ones stay', async () => {
  const s = make();
  assert.equal((await s.run({ to: ['a@example.com'] })).code, 0);
  const store = await openStore(s.home, defaultSettings());
  try {
    const day = 86_400_000;
    const minute = (t: number) => new Date(Math.floor(t / 60_000) * 60_000).toISOString();
    await store.addRollups([
      { minute: minute(Date.now() - 40 * day), host: 'mx1', series: 'messages', key: 'accept', count: 7, sum: 0 },
      { minute: minute(Date.now() - 20 * day), host: 'mx1', series: 'messages', key: 'accept', count: 3, sum: 0 },
    ]);
    const writer = new RollupWriter({ home: s.home, host: 'mx1', store: async () => store, gauges: async () => ({}), historyMs: 30 * day, log: () => {} });
    assert.equal(await writer.pass(), 1);
    const all = await store.rollupTotals({ series: 'messages', since: minute(Date.now() - 60 * day), before: minute(Date.now() + HOUR) });
    assert.deepEqual(all.rows.map((r) => [r.key, r.count]), [['accept', 4]]);
  } finally {
    await store.close();
  }
});
