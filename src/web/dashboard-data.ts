// What the dashboard shows, read from the store's rollups for one range (the last hour, day, week or
// month, in steps that make 60 to 170 columns) and one host or all of them summed. Only figures: the
// page (pages/dashboard.ts) draws them.

import type { RollupPoint, RollupTotal, Store } from '../store/types.js';
import { quantile } from './quantile.js';

export const RANGES = {
  hour: { minutes: 60, step: 1, stepLabel: 'minute' },
  day: { minutes: 1440, step: 15, stepLabel: '15 minutes' },
  week: { minutes: 7 * 1440, step: 60, stepLabel: 'hour' },
  month: { minutes: 30 * 1440, step: 360, stepLabel: '6 hours' },
} as const;
export type RangeName = keyof typeof RANGES;

export const GAUGES = ['spool_items', 'spool_oldest_s', 'quarantine_items', 'in_flight'] as const;
export type GaugeName = (typeof GAUGES)[number];
const BACKEND_SERIES = { ok: 'backend_ok', failover: 'backend_failover', timeout: 'backend_timeout', error: 'backend_error' } as const;
/** How many keys the lists of senders, domains, viruses and refusals show. */
export const TOP = 10;

export interface Top {
  readonly rows: readonly { readonly key: string; readonly count: number }[];
  /** Keys in the range, all told (more than shown when there are more than TOP). */
  readonly keys: number;
  readonly count: number;
}

export interface Latency {
  readonly key: string;
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly above95: boolean;
}

export interface Backend {
  readonly key: string;
  readonly ok: number;
  readonly failover: number;
  readonly timeout: number;
  readonly error: number;
}

export interface Gauge {
  /** The highest value of each step (hosts summed minute by minute); undefined where nothing was recorded. */
  readonly values: readonly (number | undefined)[];
  /** Each host's latest value, added up; undefined when none was recorded in the range. */
  readonly now?: number;
  /** The oldest of those hosts' latest minutes. */
  readonly asOf?: string;
}

export interface DashboardData {
  readonly range: RangeName;
  /** Absent: every host, summed. */
  readonly host?: string;
  readonly hosts: readonly string[];
  readonly since: string;
  readonly before: string;
  /** The first minute of every step, oldest first. */
  readonly steps: readonly string[];
  /** Per key, one count per step. */
  readonly messages: ReadonlyMap<string, readonly number[]>;
  readonly recipients: ReadonlyMap<string, readonly number[]>;
  readonly senders: Top;
  readonly domains: Top;
  readonly viruses: Top;
  readonly refusals: Top;
  /** Per plugin, slowest p95 first; qmail-queue's own is `qmailQueue`. */
  readonly latency: readonly Latency[];
  /** p95 per plugin per step (undefined: no run in that step). */
  readonly latencySteps: ReadonlyMap<string, readonly (number | undefined)[]>;
  readonly qmailQueue?: Latency;
  readonly qmailQueueFailures: number;
  /** Per plugin: its verdicts and their counts. */
  readonly verdicts: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Per `plugin address`, the worst first. */
  readonly backends: readonly Backend[];
  readonly gauges: Readonly<Record<GaugeName, Gauge>>;
}

function latencyOf(t: { key: string; count: number; buckets?: readonly number[] }): Latency | undefined {
  if (!t.buckets) return undefined;
  const p50 = quantile(t.buckets, 0.5);
  const p95 = quantile(t.buckets, 0.95);
  if (!p50 || !p95) return undefined;
  return { key: t.key, count: t.count, p50: p50.ms, p95: p95.ms, above95: p95.above };
}

function top(t: { rows: readonly RollupTotal[]; keys: number; count: number }): Top {
  return { rows: t.rows.map((x) => ({ key: x.key, count: x.count })), keys: t.keys, count: t.count };
}

