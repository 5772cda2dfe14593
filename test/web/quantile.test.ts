// Percentiles from the dashboard's latency bucket counts (per bucket, not cumulative), interpolated
// inside the bucket the rank falls in, as Prometheus' histogram_quantile does.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LATENCY_BUCKETS_MS } from '../../src/store/types.js';
import { quantile } from '../../src/web/quantile.js';

function counts(pairs: Record<number, number>): number[] {
  const b = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  for (const [bound, n] of Object.entries(pairs)) {
    const i = bound === 'Infinity' ? LATENCY_BUCKETS_MS.length : LATENCY_BUCKETS_MS.indexOf(Number(bound));
    assert.ok(i >= 0);
    b[i] = n;
  }
  return b;
}

test('quantile: inside one bucket, linear between its bounds', () => {
  assert.deepEqual(quantile(counts({ 25: 20 }), 0.5), { ms: 17.5, above: false });
  assert.deepEqual(quantile(counts({ 500: 10 }), 0.95), { ms: 487.5, above: false });
  assert.deepEqual(quantile(counts({ 1: 4 }), 0.5), { ms: 0.5, above: false }, 'the first bucket starts at 0');
});

test('quantile: across buckets, the rank finds its bucket; empty buckets are skipped', () => {
  // 90 fast runs (<= 10 ms), 10 slow ones in (1000, 2500]: p50 among the fast, p95 among the slow.
  const b = counts({ 10: 90, 2500: 10 });
  assert.deepEqual(quantile(b, 0.5), { ms: 5 + (5 * 50) / 90, above: false });
  assert.deepEqual(quantile(b, 0.95), { ms: 1000 + (1500 * 5) / 10, above: false });
  assert.deepEqual(quantile(b, 0.9), { ms: 10, above: false }, 'exactly at a bound');
});

test('quantile: above the highest bound it says so; nothing counted is no answer', () => {
  assert.deepEqual(quantile(counts({ Infinity: 3 }), 0.5), { ms: 30_000, above: true });
  assert.deepEqual(quantile(counts({ 5: 1, Infinity: 19 }), 0.95), { ms: 30_000, above: true });
  assert.equal(quantile(counts({}), 0.5), undefined);
});
