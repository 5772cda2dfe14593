// Percentiles of a latency from its bucket counts (the store's per-minute buckets added up over a range),
// the way Prometheus' histogram_quantile does it: find the bucket the rank falls in and interpolate
// linearly inside it. Only the bucket is known for sure, so an answer is never finer than its bounds.

import { LATENCY_BUCKETS_MS } from '../store/types.js';

export interface Quantile {
  /** The estimate in ms (for the last, unbounded bucket: the highest bound). */
  readonly ms: number;
  /** The rank fell above the highest bound: the latency is "more than `ms`". */
  readonly above: boolean;
}

/**
 * The q-quantile (0 < q < 1) of events counted per bucket (not cumulative: LATENCY_BUCKETS_MS.length + 1
 * counts, the last above every bound); undefined when there is no event.
 */
export function quantile(buckets: readonly number[], q: number, bounds: readonly number[] = LATENCY_BUCKETS_MS): Quantile | undefined {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total <= 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i]!;
    if (n > 0 && below + n >= rank) {
      if (i >= bounds.length) return { ms: bounds[bounds.length - 1]!, above: true };
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      return { ms: lower + ((upper - lower) * (rank - below)) / n, above: false };
    }
    below += n;
  }
  return { ms: bounds[bounds.length - 1]!, above: true };
}
