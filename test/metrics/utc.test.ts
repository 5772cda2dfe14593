// The UTC text of times written without toISOString: the same characters for every time.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isoUtc, segmentName, utcHour } from '../../src/metrics/journal.js';
import { minuteOf } from '../../src/metrics/rollup-rows.js';

// Times around the edges that padding gets wrong: year, month, day and hour boundaries, leap days,
// single-digit fields, the epoch, four-digit years either side, and a spread of random instants.
const times = [
  0,
  1,
  999,
  Date.UTC(2026, 0, 1, 0, 0, 0, 0),
  Date.UTC(2025, 11, 31, 23, 59, 59, 999),
  Date.UTC(2024, 1, 29, 9, 5, 7, 3),
  Date.UTC(1999, 8, 9, 1, 2, 3, 40),
  Date.UTC(9999, 11, 31, 23, 59, 59, 999),
  Date.UTC(10000, 0, 1),
  Date.UTC(-1, 0, 1),
  Date.UTC(100, 0, 1) - 1,
  -1,
  ...Array.from({ length: 2000 }, () => Math.floor(Math.random() * Date.UTC(2200, 0, 1))),
];

test('isoUtc and utcHour give what toISOString gives, for every time', () => {
  for (const t of times) {
    const iso = new Date(t).toISOString();
    assert.equal(isoUtc(t), iso, String(t));
    assert.equal(utcHour(t), iso.slice(0, 13).replace(/[-T]/g, ''), String(t));
  }
  assert.throws(() => isoUtc(Number.NaN), RangeError);
});

test('journal segments and rollup minutes keep their names', () => {
  const t = Date.UTC(2026, 11, 2, 7, 4, 59, 999);
  assert.equal(segmentName(t), 'journal-2026120207');
  assert.equal(minuteOf(t), '2026-12-02T07:04:00.000Z');
  assert.equal(minuteOf(Date.UTC(2026, 0, 1)), '2026-01-01T00:00:00.000Z');
});
