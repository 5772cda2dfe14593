// The rollup tests every store engine must pass (called from suite.ts): per-minute rows added up, gauges
// replaced, read back in steps, per host and summed over hosts, top keys, latency buckets, pruning.
// Nothing here knows the engine.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LATENCY_BUCKETS_MS, type RollupRow, type Store } from '../../src/store/types.js';
import type { StoreUnderTest } from './suite.js';

const T0 = Date.parse('2026-12-02T10:00:00.000Z');
/** The ISO minute `n` minutes after T0. */
function at(n: number): string {
  return new Date(T0 + n * 60_000).toISOString();
}

function row(over: Partial<RollupRow> & Pick<RollupRow, 'series'>): RollupRow {
  return { minute: at(0), host: 'mx1.example.com', key: '', count: 1, sum: 0, ...over };
}

/** Latency buckets with `n` events in the bucket of `bound` ms (or +Inf for Infinity). */
function buckets(...pairs: [bound: number, n: number][]): number[] {
  const b = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  for (const [bound, n] of pairs) {
    const i = bound === Infinity ? LATENCY_BUCKETS_MS.length : LATENCY_BUCKETS_MS.indexOf(bound);
    assert.ok(i >= 0, `no bucket ${bound}`);
    b[i]! += n;
  }
  return b;
}

const WHOLE = { since: at(-100_000), before: at(100_000) };

