// The pieces of the metrics on their own: the buckets are the store's, the exposition escapes what
// comes from outside, a journal line that is not a record is skipped, records are bounded.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultSettings, parseSettingsFile } from '../../src/config/settings.js';
import { bucketOf, LATENCY_BUCKETS_MS } from '../../src/metrics/buckets.js';
import { parseMetricsListen } from '../../src/metrics/listen.js';
import { decodeRecord, encodeRecord, makeRecord } from '../../src/metrics/record.js';
import { Registry, SERIES_MAX } from '../../src/metrics/registry.js';
import { RowSet } from '../../src/metrics/rollup-rows.js';
import { LATENCY_BUCKETS_MS as STORE_BUCKETS } from '../../src/store/types.js';
import { promtoolCheck } from '../helpers/metrics.js';

test("the histograms' bounds are the store's", () => {
  assert.deepEqual(LATENCY_BUCKETS_MS, STORE_BUCKETS);
  assert.equal(bucketOf(0.4), 0);
  assert.equal(bucketOf(1), 0);
  assert.equal(bucketOf(1.01), 1);
  assert.equal(bucketOf(30_000), LATENCY_BUCKETS_MS.length - 1);
  assert.equal(bucketOf(30_001), LATENCY_BUCKETS_MS.length);
});

test('label values with quotes, backslashes and line breaks are escaped; promtool reads them; a family is bounded', async () => {
  const r = new Registry();
  const c = r.counter('nqqueue_test_total', 'A test.\nSecond line \\ too.', ['plugin']);
  c.inc(['a"b\\c\nd']);
  for (let i = 0; i < SERIES_MAX + 10; i++) c.inc([`p${i}`]);
  const text = await r.exposition();
  assert.match(text, /^nqqueue_test_total\{plugin="a\\"b\\\\c\\nd"\} 1$/m);
  assert.match(text, /^# HELP nqqueue_test_total A test\.\\nSecond line \\\\ too\.$/m);
  assert.equal(text.split('\n').filter((l) => l.startsWith('nqqueue_test_total{')).length, SERIES_MAX);
  const check = promtoolCheck(text);
  assert.equal(check.code, 0, check.output);
});

test('a journal line that is not a record is skipped; odd fields are dropped, texts cut', () => {
  for (const bad of ['', '{', 'null', '[]', '{"v":2,"t":1,"pid":1,"via":"daemon"}', '{"v":1,"t":-1,"pid":1,"via":"daemon"}', '{"v":1,"t":1,"pid":1,"via":"x"}', '{"v":1,"t":1,"pid":1,"via":"daemon","result":"maybe"}']) {
    assert.equal(decodeRecord(bad), undefined, bad);
  }
  const r = decodeRecord(JSON.stringify({ v: 1, t: 5, pid: 9, via: 'standalone', result: 'accept', fates: { deliver: 2, evil: 9 }, backend: { 'clamd /s ok': 1, 'clamd /s rm -rf': 3 }, sender: 'x'.repeat(1000) }));
  assert.ok(r);
  assert.deepEqual(r.fates, { deliver: 2 });
  assert.deepEqual(r.backend, { 'clamd /s ok': 1 });
  assert.equal(r.sender, undefined);
});

test('a record is bounded: 10,000 recipients with per-user results make one line per plugin and verdict', () => {
  const results = Array.from({ length: 10_000 }, (_, i) => ({ plugin: 'spamassassin', verdict: i % 2 ? 'accept' : 'reject', ms: i % 300, details: {} }));
  const rec = makeRecord({ result: 'accept', sender: 'Alice@Example.COM', recipients: 10_000, fates: { deliver: 5000, reject: 5000 }, results }, 'daemon', undefined, undefined);
  const line = encodeRecord(rec);
  assert.ok(line.length < 1000, `${line.length} bytes`);
  assert.equal(rec.sender, 'alice@example.com');
  const back = decodeRecord(line)!;
  assert.equal(back.plugins!.reduce((a, p) => a + p.n, 0), 10_000);
  const rows = new RowSet('mx1');
  rows.record(back);
  const list = rows.list();
  assert.deepEqual(list.find((x) => x.series === 'plugin_ms')!.buckets!.reduce((a, b) => a + b, 0), 10_000);
  assert.deepEqual(list.filter((x) => x.series === 'sender_domain').map((x) => x.key), ['example.com']);
  assert.ok(list.every((x) => x.minute === new Date(Math.floor(rec.t / 60_000) * 60_000).toISOString()));
});

test('metrics = HOST:PORT: loopback only, unless the admin writes public', () => {
  assert.deepEqual(parseMetricsListen('127.0.0.1:9466'), { host: '127.0.0.1', port: 9466, public: false });
  assert.deepEqual(parseMetricsListen('[::1]:9466'), { host: '::1', port: 9466, public: false });
  assert.deepEqual(parseMetricsListen('localhost:0'), { host: 'localhost', port: 0, public: false });
  assert.equal(parseMetricsListen('off'), undefined);
  assert.deepEqual(parseMetricsListen('192.0.2.5:9466 public'), { host: '192.0.2.5', port: 9466, public: true });
  assert.throws(() => parseMetricsListen('0.0.0.0:9466'), /0\.0\.0\.0 is not a loopback address: write "0\.0\.0\.0:9466 public"/);
  assert.throws(() => parseMetricsListen('192.0.2.5:9466'), /not a loopback address/);
  for (const bad of ['9466', '127.0.0.1', '127.0.0.1:70000', '999.0.0.1:9466 public', 'example.com:9466', '127.0.0.1:9466 yes']) assert.throws(() => parseMetricsListen(bad), Error, bad);
});

test('the metrics settings: defaults, and each bad value refused at file:line', () => {
  const d = defaultSettings();
  assert.equal(d.metrics, undefined);
  assert.equal(d.metricsJournal, true);
  assert.equal(d.metricsHistoryMs, 30 * 86_400_000);
  const ok = parseSettingsFile('metrics = 127.0.0.1:9466\nmetrics_history = 7d\nmetrics_journal = no\n', '/c/nqqueue.conf');
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.metrics, { host: '127.0.0.1', port: 9466, public: false });
  assert.equal(ok.metricsHistoryMs, 7 * 86_400_000);
  assert.equal(ok.metricsJournal, false);
  const bad = parseSettingsFile('# metrics\nmetrics = 10.0.0.1:9466\nmetrics_history = forever\nmetrics_journal = maybe\n', '/c/nqqueue.conf');
  assert.deepEqual(
    bad.problems.map((p) => `${p.file}:${p.line}`),
    ['/c/nqqueue.conf:2', '/c/nqqueue.conf:3', '/c/nqqueue.conf:4'],
  );
  assert.match(bad.problems[0]!.message, /10\.0\.0\.1 is not a loopback address: write "10\.0\.0\.1:9466 public"/);
  assert.equal(bad.metrics, undefined, 'a refused address is not listened on');
});
