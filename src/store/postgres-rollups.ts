// Rollups in the PostgreSQL store: the same tables and the same answers as the SQLite engine
// (src/store/sqlite-rollups.ts) — a row per minute, host, series and key, counters also added into an
// hour and a day table so that a range reads its whole days and hours from those and only its edges
// minute by minute; gauges per minute only. Every host of a site writes here at the same moment, so a
// batch is one transaction of a few multi-row INSERT ... ON CONFLICT DO UPDATE statements (arrays as
// parameters: one round trip per table, whatever the size of the batch): the database adds concurrent
// counts up itself. Rows are written in one fixed order (table by table, sorted by their key), so two
// writers on the same rows wait for each other instead of deadlocking. Text columns are COLLATE "C":
// keys compare and sort byte by byte, as on every engine.

import {
  B,
  boundOf,
  checkLimit,
  checkRow,
  checkSeries,
  checkStep,
  isoOf,
  segments,
  storedKey,
  storedText,
  tiersFor,
  TIERS,
  type CheckedRow,
  type Tier,
} from './rollup-rows.js';
import type { GaugePoint, RollupPoint, RollupQuery, RollupRow, RollupTotal } from './types.js';

type Row = Record<string, unknown>;
type Value = string | number | boolean | null | readonly (string | number | boolean)[];
/** One statement (inside the caller's transaction, or on the pool). */
export type Sql = (sql: string, values?: readonly Value[]) => Promise<Row[]>;

/** What the rollup functions need of the store: a statement on the pool, and a transaction. */
export interface PgAccess {
  read(doing: string, sql: string, values: readonly Value[]): Promise<Row[]>;
  write<T>(doing: string, work: (q: Sql) => Promise<T>): Promise<T>;
}

function table(name: string): string {
  return `CREATE TABLE ${name} (
     t BIGINT NOT NULL,
     host TEXT COLLATE "C" NOT NULL,
     series TEXT COLLATE "C" NOT NULL,
     key TEXT COLLATE "C" NOT NULL,
     gauge BOOLEAN NOT NULL,
     count BIGINT NOT NULL,
     sum DOUBLE PRECISION NOT NULL,
     has_buckets BOOLEAN NOT NULL,
     ${B.map((b) => `${b} BIGINT NOT NULL`).join(', ')},
     PRIMARY KEY (series, t, host, key)
   );
   CREATE INDEX ${name}_t ON ${name} (t);`;
}

/** The schema of rollups, part of the store's migrations (never edit it once shipped). */
export const ROLLUPS_SCHEMA = `${TIERS.map((t) => table(t.table)).join('\n   ')}
   -- gauges are per minute only: the coarse parts of a range find them here without a scan of counters
   CREATE INDEX rollups_gauges ON rollups (series, t) WHERE gauge;
   -- which hosts have rows, and from when to when: the dashboard's host choice without a scan of rollups
   CREATE TABLE rollup_hosts (host TEXT COLLATE "C" PRIMARY KEY, first_t BIGINT NOT NULL, last_t BIGINT NOT NULL);`;

/** The start of the `size`-minute step holding minute `t` (a multiple of `size` since the epoch, at or before `t`). */
function stepOf(t: number, size: number): number {
  return t - (((t % size) + size) % size);
}

/** The same, in SQL, for a BIGINT column and a parameter. */
function stepSql(column: string, size: string): string {
  return `(${column} - ((${column} % ${size}) + ${size}) % ${size})`;
}

// ---- Writing ---------------------------------------------------------------------------------------

/** One row to upsert: the rows of a batch with the same key added up (or the last gauge). */
interface Merged {
  readonly t: number;
  readonly host: string;
  readonly series: string;
  readonly key: string;
  gauge: boolean;
  count: number;
  sum: number;
  hasBuckets: boolean;
  buckets: number[];
}

const ZERO: readonly number[] = Object.freeze(new Array<number>(B.length).fill(0));

function byKey(a: Merged, b: Merged): number {
  if (a.series !== b.series) return a.series < b.series ? -1 : 1;
  if (a.t !== b.t) return a.t - b.t;
  if (a.host !== b.host) return a.host < b.host ? -1 : 1;
  return a.key === b.key ? 0 : a.key < b.key ? -1 : 1;
}

