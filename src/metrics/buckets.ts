// The latency bounds of every histogram (milliseconds, +Inf implied last): the store's, so that the
// Prometheus histograms and the per-minute rollups count into the same buckets.

export const LATENCY_BUCKETS_MS: readonly number[] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

/** The bucket a latency falls in: the first bound it does not exceed, else the +Inf bucket. */
export function bucketOf(ms: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]!) return i;
  return LATENCY_BUCKETS_MS.length;
}
