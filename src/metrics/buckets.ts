// The latency bounds of every histogram: the store's LATENCY_BUCKETS_MS (milliseconds, +Inf last), so
// that the Prometheus histograms and the per-minute rollups count into the same buckets. A copy, not an
// import: the queue path loads nothing under src/store/ (test/metrics/buckets.test.ts keeps them equal).

export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]);

/** The bucket a latency falls in: the first bound it does not exceed, else the +Inf bucket. */
export function bucketOf(ms: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]!) return i;
  return LATENCY_BUCKETS_MS.length;
}