/**
 * The rows of one table as rounds of statements, each with at most one row per key (a multi-row
 * INSERT ... ON CONFLICT cannot touch a row twice). Rows with the same key are merged in the order
 * given, as one statement per row would leave them: counters add, a gauge replaces what came before.
 * A counter after a gauge adds to the gauge's value and the database's row would not be replaced any
 * more, which one merged row cannot say: it goes in the next round (never in practice: a series is a
 * counter or a gauge).
 */
function rounds(rows: readonly CheckedRow[], tier: Tier): Merged[][] {
  const out: Map<string, Merged>[] = [];
  const round = new Map<string, number>();
  for (const r of rows) {
    if (r.gauge && tier.size !== 1) continue;
    const t = stepOf(r.t, tier.size);
    const id = `${r.series}\0${t}\0${r.host}\0${r.key}`;
    let i = round.get(id);
    const cur = i === undefined ? undefined : out[i]!.get(id);
    const buckets = r.buckets ?? ZERO;
    if (cur && r.gauge) {
      cur.gauge = true;
      cur.count = r.count;
      cur.sum = r.sum;
      cur.buckets = [...buckets];
      cur.hasBuckets ||= r.buckets !== undefined;
      continue;
    }
    if (cur && !cur.gauge) {
      cur.count += r.count;
      cur.sum += r.sum;
      cur.hasBuckets ||= r.buckets !== undefined;
      buckets.forEach((b, j) => (cur.buckets[j]! += b));
      continue;
    }
    i = i === undefined ? 0 : i + 1;
    round.set(id, i);
    (out[i] ??= new Map()).set(id, { t, host: r.host, series: r.series, key: r.key, gauge: r.gauge, count: r.count, sum: r.sum, hasBuckets: r.buckets !== undefined, buckets: [...buckets] });
  }
  return out.map((m) => [...m.values()].sort(byKey));
}

function upsert(name: string): string {
  const types = ['bigint', 'text', 'text', 'text', 'boolean', 'bigint', 'float8', 'boolean', ...B.map(() => 'bigint')];
  const cols = ['t', 'host', 'series', 'key', 'gauge', 'count', 'sum', 'has_buckets', ...B];
  // WITH ORDINALITY ... ORDER BY: the rows are taken, and locked, in the order given (sorted).
  return `INSERT INTO ${name} AS r (${cols.join(', ')})
  SELECT ${cols.join(', ')} FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) WITH ORDINALITY AS u(${cols.join(', ')}, n) ORDER BY n
  ON CONFLICT (series, t, host, key) DO UPDATE SET
    gauge = excluded.gauge,
    count = CASE WHEN excluded.gauge THEN excluded.count ELSE r.count + excluded.count END,
    sum = CASE WHEN excluded.gauge THEN excluded.sum ELSE r.sum + excluded.sum END,
    has_buckets = r.has_buckets OR excluded.has_buckets,
    ${B.map((b) => `${b} = CASE WHEN excluded.gauge THEN excluded.${b} ELSE r.${b} + excluded.${b} END`).join(',\n    ')}`;
}
const UPSERT = Object.fromEntries(TIERS.map((t) => [t.table, upsert(t.table)])) as Record<Tier['table'], string>;

function upsertValues(rows: readonly Merged[]): Value[] {
  return [
    rows.map((r) => r.t),
    rows.map((r) => r.host),
    rows.map((r) => r.series),
    rows.map((r) => r.key),
    rows.map((r) => r.gauge),
    rows.map((r) => r.count),
    rows.map((r) => r.sum),
    rows.map((r) => r.hasBuckets),
    ...B.map((_, j) => rows.map((r) => r.buckets[j]!)),
  ];
}

const HOSTS = `INSERT INTO rollup_hosts AS h (host, first_t, last_t)
  SELECT host, first_t, last_t FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS u(host, first_t, last_t, n) ORDER BY n
  ON CONFLICT (host) DO UPDATE SET first_t = LEAST(h.first_t, excluded.first_t), last_t = GREATEST(h.last_t, excluded.last_t)`;

export async function addRollups(db: PgAccess, rows: readonly RollupRow[]): Promise<void> {
  if (rows.length === 0) return;
  const checked = rows.map(checkRow);
  const hosts = new Map<string, { first: number; last: number }>();
  for (const r of checked) {
    const h = hosts.get(r.host);
    if (!h) hosts.set(r.host, { first: r.t, last: r.t });
    else {
      h.first = Math.min(h.first, r.t);
      h.last = Math.max(h.last, r.t);
    }
  }
  // The minute table first, then the hour's and the day's, then the hosts: the same order on every writer.
  const statements: { sql: string; values: Value[] }[] = [];
  for (const tier of [...TIERS].reverse()) {
    for (const round of rounds(checked, tier)) statements.push({ sql: UPSERT[tier.table], values: upsertValues(round) });
  }
  const names = [...hosts.keys()].sort();
  statements.push({ sql: HOSTS, values: [names, names.map((n) => hosts.get(n)!.first), names.map((n) => hosts.get(n)!.last)] });
  await db.write(`adding ${rows.length} rollup rows`, async (q) => {
    for (const s of statements) await q(s.sql, s.values);
  });
}