export async function dashboardData(store: Store, o: { range: RangeName; host?: string; now?: Date }): Promise<DashboardData> {
  const { minutes, step } = RANGES[o.range];
  const nowMin = Math.floor((o.now ?? new Date()).getTime() / 60_000);
  // The current step is the last one (still filling); steps are aligned as the store aligns them.
  const endMin = nowMin - (nowMin % step) + step;
  const startMin = endMin - minutes;
  const since = new Date(startMin * 60_000).toISOString();
  const before = new Date(endMin * 60_000).toISOString();
  const n = minutes / step;
  const steps = Array.from({ length: n }, (_, i) => new Date((startMin + i * step) * 60_000).toISOString());
  const indexOf = (iso: string): number => Math.round((Date.parse(iso) / 60_000 - startMin) / step);
  const q = { since, before, ...(o.host === undefined ? {} : { host: o.host }) };

  const perStep = (points: readonly RollupPoint[]): Map<string, number[]> => {
    const out = new Map<string, number[]>();
    for (const p of points) {
      const i = indexOf(p.minute);
      if (i < 0 || i >= n) continue;
      let v = out.get(p.key);
      if (!v) out.set(p.key, (v = new Array<number>(n).fill(0)));
      v[i]! += p.count;
    }
    return out;
  };

  const [hosts, messages, recipients, senders, domains, viruses, refusals, plugins, pluginSteps, qq, qqFail, verdicts] = await Promise.all([
    store.rollupHosts(since, before),
    store.rollupTimeline({ series: 'messages', ...q, stepMinutes: step }),
    store.rollupTimeline({ series: 'recipients', ...q, stepMinutes: step }),
    store.rollupTotals({ series: 'sender', ...q, limit: TOP }),
    store.rollupTotals({ series: 'sender_domain', ...q, limit: TOP }),
    store.rollupTotals({ series: 'virus', ...q, limit: TOP }),
    store.rollupTotals({ series: 'refusal', ...q, limit: TOP }),
    store.rollupTotals({ series: 'plugin_ms', ...q }),
    store.rollupTimeline({ series: 'plugin_ms', ...q, stepMinutes: step }),
    store.rollupTotals({ series: 'qmail_queue_ms', ...q }),
    store.rollupTotals({ series: 'qmail_queue_failure', ...q }),
    store.rollupTotals({ series: 'plugin_verdict', ...q }),
  ]);

  const latency = plugins.rows
    .map(latencyOf)
    .filter((l): l is Latency => l !== undefined)
    .sort((a, b) => b.p95 - a.p95 || a.key.localeCompare(b.key));
  const latencySteps = new Map<string, (number | undefined)[]>();
  for (const p of pluginSteps) {
    const i = indexOf(p.minute);
    if (i < 0 || i >= n || !p.buckets) continue;
    let v = latencySteps.get(p.key);
    if (!v) latencySteps.set(p.key, (v = new Array<number | undefined>(n).fill(undefined)));
    v[i] = quantile(p.buckets, 0.95)?.ms;
  }

  const verdictMap = new Map<string, Map<string, number>>();
  for (const row of verdicts.rows) {
    const at = row.key.lastIndexOf(':');
    const plugin = at > 0 ? row.key.slice(0, at) : row.key;
    const verdict = at > 0 ? row.key.slice(at + 1) : '';
    let m = verdictMap.get(plugin);
    if (!m) verdictMap.set(plugin, (m = new Map()));
    m.set(verdict, (m.get(verdict) ?? 0) + row.count);
  }

  const backendTotals = await Promise.all(Object.entries(BACKEND_SERIES).map(async ([what, series]) => [what, await store.rollupTotals({ series, ...q })] as const));
  const backendMap = new Map<string, { ok: number; failover: number; timeout: number; error: number }>();
  for (const [what, totals] of backendTotals) {
    for (const row of totals.rows) {
      let b = backendMap.get(row.key);
      if (!b) backendMap.set(row.key, (b = { ok: 0, failover: 0, timeout: 0, error: 0 }));
      b[what as keyof typeof BACKEND_SERIES] += row.count;
    }
  }
  const badness = (b: { ok: number; failover: number; timeout: number; error: number }): number => {
    const all = b.ok + b.failover + b.timeout + b.error;
    return all === 0 ? 0 : (b.error + b.timeout + b.failover) / all;
  };
  const backends = [...backendMap]
    .map(([key, b]) => ({ key, ...b }))
    .sort((a, b) => badness(b) - badness(a) || a.key.localeCompare(b.key));

  const gaugeEntries = await Promise.all(
    GAUGES.map(async (series) => {
      const [points, latest] = await Promise.all([store.rollupGauge({ series, ...q, stepMinutes: step }), store.rollupGaugeLatest({ series, ...q })]);
      const values = new Array<number | undefined>(n).fill(undefined);
      for (const p of points) {
        const i = indexOf(p.minute);
        if (i >= 0 && i < n) values[i] = p.max;
      }
      const gauge: Gauge =
        latest.length === 0
          ? { values }
          : { values, now: latest.reduce((a, l) => a + l.value, 0), asOf: latest.map((l) => l.minute).sort()[0]! };
      return [series, gauge] as const;
    }),
  );

  const qmailQueue = qq.rows.map(latencyOf).find((l) => l !== undefined);
  return {
    range: o.range,
    ...(o.host === undefined ? {} : { host: o.host }),
    hosts,
    since,
    before,
    steps,
    messages: perStep(messages),
    recipients: perStep(recipients),
    senders: top(senders),
    domains: top(domains),
    viruses: top(viruses),
    refusals: top(refusals),
    latency,
    latencySteps,
    ...(qmailQueue ? { qmailQueue } : {}),
    qmailQueueFailures: qqFail.count,
    verdicts: verdictMap,
    backends,
    gauges: Object.fromEntries(gaugeEntries) as Record<GaugeName, Gauge>,
  };
}