export function rollupSuite(use: (fn: (t: StoreUnderTest) => Promise<void>) => Promise<void>): void {
  test('rollups: LATENCY_BUCKETS_MS are increasing bounds in ms', () => {
    assert.ok(LATENCY_BUCKETS_MS.length >= 10);
    for (let i = 1; i < LATENCY_BUCKETS_MS.length; i++) assert.ok(LATENCY_BUCKETS_MS[i]! > LATENCY_BUCKETS_MS[i - 1]!);
    assert.ok(Object.isFrozen(LATENCY_BUCKETS_MS));
  });

  test('rollups: counters add up (in one batch and across batches), per minute, host and key', () =>
    use(async ({ store }) => {
      await store.addRollups([
        row({ series: 'messages', key: 'accept', count: 3 }),
        row({ series: 'messages', key: 'accept', count: 2 }),
        row({ series: 'messages', key: 'reject', count: 1 }),
        row({ series: 'messages', key: 'accept', count: 7, minute: at(1) }),
        row({ series: 'messages', key: 'accept', count: 4, host: 'mx2.example.com' }),
      ]);
      await store.addRollups([row({ series: 'messages', key: 'accept', count: 10 })]);
      const one = await store.rollupTimeline({ series: 'messages', ...WHOLE, host: 'mx1.example.com', stepMinutes: 1 });
      assert.deepEqual(one, [
        { minute: at(0), key: 'accept', count: 15, sum: 0 },
        { minute: at(0), key: 'reject', count: 1, sum: 0 },
        { minute: at(1), key: 'accept', count: 7, sum: 0 },
      ]);
      const summed = await store.rollupTimeline({ series: 'messages', ...WHOLE, stepMinutes: 1 });
      assert.deepEqual(summed, [
        { minute: at(0), key: 'accept', count: 19, sum: 0 },
        { minute: at(0), key: 'reject', count: 1, sum: 0 },
        { minute: at(1), key: 'accept', count: 7, sum: 0 },
      ]);
      assert.deepEqual(await store.rollupTimeline({ series: 'recipients', ...WHOLE, stepMinutes: 1 }), [], 'another series has nothing');
      assert.deepEqual(await store.rollupTimeline({ series: 'messages', ...WHOLE, host: 'mx3.example.com', stepMinutes: 1 }), []);
    }));

  test('rollups: steps add minutes up, aligned on multiples of the step; keys filter; since inclusive, before exclusive', () =>
    use(async ({ store }) => {
      const rows: RollupRow[] = [];
      for (let m = 0; m < 120; m++) rows.push(row({ series: 'messages', key: 'accept', minute: at(m), count: m + 1 }));
      rows.push(row({ series: 'messages', key: 'defer', minute: at(61), count: 5 }));
      await store.addRollups(rows);
      // T0 is 10:00, a multiple of 60 minutes since the epoch: hour steps start at 10:00 and 11:00.
      const hourly = await store.rollupTimeline({ series: 'messages', ...WHOLE, stepMinutes: 60 });
      assert.deepEqual(hourly, [
        { minute: at(0), key: 'accept', count: (60 * 61) / 2, sum: 0 },
        { minute: at(60), key: 'accept', count: (120 * 121) / 2 - (60 * 61) / 2, sum: 0 },
        { minute: at(60), key: 'defer', count: 5, sum: 0 },
      ]);
      const deferOnly = await store.rollupTimeline({ series: 'messages', ...WHOLE, stepMinutes: 60, keys: ['defer'] });
      assert.deepEqual(deferOnly, [{ minute: at(60), key: 'defer', count: 5, sum: 0 }]);
      assert.deepEqual(await store.rollupTimeline({ series: 'messages', ...WHOLE, stepMinutes: 60, keys: [] }), []);
      // 7-minute steps: 10:00 is 600 minutes after midnight... aligned on the epoch, not on `since`.
      const t0min = T0 / 60_000;
      const first = t0min - (t0min % 7);
      const seven = await store.rollupTimeline({ series: 'messages', since: at(0), before: at(10), stepMinutes: 7 });
      const expect = new Map<number, number>();
      for (let m = 0; m < 10; m++) {
        const s = t0min + m - ((t0min + m - first) % 7);
        expect.set(s, (expect.get(s) ?? 0) + m + 1);
      }
      assert.deepEqual(
        seven,
        [...expect].map(([s, count]) => ({ minute: new Date(s * 60_000).toISOString(), key: 'accept', count, sum: 0 })),
      );
      // The range: since inclusive, before exclusive; bounds between minutes take the whole minutes inside.
      const range = await store.rollupTotals({ series: 'messages', since: at(10), before: at(12) });
      assert.deepEqual(range.rows, [{ key: 'accept', count: 11 + 12, sum: 0 }]);
      const mid = await store.rollupTotals({ series: 'messages', since: new Date(T0 + 9.5 * 60_000).toISOString(), before: new Date(T0 + 11.5 * 60_000).toISOString() });
      assert.deepEqual(mid.rows, [{ key: 'accept', count: 11 + 12, sum: 0 }], 'the minutes 10 and 11 start inside the range');
    }));

  test('rollups: totals, largest first then by key, the top N, with the number of keys and the count of all', () =>
    use(async ({ store }) => {
      await store.addRollups([
        row({ series: 'sender', key: 'a@x.example', count: 5 }),
        row({ series: 'sender', key: 'b@x.example', count: 9, minute: at(3) }),
        row({ series: 'sender', key: 'c@x.example', count: 5, host: 'mx2.example.com' }),
        row({ series: 'sender', key: '<>', count: 1 }),
        row({ series: 'sender', key: 'a@x.example', count: 2, minute: at(5), host: 'mx2.example.com' }),
        row({ series: 'sender_domain', key: 'x.example', count: 100 }),
      ]);
      const all = await store.rollupTotals({ series: 'sender', ...WHOLE });
      assert.deepEqual(all, {
        rows: [
          { key: 'b@x.example', count: 9, sum: 0 },
          { key: 'a@x.example', count: 7, sum: 0 },
          { key: 'c@x.example', count: 5, sum: 0 },
          { key: '<>', count: 1, sum: 0 },
        ],
        keys: 4,
        count: 22,
      });
      const top2 = await store.rollupTotals({ series: 'sender', ...WHOLE, limit: 2 });
      assert.deepEqual(top2.rows.map((r) => r.key), ['b@x.example', 'a@x.example']);
      assert.equal(top2.keys, 4);
      assert.equal(top2.count, 22);
      const mx1 = await store.rollupTotals({ series: 'sender', ...WHOLE, host: 'mx1.example.com' });
      assert.deepEqual(mx1.rows, [
        { key: 'b@x.example', count: 9, sum: 0 },
        { key: 'a@x.example', count: 5, sum: 0 },
        { key: '<>', count: 1, sum: 0 },
      ]);
      // a tie: by key
      await store.addRollups([row({ series: 'sender', key: 'a@x.example', count: 2 })]);
      assert.deepEqual((await store.rollupTotals({ series: 'sender', ...WHOLE, limit: 2 })).rows.map((r) => r.key), ['a@x.example', 'b@x.example']);
      const none = await store.rollupTotals({ series: 'virus', ...WHOLE });
      assert.deepEqual(none, { rows: [], keys: 0, count: 0 });
    }));

  test('rollups: latency buckets and sums add up per key, in timelines and totals', () =>
    use(async ({ store }) => {
      await store.addRollups([
        row({ series: 'plugin_ms', key: 'clamav', count: 3, sum: 31.5, buckets: buckets([10, 2], [25, 1]) }),
        row({ series: 'plugin_ms', key: 'clamav', count: 2, sum: 6000, buckets: buckets([5000, 1], [Infinity, 1]), host: 'mx2.example.com' }),
        row({ series: 'plugin_ms', key: 'spamassassin', count: 1, sum: 400, buckets: buckets([500, 1]), minute: at(2) }),
      ]);
      await store.addRollups([row({ series: 'plugin_ms', key: 'clamav', count: 1, sum: 1, buckets: buckets([1, 1]), minute: at(1) })]);
      const totals = await store.rollupTotals({ series: 'plugin_ms', ...WHOLE });
      assert.deepEqual(totals.rows, [
        { key: 'clamav', count: 6, sum: 6032.5, buckets: buckets([1, 1], [10, 2], [25, 1], [5000, 1], [Infinity, 1]) },
        { key: 'spamassassin', count: 1, sum: 400, buckets: buckets([500, 1]) },
      ]);
      const steps = await store.rollupTimeline({ series: 'plugin_ms', ...WHOLE, stepMinutes: 2, keys: ['clamav'] });
      assert.deepEqual(steps, [{ minute: at(0), key: 'clamav', count: 6, sum: 6032.5, buckets: buckets([1, 1], [10, 2], [25, 1], [5000, 1], [Infinity, 1]) }]);
      const mx2 = await store.rollupTimeline({ series: 'plugin_ms', ...WHOLE, stepMinutes: 1, host: 'mx2.example.com' });
      assert.deepEqual(mx2, [{ minute: at(0), key: 'clamav', count: 2, sum: 6000, buckets: buckets([5000, 1], [Infinity, 1]) }]);
      // a series without buckets has none in what comes back
      await store.addRollups([row({ series: 'messages', key: 'accept' })]);
      assert.equal('buckets' in (await store.rollupTotals({ series: 'messages', ...WHOLE })).rows[0]!, false);
    }));

  test('rollups: a gauge replaces the minute\'s value; steps take the highest minute, hosts summed minute by minute', () =>
    use(async ({ store }) => {
      const g = (minute: number, value: number, host = 'mx1.example.com'): RollupRow => row({ series: 'spool_items', minute: at(minute), host, sum: value, gauge: true });
      await store.addRollups([g(0, 4), g(0, 6), g(1, 2), g(2, 9), g(0, 1, 'mx2.example.com'), g(1, 8, 'mx2.example.com'), g(5, 3, 'mx2.example.com')]);
      await store.addRollups([g(1, 3)]); // replaces mx1's 2 at minute 1
      // minute 0: 6 + 1 = 7; minute 1: 3 + 8 = 11; minute 2: 9; minute 5: 3
      assert.deepEqual(await store.rollupGauge({ series: 'spool_items', ...WHOLE, stepMinutes: 1 }), [
        { minute: at(0), max: 7 },
        { minute: at(1), max: 11 },
        { minute: at(2), max: 9 },
        { minute: at(5), max: 3 },
      ]);
      assert.deepEqual(await store.rollupGauge({ series: 'spool_items', ...WHOLE, stepMinutes: 60 }), [{ minute: at(0), max: 11 }]);
      assert.deepEqual(await store.rollupGauge({ series: 'spool_items', ...WHOLE, stepMinutes: 60, host: 'mx1.example.com' }), [{ minute: at(0), max: 9 }]);
      assert.deepEqual(await store.rollupGaugeLatest({ series: 'spool_items', ...WHOLE }), [
        { host: 'mx1.example.com', minute: at(2), value: 9 },
        { host: 'mx2.example.com', minute: at(5), value: 3 },
      ]);
      assert.deepEqual(await store.rollupGaugeLatest({ series: 'spool_items', since: at(0), before: at(2) }), [
        { host: 'mx1.example.com', minute: at(1), value: 3 },
        { host: 'mx2.example.com', minute: at(1), value: 8 },
      ]);
      assert.deepEqual(await store.rollupGaugeLatest({ series: 'spool_items', ...WHOLE, host: 'mx2.example.com' }), [{ host: 'mx2.example.com', minute: at(5), value: 3 }]);
      assert.deepEqual(await store.rollupGaugeLatest({ series: 'quarantine_items', ...WHOLE }), []);
    }));

  test('rollups: any range and any step give the sums of its minutes, whatever days and hours it cuts', () =>
    use(async ({ store }) => {
      // Three days of rows at uneven minutes, on two hosts, two keys, with buckets.
      const rows: RollupRow[] = [];
      for (let m = -1500; m < 3000; m += 37) {
        rows.push(row({ series: 'plugin_ms', key: m % 2 ? 'a' : 'b', minute: at(m), host: m % 3 ? 'mx1.example.com' : 'mx2.example.com', count: 2, sum: m + 0.5, buckets: buckets([10, 1], [Infinity, 1]) }));
      }
      await store.addRollups(rows);
      const expected = (since: number, before: number, step: number, host?: string) => {
        const out = new Map<string, { minute: string; key: string; count: number; sum: number; buckets: number[] }>();
        for (const r of rows) {
          const t = Date.parse(r.minute) / 60_000;
          if (t < since || t >= before || (host !== undefined && r.host !== host)) continue;
          const s = t - (((t % step) + step) % step);
          const id = `${s} ${r.key}`;
          const e = out.get(id) ?? { minute: new Date(s * 60_000).toISOString(), key: r.key, count: 0, sum: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) };
          e.count += r.count;
          e.sum += r.sum;
          r.buckets!.forEach((b, i) => (e.buckets[i]! += b));
          out.set(id, e);
        }
        return [...out.values()].sort((x, y) => (x.minute < y.minute ? -1 : x.minute > y.minute ? 1 : x.key < y.key ? -1 : 1));
      };
      const t0 = T0 / 60_000;
      for (const [since, before] of [
        [-1500, 3000],
        [-1441, 2881],
        [-7, 1450],
        [59, 61],
        [1, 1439],
        [-100_000, 100_000],
      ] as const) {
        for (const step of [1, 15, 60, 360, 1440]) {
          for (const host of [undefined, 'mx2.example.com']) {
            const q = { series: 'plugin_ms', since: at(since), before: at(before), ...(host ? { host } : {}) };
            const want = expected(t0 + since, t0 + before, step, host);
            assert.deepEqual(await store.rollupTimeline({ ...q, stepMinutes: step }), want, `${since}..${before} step ${step} ${host ?? ''}`);
            if (step === 1) {
              const totals = await store.rollupTotals(q);
              const byKey = new Map<string, number>();
              for (const w of want) byKey.set(w.key, (byKey.get(w.key) ?? 0) + w.count);
              assert.deepEqual(
                totals.rows.map((r) => [r.key, r.count]),
                [...byKey].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)),
                `totals ${since}..${before} ${host ?? ''}`,
              );
              assert.equal(totals.count, want.reduce((a, w) => a + w.count, 0));
              assert.equal(totals.keys, byKey.size);
            }
          }
        }
      }
    }));

  test('rollups: a gauge series read as counters adds up its minutes, whatever days and hours the range holds', () =>
    use(async ({ store }) => {
      const rows: RollupRow[] = [];
      for (let m = -1500; m < 1500; m += 50) rows.push(row({ series: 'quarantine_items', minute: at(m), sum: 3, gauge: true }));
      rows.push(row({ series: 'quarantine_items', minute: at(0), sum: 4, gauge: true })); // replaces minute 0's 3
      await store.addRollups(rows);
      assert.deepEqual((await store.rollupTotals({ series: 'quarantine_items', ...WHOLE })).rows, [{ key: '', count: 60, sum: 60 * 3 + 1 }]);
      assert.deepEqual((await store.rollupTotals({ series: 'quarantine_items', since: at(-60), before: at(60) })).rows, [{ key: '', count: 3, sum: 3 + 4 + 3 }]);
      const hourly = await store.rollupTimeline({ series: 'quarantine_items', since: at(0), before: at(120), stepMinutes: 60 });
      assert.deepEqual(hourly, [
        { minute: at(0), key: '', count: 2, sum: 4 + 3 },
        { minute: at(60), key: '', count: 1, sum: 3 },
      ]);
    }));

  test('rollups: the hosts that have rows in a range', () =>
    use(async ({ store }) => {
      assert.deepEqual(await store.rollupHosts(WHOLE.since, WHOLE.before), []);
      await store.addRollups([
        row({ series: 'messages', key: 'accept', host: 'mx2.example.com', minute: at(0) }),
        row({ series: 'messages', key: 'accept', host: 'mx2.example.com', minute: at(30) }),
        row({ series: 'in_flight', host: 'mx1.example.com', minute: at(40), gauge: true, sum: 2 }),
        row({ series: 'messages', key: 'accept', host: 'mx3.example.com', minute: at(100) }),
      ]);
      assert.deepEqual(await store.rollupHosts(WHOLE.since, WHOLE.before), ['mx1.example.com', 'mx2.example.com', 'mx3.example.com']);
      assert.deepEqual(await store.rollupHosts(at(10), at(50)), ['mx1.example.com', 'mx2.example.com']);
      assert.deepEqual(await store.rollupHosts(at(31), at(100)), ['mx1.example.com']);
      assert.deepEqual(await store.rollupHosts(at(101), at(200)), []);
    }));

  test('rollups: pruning deletes every row of a minute before the date, exactly, and nothing after', () =>
    use(async ({ store }) => {
      const rows: RollupRow[] = [];
      for (let m = 0; m < 10; m++) {
        rows.push(row({ series: 'messages', key: 'accept', minute: at(m) }));
        rows.push(row({ series: 'spool_items', minute: at(m), gauge: true, sum: m }));
      }
      rows.push(row({ series: 'messages', key: 'accept', minute: at(2), host: 'old.example.com' }));
      await store.addRollups(rows);
      assert.equal(await store.pruneRollups(at(4)), 4 * 2 + 1);
      assert.equal(await store.pruneRollups(at(4)), 0, 'a second prune finds nothing');
      assert.deepEqual((await store.rollupTimeline({ series: 'messages', ...WHOLE, stepMinutes: 1 })).map((p) => p.minute), [4, 5, 6, 7, 8, 9].map(at));
      assert.deepEqual((await store.rollupGauge({ series: 'spool_items', ...WHOLE, stepMinutes: 1 })).map((p) => p.max), [4, 5, 6, 7, 8, 9]);
      assert.deepEqual(await store.rollupHosts(WHOLE.since, WHOLE.before), ['mx1.example.com'], 'a host with nothing left is gone');
      assert.deepEqual(await store.rollupHosts(at(0), at(4)), [], 'and the one left starts where its rows do');
      assert.equal(await store.pruneRollups(new Date(T0 + 4.5 * 60_000).toISOString()), 2, 'a date inside a minute: that minute began before it');
    }));

  test('rollups: after pruning, every range from the date on still adds up exactly; pruned at a day, nothing older is left', () =>
    use(async ({ store }) => {
      const rows: RollupRow[] = [];
      for (let m = -3000; m < 1500; m += 7) rows.push(row({ series: 'messages', key: 'accept', minute: at(m), count: 1 }));
      await store.addRollups(rows);
      const count = (since: number, before: number): number => rows.filter((r) => Date.parse(r.minute) >= T0 + since * 60_000 && Date.parse(r.minute) < T0 + before * 60_000).length;
      // T0 is 10:00: 600 minutes before it is midnight.
      await store.pruneRollups(at(-570));
      for (const [since, before] of [[-570, 1500], [-540, 1500], [-569, 3], [0, 1440]] as const) {
        assert.equal((await store.rollupTotals({ series: 'messages', since: at(since), before: at(before) })).count, count(since, before), `${since}..${before}`);
      }
      await store.pruneRollups(at(-600 + 1440));
      assert.equal((await store.rollupTotals({ series: 'messages', ...WHOLE })).count, count(-600 + 1440, 1500), 'nothing before the day is left, in any table');
      assert.deepEqual(await store.rollupTimeline({ series: 'messages', since: at(-100_000), before: at(840), stepMinutes: 60 }), []);
    }));

  test('rollups: keys from outside round-trip (quotes, %, unicode) and are bounded at 255 characters', () =>
    use(async ({ store }) => {
      const hostile = ["o'brien\"%_\\@ex'ample.com", "'; DROP TABLE rollups; --", 'Grüße \u{1F600} ЖЖ \u202e', '%', '_'];
      await store.addRollups(hostile.map((key, i) => row({ series: 'refusal', key, count: i + 1 })));
      const got = await store.rollupTotals({ series: 'refusal', ...WHOLE });
      assert.deepEqual(got.rows.map((r) => r.key), [...hostile].reverse());
      assert.deepEqual((await store.rollupTimeline({ series: 'refusal', ...WHOLE, stepMinutes: 1, keys: ['%'] })).map((p) => p.count), [4], '% means itself');
      const long = `${'\u{1F600}'.repeat(254)}xyz`;
      await store.addRollups([row({ series: 'virus', key: long }), row({ series: 'virus', key: `${long}-another-tail` })]);
      const v = await store.rollupTotals({ series: 'virus', ...WHOLE });
      assert.deepEqual(v.rows, [{ key: `${'\u{1F600}'.repeat(254)}x`, count: 2, sum: 0 }], 'cut at 255 code points, never inside a pair');
      assert.deepEqual((await store.rollupTimeline({ series: 'virus', ...WHOLE, stepMinutes: 1, keys: [`${long}-yet-another`] })).map((p) => p.count), [2], 'found by a key as long as written');
    }));

  test('rollups: ties and hosts sort by key in byte order (not a language\'s collation)', () =>
    use(async ({ store }) => {
      // Byte order (UTF-8) puts digits, capitals, _ and é where no language's collation does.
      const keys = ['b', 'B', 'a', 'A', '_x', '-x', '\u00e9', 'z', '10', '9'];
      const bytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      await store.addRollups(keys.map((key) => row({ series: 'sender', key, count: 2 })));
      assert.deepEqual((await store.rollupTotals({ series: 'sender', ...WHOLE })).rows.map((r) => r.key), bytes, 'totals: a tie by key');
      assert.deepEqual((await store.rollupTotals({ series: 'sender', ...WHOLE, limit: 3 })).rows.map((r) => r.key), bytes.slice(0, 3), 'the top N of a tie');
      assert.deepEqual((await store.rollupTimeline({ series: 'sender', ...WHOLE, stepMinutes: 1 })).map((p) => p.key), bytes, 'a timeline: by key within a step');
      const hosts = ['mx-b.example.com', 'MX-A.example.com', 'mx_a.example.com', 'mx1.example.com'];
      const hostBytes = [...hosts].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      await store.addRollups(hosts.map((host, i) => row({ series: 'spool_items', host, gauge: true, sum: i })));
      assert.deepEqual(await store.rollupHosts(WHOLE.since, WHOLE.before), hostBytes);
      assert.deepEqual((await store.rollupGaugeLatest({ series: 'spool_items', ...WHOLE })).map((g) => g.host), hostBytes);
    }));

  test('rollups: a key or host with a NUL byte (from outside) is stored with ? in its place, never cut at it nor a failure of its batch', () =>
    use(async ({ store }) => {
      const key = 'evil\0virus';
      await store.addRollups([row({ series: 'virus', key, count: 1 }), row({ series: 'virus', key: 'clean', count: 1 }), row({ series: 'virus', key, count: 1, host: 'mx\0.example.com' })]);
      const got = await store.rollupTotals({ series: 'virus', ...WHOLE });
      assert.equal(got.count, 3);
      // with ? in its place, as control bytes are shown: not cut at it, never two keys shown the same
      assert.deepEqual(got.rows, [{ key: 'evil?virus', count: 2, sum: 0 }, { key: 'clean', count: 1, sum: 0 }]);
      assert.deepEqual((await store.rollupTimeline({ series: 'virus', ...WHOLE, stepMinutes: 1, keys: [key] })).map((p) => p.count), [2], 'found by the key as written');
      assert.deepEqual(await store.rollupHosts(WHOLE.since, WHOLE.before), ['mx1.example.com', 'mx?.example.com']);
      assert.equal((await store.rollupTotals({ series: 'virus', ...WHOLE, host: 'mx\0.example.com' })).count, 1, 'a host found as written');
    }));

  test('rollups: a batch leaves what its rows written one at a time leave (counters and gauges on the same key, in any order)', () =>
    use(async ({ store }) => {
      // The same rows on two hosts: in one batch on mx1, one call per row on mx2.
      const seq = (host: string): RollupRow[] => [
        row({ host, series: 'odd', key: 'k', count: 2, sum: 1, buckets: buckets([10, 2]) }),
        row({ host, series: 'odd', key: 'k', count: 1, sum: 5, gauge: true }),
        row({ host, series: 'odd', key: 'k', count: 3, sum: 2, buckets: buckets([25, 3]) }),
        row({ host, series: 'odd', key: 'k', count: 1, sum: 7, buckets: buckets([5, 1]) }),
        row({ host, series: 'odd', key: 'k', count: 1, sum: 6, gauge: true }),
        row({ host, series: 'odd', key: 'k', count: 4, sum: 1, buckets: buckets([1, 4]) }),
        row({ host, series: 'odd', key: 'j', count: 1, sum: 9, gauge: true }),
        row({ host, series: 'odd', key: 'j', count: 1, sum: 8, gauge: true }),
        row({ host, series: 'odd', key: 'i', count: 1, sum: 1, minute: at(1) }),
        row({ host, series: 'odd', key: 'i', count: 1, sum: 1, minute: at(2) }),
      ];
      // What was there before the batch, which a gauge in it replaces and counters add to.
      for (const host of ['mx1.example.com', 'mx2.example.com']) await store.addRollups([row({ host, series: 'odd', key: 'k', count: 10, sum: 10, buckets: buckets([500, 10]) })]);
      await store.addRollups(seq('mx1.example.com'));
      for (const r of seq('mx2.example.com')) await store.addRollups([r]);
      const q = { series: 'odd', ...WHOLE };
      for (const step of [1, 60, 1440]) {
        assert.deepEqual(
          await store.rollupTimeline({ ...q, stepMinutes: step, host: 'mx1.example.com' }),
          await store.rollupTimeline({ ...q, stepMinutes: step, host: 'mx2.example.com' }),
          `step ${step}`,
        );
      }
      assert.deepEqual(await store.rollupTotals({ ...q, host: 'mx1.example.com' }), await store.rollupTotals({ ...q, host: 'mx2.example.com' }));
      assert.deepEqual(await store.rollupGauge({ ...q, stepMinutes: 1, host: 'mx1.example.com' }), await store.rollupGauge({ ...q, stepMinutes: 1, host: 'mx2.example.com' }));
      // and what that is: k's gauge of 6 then a count of 4 added to it
      const k = (await store.rollupTimeline({ ...q, stepMinutes: 1, host: 'mx1.example.com', keys: ['k'] }))[0]!;
      assert.deepEqual([k.count, k.sum], [1 + 4, 6 + 1]);
    }));

  test('rollups: a big batch (a minute of many senders) goes in whole', () =>
    use(async ({ store }) => {
      const rows = Array.from({ length: 12_000 }, (_, i) => row({ series: 'sender', key: `s${i}@x.example`, count: 1 + (i % 3) }));
      await store.addRollups(rows);
      const got = await store.rollupTotals({ series: 'sender', ...WHOLE, limit: 1 });
      assert.equal(got.keys, 12_000);
      assert.equal(got.count, rows.reduce((a, r) => a + r.count, 0));
      assert.equal(got.rows[0]!.count, 3);
    }));

  test('rollups: writers at once on the same rows, each in its own order, all get through and add up', () =>
    use(async (t) => {
      const others: Store[] = [await t.another(), await t.another(), await t.another()];
      try {
        const all = [t.store, ...others];
        const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
        // Every batch touches the same minute, hour and day rows (and the same hosts), in an order of its own.
        const batch = (i: number): RollupRow[] => {
          const order = [...keys];
          for (let j = order.length - 1; j > 0; j--) {
            const r = (j * 7919 + i * 104_729) % (j + 1);
            [order[j], order[r]] = [order[r]!, order[j]!];
          }
          return order.flatMap((key, j) => [
            row({ series: 'messages', key, host: j % 2 ? 'shared-a.example.com' : 'shared-b.example.com', minute: at(j % 3), count: 1 }),
            row({ series: 'messages', key, host: j % 2 ? 'shared-b.example.com' : 'shared-a.example.com', minute: at(j % 3), count: 1 }),
          ]);
        };
        const writers = 16;
        await Promise.all(Array.from({ length: writers }, (_, i) => all[i % all.length]!.addRollups(batch(i))));
        const totals = await others[0]!.rollupTotals({ series: 'messages', ...WHOLE });
        assert.equal(totals.keys, keys.length);
        assert.equal(totals.count, writers * keys.length * 2);
        assert.ok(totals.rows.every((r) => r.count === writers * 2));
        assert.deepEqual(await t.store.rollupHosts(WHOLE.since, WHOLE.before), ['shared-a.example.com', 'shared-b.example.com']);
      } finally {
        await Promise.all(others.map((o) => o.close()));
      }
    }));

  test('rollups: hosts pruning at once, while others write, delete each old row once', () =>
    use(async (t) => {
      const others: Store[] = [await t.another(), await t.another()];
      try {
        const all = [t.store, ...others];
        const old: RollupRow[] = [];
        for (let m = -3000; m < 0; m += 5) old.push(row({ series: 'messages', key: 'accept', minute: at(m), host: `mx${m % 3 === 0 ? 1 : 2}.example.com` }));
        await t.store.addRollups(old);
        const [pruned] = await Promise.all([
          Promise.all(all.map((s) => s.pruneRollups(at(0)))),
          Promise.all(all.map((s, i) => s.addRollups([row({ series: 'messages', key: 'accept', minute: at(i), host: `mx${i}.example.com` })]))),
        ]);
        assert.equal(pruned.reduce((a, n) => a + n, 0), old.length);
        // (the day table still holds the day that began before the date: ranges from the date on are exact)
        assert.equal((await t.store.rollupTotals({ series: 'messages', since: at(0), before: WHOLE.before })).count, all.length);
      } finally {
        await Promise.all(others.map((o) => o.close()));
      }
    }));

  test('rollups: a bad row is refused with a TypeError and nothing of its batch is written', () =>
    use(async ({ store }) => {
      const good = row({ series: 'messages', key: 'accept' });
      const bad: Partial<RollupRow>[] = [
        { minute: '2026-12-02T10:00:30.000Z' },
        { minute: '2026-12-02T10:00:00.001Z' },
        { minute: 'yesterday' },
        { host: '' },
        { series: 'Messages; DROP' },
        { series: '' },
        { count: -1 },
        { count: 1.5 },
        { sum: Number.NaN },
        { sum: Infinity },
        { count: 2, buckets: buckets([10, 1]) },
        { count: 3, buckets: [1, 2, 3] },
        // cumulative counts, as Prometheus keeps them: refused, not taken for 1 + 2 + 3 events
        { count: 3, buckets: [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3] },
        { gauge: true, sum: 3, buckets: buckets([10, 1]) },
      ];
      for (const b of bad) {
        await assert.rejects(store.addRollups([good, { ...good, ...b } as RollupRow]), TypeError, JSON.stringify(b));
      }
      assert.deepEqual(await store.rollupTotals({ series: 'messages', ...WHOLE }), { rows: [], keys: 0, count: 0 });
      assert.deepEqual(await store.rollupHosts(WHOLE.since, WHOLE.before), []);
      await store.addRollups([]);
      await assert.rejects(store.rollupTimeline({ series: 'messages', ...WHOLE, stepMinutes: 0 }), TypeError);
      await assert.rejects(store.rollupTimeline({ series: 'messages', since: 'x', before: WHOLE.before, stepMinutes: 1 }), TypeError);
      await assert.rejects(store.rollupTotals({ series: 'messages', ...WHOLE, limit: 1.5 }), TypeError);
      await assert.rejects(store.pruneRollups('never'), TypeError);
    }));

  test('rollups: another connection sees them, and writers at once lose no count', () =>
    use(async (t) => {
      const other: Store = await t.another();
      try {
        const batch = (host: string): RollupRow[] => [
          row({ series: 'messages', key: 'accept', host, count: 1 }),
          row({ series: 'messages', key: 'accept', host: 'shared.example.com', count: 1 }),
        ];
        await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : t.store).addRollups(batch(`mx${i % 2}.example.com`))));
        const totals = await other.rollupTotals({ series: 'messages', ...WHOLE });
        assert.deepEqual(totals.rows, [{ key: 'accept', count: 40, sum: 0 }]);
        assert.deepEqual((await t.store.rollupTotals({ series: 'messages', ...WHOLE, host: 'shared.example.com' })).rows, [{ key: 'accept', count: 20, sum: 0 }]);
      } finally {
        await other.close();
      }
    }));

  test('rollups: a closed store refuses them with a StoreError', () =>
    use(async ({ store }) => {
      await store.close();
      await assert.rejects(store.addRollups([row({ series: 'messages', key: 'accept' })]), { name: 'StoreError' });
      await assert.rejects(store.rollupTotals({ series: 'messages', ...WHOLE }), { name: 'StoreError' });
    }));
}
