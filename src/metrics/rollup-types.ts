// The store's side of the rollups, as the rollup writer uses it.

/** One per-minute figure of one host (the store's RollupRow). */
export interface RollupRow {
  readonly minute: string;
  readonly host: string;
  readonly series: string;
  readonly key: string;
  readonly count: number;
  readonly sum: number;
  readonly buckets?: readonly number[];
  readonly gauge?: boolean;
}