// ---- Reading ---------------------------------------------------------------------------------------

/** Parameters numbered as they are added, for the statement being built. */
class Args {
  readonly values: Value[] = [];
  add(v: Value): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

const COLUMNS = `t, key, count, sum, has_buckets, ${B.join(', ')}`;
const SUM_B = B.map((b) => `SUM(${b}) AS ${b}`).join(', ');

/**
 * The counter rows of a query as one table (`FROM (...)`): the parts of the range each table covers;
 * `keys`, when given, limits every part to those keys.
 */
function counterRows(a: Args, q: RollupQuery, step: number | undefined, keys?: readonly string[]): string {
  const series = checkSeries(q.series);
  const since = boundOf(q.since, 'since');
  const before = boundOf(q.before, 'before');
  const parts = segments(since, before, tiersFor(step));
  if (parts.length === 0) return `SELECT ${COLUMNS} FROM rollups WHERE false`;
  let common = `series = ${a.add(series)}`;
  if (q.host !== undefined) common += ` AND host = ${a.add(storedText(String(q.host)))}`;
  if (keys !== undefined) common += ` AND key = ANY(${a.add(keys)}::text[])`;
  const part = (name: string, from: number, to: number, more = ''): string => `SELECT ${COLUMNS} FROM ${name} WHERE ${common} AND t >= ${a.add(from)} AND t < ${a.add(to)}${more}`;
  // A gauge series asked for as counters (its minutes added up) has no coarse rows: its minutes come
  // from the minute table for the coarse parts too.
  return parts
    .flatMap((p) => (p.table === 'rollups' ? [part(p.table, p.from, p.to)] : [part(p.table, p.from, p.to), part('rollups', p.from, p.to, ' AND gauge')]))
    .join(' UNION ALL ');
}

/** The WHERE of a query on the minute table (gauges). */
function minuteWhere(a: Args, q: RollupQuery): string {
  const series = checkSeries(q.series);
  const since = boundOf(q.since, 'since');
  const before = boundOf(q.before, 'before');
  let w = `series = ${a.add(series)} AND t >= ${a.add(since)} AND t < ${a.add(before)}`;
  if (q.host !== undefined) w += ` AND host = ${a.add(storedText(String(q.host)))}`;
  return w;
}

/** BIGINT and NUMERIC (what SUM gives) come back from pg as strings. */
function bucketsOf(r: Row): { buckets?: readonly number[] } {
  return r.has_buckets === true ? { buckets: B.map((b) => Number(r[b])) } : {};
}

export async function rollupTimeline(db: PgAccess, q: RollupQuery & { readonly stepMinutes: number; readonly keys?: readonly string[] }): Promise<RollupPoint[]> {
  const step = checkStep(q.stepMinutes);
  const keys = q.keys?.map((k) => storedKey(String(k)));
  if (keys !== undefined && keys.length === 0) return [];
  const a = new Args();
  const s = a.add(step);
  const rows = counterRows(a, q, step, keys);
  const found = await db.read(
    `reading the ${q.series} rollups`,
    `SELECT ${stepSql('t', `${s}::bigint`)} AS s, key, SUM(count) AS count, SUM(sum) AS sum, bool_or(has_buckets) AS has_buckets, ${SUM_B}
     FROM (${rows}) p GROUP BY 1, key ORDER BY 1, key COLLATE "C"`,
    a.values,
  );
  return found.map((r) => ({ minute: isoOf(Number(r.s)), key: String(r.key), count: Number(r.count), sum: Number(r.sum), ...bucketsOf(r) }));
}

export async function rollupTotals(
  db: PgAccess,
  q: RollupQuery & { readonly limit?: number },
): Promise<{ readonly rows: readonly RollupTotal[]; readonly keys: number; readonly count: number }> {
  const limit = checkLimit(q.limit);
  const a = new Args();
  const rows = counterRows(a, q, undefined);
  // The number of keys and the count of all in the same statement, on a row of their own (so that they
  // come back with a limit of 0 too); only the top keys leave the database.
  const found = await db.read(
    `adding up the ${q.series} rollups`,
    `WITH k AS (SELECT key, SUM(count) AS count, SUM(sum) AS sum, bool_or(has_buckets) AS has_buckets, ${SUM_B} FROM (${rows}) p GROUP BY key)
     SELECT a.all_keys, a.all_count, top.* FROM (SELECT COUNT(*) AS all_keys, COALESCE(SUM(count), 0) AS all_count FROM k) a
     LEFT JOIN LATERAL (SELECT * FROM k ORDER BY count DESC, key COLLATE "C" LIMIT ${a.add(limit === -1 ? null : limit)}) top ON true
     ORDER BY top.count DESC, top.key COLLATE "C"`,
    a.values,
  );
  const first = found[0];
  return {
    rows: found.filter((r) => r.key !== null).map((r) => ({ key: String(r.key), count: Number(r.count), sum: Number(r.sum), ...bucketsOf(r) })),
    keys: Number(first?.all_keys ?? 0),
    count: Number(first?.all_count ?? 0),
  };
}

export async function rollupGauge(db: PgAccess, q: RollupQuery & { readonly stepMinutes: number }): Promise<GaugePoint[]> {
  const step = checkStep(q.stepMinutes);
  const a = new Args();
  const s = a.add(step);
  const w = minuteWhere(a, q);
  // Hosts are added minute by minute first: summed over hosts, the highest minute of the step.
  const found = await db.read(
    `reading the ${q.series} gauge`,
    `SELECT s, MAX(v) AS max FROM (
       SELECT ${stepSql('t', `${s}::bigint`)} AS s, SUM(sum) AS v FROM rollups WHERE ${w} AND key = '' GROUP BY t
     ) g GROUP BY s ORDER BY s`,
    a.values,
  );
  return found.map((r) => ({ minute: isoOf(Number(r.s)), max: Number(r.max) }));
}

export async function rollupGaugeLatest(db: PgAccess, q: RollupQuery): Promise<{ readonly host: string; readonly minute: string; readonly value: number }[]> {
  const a = new Args();
  const w = minuteWhere(a, q);
  // host is COLLATE "C" in the table: DISTINCT ON and the order go by its bytes.
  const found = await db.read(
    `reading the latest ${q.series}`,
    `SELECT DISTINCT ON (host) host, t, sum AS value FROM rollups WHERE ${w} AND key = '' ORDER BY host, t DESC`,
    a.values,
  );
  return found.map((r) => ({ host: String(r.host), minute: isoOf(Number(r.t)), value: Number(r.value) }));
}

export async function rollupHosts(db: PgAccess, since: string, before: string): Promise<string[]> {
  const s = boundOf(since, 'since');
  const b = boundOf(before, 'before');
  const found = await db.read('listing the hosts with rollups', 'SELECT host FROM rollup_hosts WHERE last_t >= $1 AND first_t < $2 ORDER BY host COLLATE "C"', [s, b]);
  return found.map((r) => String(r.host));
}

export async function pruneRollups(db: PgAccess, before: string): Promise<number> {
  const b = boundOf(before, 'before');
  return db.write('pruning old rollups', async (q) => {
    // Every host prunes: one at a time (the others then find nothing left), never two deadlocked on the same rows.
    await q('SELECT pg_advisory_xact_lock(hashtext($1))', ['nqqueue prune rollups']);
    const [gone] = await q('WITH gone AS (DELETE FROM rollups WHERE t < $1 RETURNING 1) SELECT COUNT(*) AS n FROM gone', [b]);
    // An hour's or a day's row goes once all of it is before the date.
    // (t <= b - size rather than t + size <= b: the index on t serves it.)
    for (const tier of TIERS) if (tier.size > 1) await q(`DELETE FROM ${tier.table} WHERE t <= $1`, [b - tier.size]);
    // The hosts' rows locked in the order writers lock them (by name), before they are changed.
    await q('SELECT host FROM rollup_hosts WHERE first_t < $1 ORDER BY host FOR UPDATE', [b]);
    await q('DELETE FROM rollup_hosts WHERE last_t < $1', [b]);
    // A host's first minute moves up with what is left of it.
    await q('UPDATE rollup_hosts SET first_t = $1 WHERE first_t < $1', [b]);
    return Number(gone!.n);
  });
}
