// What every engine checks and computes the same way about rollups: a row's fields, a range's bounds,
// keys cut to length, and which parts of a range the day, hour and minute tables cover. Minutes are
// whole minutes since the epoch inside the engines; they go in and out as ISO strings.

import { LATENCY_BUCKETS_MS, type RollupRow } from './types.js';

/** How many bucket columns the tables have: fixed by the schemas, whatever the bounds become. */
export const BUCKET_COLUMNS = 15;
if (LATENCY_BUCKETS_MS.length + 1 !== BUCKET_COLUMNS) {
  // A change of the bounds needs a migration of its own (and old rows converted): refuse to start without.
  throw new Error(`LATENCY_BUCKETS_MS has ${LATENCY_BUCKETS_MS.length} bounds; the rollups table has ${BUCKET_COLUMNS - 1}`);
}
/** The bucket columns' names: b0 ... b14. */
export const B: readonly string[] = Array.from({ length: BUCKET_COLUMNS }, (_, i) => `b${i}`);

/** The tables of counters, coarsest first: a row of one covers `size` minutes from its `t`. */
export const TIERS = [
  { table: 'rollups_day', size: 1440 },
  { table: 'rollups_hour', size: 60 },
  { table: 'rollups', size: 1 },
] as const;
export type Tier = (typeof TIERS)[number];

const SERIES = /^[a-z][a-z0-9_]{0,63}$/;
/** Keys come from outside (sender addresses, virus names, refusal texts): bounded here whatever the writer did. */
export const MAX_KEY_CHARS = 255;

export function fail(what: string, value: unknown): never {
  throw new TypeError(`rollup ${what}: ${JSON.stringify(value)?.slice(0, 80) ?? String(value)}`);
}

/** An ISO minute as whole minutes since the epoch; it must be a minute exactly. */
function minuteOf(value: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) fail('minute is not a date', value);
  if (ms % 60_000 !== 0) fail('minute has seconds or milliseconds', value);
  return ms / 60_000;
}

/** A range bound as the first whole minute at or after it: minutes `m` with since <= m < before. */
export function boundOf(value: string, what: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) fail(`${what} is not a date`, value);
  return Math.ceil(ms / 60_000);
}

export function isoOf(t: number): string {
  return new Date(t * 60_000).toISOString();
}

/**
 * Text from outside as it is stored: a NUL byte as `?` (as control bytes are shown everywhere), since
 * no engine keeps it — SQLite reads a text back only up to it, PostgreSQL refuses it.
 */
export function storedText(v: string): string {
  return v.includes('\0') ? v.replaceAll('\0', '?') : v;
}

/** A key as it is stored (and looked for): NUL as `?`, at most MAX_KEY_CHARS characters. */
export function storedKey(key: string): string {
  const k = storedText(key);
  if (k.length <= MAX_KEY_CHARS) return k;
  // by code points, so that a cut never leaves half a surrogate pair
  return Array.from(k).slice(0, MAX_KEY_CHARS).join('');
}

export function checkSeries(series: unknown): string {
  if (typeof series !== 'string' || !SERIES.test(series)) fail('series is not a series name', series);
  return series;
}

export function checkStep(step: unknown): number {
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 1) fail('stepMinutes is not a whole number of minutes', step);
  return step;
}

/** A top-N limit: a whole number, or -1 (absent) for every key. */
export function checkLimit(limit: unknown): number {
  const l = limit ?? -1;
  if (typeof l !== 'number' || !Number.isInteger(l) || (l < 0 && l !== -1)) fail('limit is not a whole number', limit);
  return l;
}

/** A row checked: its minute as minutes since the epoch, its key and host as stored. */
export interface CheckedRow {
  readonly t: number;
  readonly host: string;
  readonly series: string;
  readonly key: string;
  readonly gauge: boolean;
  readonly count: number;
  readonly sum: number;
  readonly buckets: readonly number[] | undefined;
}

export function checkRow(row: RollupRow): CheckedRow {
  const t = minuteOf(row.minute);
  if (typeof row.host !== 'string' || row.host === '') fail('host is empty', row.host);
  const series = checkSeries(row.series);
  if (typeof row.key !== 'string') fail('key is not text', row.key);
  if (typeof row.count !== 'number' || !Number.isInteger(row.count) || row.count < 0) fail(`${series} count is not a whole number`, row.count);
  if (typeof row.sum !== 'number' || !Number.isFinite(row.sum)) fail(`${series} sum is not a number`, row.sum);
  const gauge = row.gauge === true;
  let buckets: readonly number[] | undefined;
  if (row.buckets !== undefined) {
    if (gauge) fail(`${series} is a gauge with buckets`, row.buckets);
    if (!Array.isArray(row.buckets) || row.buckets.length !== BUCKET_COLUMNS) fail(`${series} buckets are not ${BUCKET_COLUMNS} counts`, row.buckets);
    let total = 0;
    for (const b of row.buckets) {
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 0) fail(`${series} bucket is not a whole number`, b);
      total += b;
    }
    // Cumulative counts (Prometheus' way) would pass every other check and give wrong percentiles.
    if (total !== row.count) fail(`${series} buckets add up to ${total}, not the count ${row.count} (they are per bucket, not cumulative)`, row.buckets);
    buckets = row.buckets;
  }
  return { t, host: storedText(row.host), series, key: storedKey(row.key), gauge, count: row.count, sum: row.sum, buckets };
}

/**
 * The parts of [s, b) each tier covers: the whole days from the day table, the whole hours left from the
 * hour table, the rest minute by minute. Only tiers whose size divides `step` may be used for steps (a
 * day's row cannot be split into 6-hour steps).
 */
export function segments(s: number, b: number, tiers: readonly Tier[]): { table: Tier['table']; from: number; to: number }[] {
  if (s >= b || tiers.length === 0) return [];
  const [tier, ...rest] = tiers as [Tier, ...Tier[]];
  if (tier.size === 1) return [{ table: tier.table, from: s, to: b }];
  const from = Math.ceil(s / tier.size) * tier.size;
  const to = Math.floor(b / tier.size) * tier.size;
  if (from >= to) return segments(s, b, rest);
  return [...segments(s, from, rest), { table: tier.table, from, to }, ...segments(to, b, rest)];
}

/** The tiers a query in steps of `step` minutes may read (every tier for totals: no step). */
export function tiersFor(step: number | undefined): readonly Tier[] {
  return TIERS.filter((t) => step === undefined || step % t.size === 0);
}
