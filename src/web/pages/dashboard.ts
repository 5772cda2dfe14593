// The administrators' dashboard: what the filter did and how healthy it is, for the last hour, day, week
// or month, on one host or all of them summed — gauges first (is anything piling up?), then traffic by
// result and fate, who sends and what is refused, how long each check takes and how its backends answer.

import type { DashboardData, Gauge, GaugeName, Latency, RangeName, Top } from '../dashboard-data.js';
import { RANGES } from '../dashboard-data.js';
import { html, shown, type Html } from '../html.js';
import { area, bars, figure, latencyBars, legend, lines, ms, seconds, splitBars, stackedColumns, type TimeAxis } from './charts.js';
import { when } from './format.js';
import { page, type Viewer } from './layout.js';

const RESULTS: readonly { key: string; label: string }[] = [
  { key: 'accept', label: 'accepted' },
  { key: 'reject', label: 'refused' },
  { key: 'defer', label: 'deferred' },
  { key: 'error', label: 'error' },
  { key: 'bug', label: 'bug' },
];
const FATES: readonly { key: string; label: string }[] = [
  { key: 'deliver', label: 'delivered' },
  { key: 'quarantine', label: 'quarantined' },
  { key: 'reject', label: 'refused' },
  { key: 'drop', label: 'dropped' },
  { key: 'tempfail', label: 'deferred' },
];
/** Verdicts with a colour of their own; any other gets one of the palette's. */
const VERDICT_CLASS: Readonly<Record<string, string>> = { accept: 'k-accept', reject: 'k-reject', drop: 'k-drop', tempfail: 'k-tempfail', defer: 'k-tempfail', flagged: 'k-quarantine' };
const PALETTE = 8;

const GAUGE_TEXT: Readonly<Record<GaugeName, { title: string; unit: string; format: (v: number) => string }>> = {
  spool_items: { title: 'Retry spool', unit: 'messages waiting', format: figure },
  spool_oldest_s: { title: 'Oldest in the spool', unit: 'waiting', format: seconds },
  quarantine_items: { title: 'Quarantine', unit: 'items held', format: figure },
  in_flight: { title: 'In flight', unit: 'messages being filtered', format: figure },
};

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function hhmm(d: Date): string {
  return d.toISOString().slice(11, 16);
}

/** The time axis of a range: ticks every 10 minutes, 3 hours, day, or 3 days (UTC, like the rest of the console). */
export function timeAxis(range: RangeName, steps: readonly string[]): TimeAxis {
  const { step, stepLabel } = RANGES[range];
  const tick = (iso: string): string | undefined => {
    const d = new Date(iso);
    const minuteOfDay = d.getUTCHours() * 60 + d.getUTCMinutes();
    switch (range) {
      case 'hour':
        return d.getUTCMinutes() % 10 === 0 ? hhmm(d) : undefined;
      case 'day':
        return minuteOfDay % 180 === 0 ? hhmm(d) : undefined;
      case 'week':
        return minuteOfDay === 0 ? `${DAYS[d.getUTCDay()]} ${d.getUTCDate()}` : undefined;
      case 'month':
        return minuteOfDay === 0 && Math.floor(d.getTime() / 86_400_000) % 3 === 0 ? `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}` : undefined;
    }
  };
  return { steps, stepLabel, tick, name: (iso) => (step === 1 ? when(iso) : `${when(iso)} (${stepLabel})`) };
}

function rangeQuery(range: RangeName, host: string | undefined): string {
  const p = new URLSearchParams({ range });
  if (host !== undefined) p.set('host', host);
  return `/dashboard?${p.toString()}`;
}

function choices(d: DashboardData): Html {
  const ranges = (Object.keys(RANGES) as RangeName[]).map((r) =>
    r === d.range ? html`<a class="on" aria-current="page" href="${rangeQuery(r, d.host)}">${r}</a>` : html`<a href="${rangeQuery(r, d.host)}">${r}</a>`,
  );
  const hostLink = (h: string | undefined, label: string) =>
    h === d.host ? html`<a class="on" aria-current="page" href="${rangeQuery(d.range, h)}">${label}</a>` : html`<a href="${rangeQuery(d.range, h)}">${label}</a>`;
  const hosts = [hostLink(undefined, 'all hosts, summed'), ...d.hosts.map((h) => hostLink(h, shown(h)))];
  if (d.host !== undefined && !d.hosts.includes(d.host)) hosts.push(hostLink(d.host, shown(d.host)));
  return html`<div class="choices"><p class="choice"><span class="muted">Range</span>${ranges}</p><p class="choice"><span class="muted">Host</span>${hosts}</p></div>`;
}

function nothing(what: string): Html {
  return html`<p class="muted empty">No ${what} recorded in this range.</p>`;
}

function panel(id: string, title: string, body: Html, wide = true): Html {
  return html`<section class="panel${wide ? ' wide' : ''}" id="${id}"><h2>${title}</h2>${body}</section>`;
}

/** `03:33 UTC` for a time of the last day, the date too for an older one. */
function recently(iso: string): string {
  return Date.now() - Date.parse(iso) < 86_400_000 ? when(iso).slice(11) : when(iso);
}

function gaugeCard(name: GaugeName, g: Gauge, axis: TimeAxis): Html {
  const t = GAUGE_TEXT[name];
  const now = g.now === undefined ? html`<p class="big muted">—</p><p class="muted">nothing recorded</p>` : html`<p class="big">${t.format(g.now)}</p><p class="muted">${t.unit}${g.asOf ? `, at ${recently(g.asOf)}` : ''}</p>`;
  const recorded = g.values.filter((v): v is number => v !== undefined);
  const graph =
    recorded.length === 0
      ? html``
      : html`${area({ label: `${t.title}: the highest of each ${axis.stepLabel}`, axis, values: g.values, format: t.format, cls: 'k-gauge' })}<p class="muted">highest in the range: ${t.format(Math.max(...recorded))}</p>`;
  return html`<section class="card gauge" id="gauge-${name}"><h2>${t.title}</h2>${now}${graph}</section>`;
}

function byKey(label: string, what: string, unitPerMinute: string, axis: TimeAxis, step: number, data: ReadonlyMap<string, readonly number[]>, known: readonly { key: string; label: string }[]): Html {
  const keys = [...known.map((k) => k.key), ...[...data.keys()].filter((k) => !known.some((x) => x.key === k)).sort()];
  const series = keys
    .filter((k) => data.has(k))
    .map((k, i) => {
      const name = known.find((x) => x.key === k)?.label ?? shown(k);
      const cls = known.some((x) => x.key === k) ? `k-${k}` : `c${i % PALETTE}`;
      return { key: k, cls, label: name, values: data.get(k)!.map((v) => v / step), total: data.get(k)!.reduce((a, b) => a + b, 0) };
    });
  if (series.length === 0) return nothing(what);
  return html`${stackedColumns({ label, axis, series, unit: unitPerMinute })}${legend(series.map((s) => ({ cls: s.cls, label: s.label, value: figure(s.total) })))}`;
}

function topList(id: string, title: string, t: Top, cls: string, unit: string, what: string): Html {
  const more = t.keys > t.rows.length ? html`<p class="muted">${figure(t.count)} in all, from ${figure(t.keys)} different ones; the top ${t.rows.length} shown.</p>` : t.count > 0 ? html`<p class="muted">${figure(t.count)} in all.</p>` : '';
  const body = t.rows.length === 0 ? nothing(what) : html`${bars({ label: title, rows: t.rows.map((r) => ({ label: r.key === '<>' ? '<> (bounces)' : r.key, value: r.count })), cls, unit, width: 500 })}${more}`;
  return panel(id, title, body, false);
}

function latencySection(d: DashboardData, axis: TimeAxis): Html {
  const rows: (Latency & { label: string })[] = d.latency.map((l) => ({ ...l, label: l.key }));
  if (d.qmailQueue) rows.push({ ...d.qmailQueue, label: 'qmail-queue' });
  if (rows.length === 0) return panel('latency', 'How long each check takes', nothing('plugin runs'));
  const keys = [...d.latencySteps.keys()].sort();
  const overTime =
    keys.length === 0
      ? html``
      : html`<h3>p95 over time</h3>${lines({
          label: `p95 of each plugin, per ${axis.stepLabel}`,
          axis,
          series: keys.map((k, i) => ({ cls: `c${i % PALETTE}`, label: shown(k), values: d.latencySteps.get(k)! })),
          format: ms,
          log: { min: 1, max: 30_000 },
        })}${legend(keys.map((k, i) => ({ cls: `c${i % PALETTE}`, label: shown(k) })))}`;
  const failures = d.qmailQueueFailures > 0 ? html`<p class="bad">qmail-queue failed ${figure(d.qmailQueueFailures)} time${d.qmailQueueFailures === 1 ? '' : 's'} in this range.</p>` : '';
  return panel(
    'latency',
    'How long each check takes (p50 and p95)',
    html`${latencyBars({ label: 'p50 and p95 of each plugin, log scale', rows })}${legend([
      { cls: 'p50', label: 'p50: half the runs took less' },
      { cls: 'p95', label: 'p95: all but 1 in 20 took less' },
    ])}${failures}${overTime}`,
  );
}

function verdictSection(d: DashboardData): Html {
  if (d.verdicts.size === 0) return panel('verdicts', 'What each check said', nothing('verdicts'));
  const names = [...new Set([...d.verdicts.values()].flatMap((m) => [...m.keys()]))].sort();
  const clsOf = (v: string): string => VERDICT_CLASS[v] ?? `c${names.indexOf(v) % PALETTE}`;
  const rows = [...d.verdicts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([plugin, m]) => {
      const total = [...m.values()].reduce((a, b) => a + b, 0);
      return {
        label: plugin,
        parts: names.filter((v) => m.has(v)).map((v) => ({ cls: clsOf(v), name: shown(v), value: m.get(v)! })),
        note: `${figure(total)} verdicts`,
      };
    });
  return panel('verdicts', 'What each check said', html`${splitBars({ label: 'verdicts of each plugin', rows })}${legend(names.map((v) => ({ cls: clsOf(v), label: shown(v) })))}`);
}

function backendSection(d: DashboardData): Html {
  if (d.backends.length === 0) return panel('backends', 'Backend health', nothing('backend calls'));
  const rows = d.backends.map((b) => {
    const all = b.ok + b.failover + b.timeout + b.error;
    const problems = [b.error ? `${figure(b.error)} error${b.error === 1 ? '' : 's'}` : '', b.timeout ? `${figure(b.timeout)} timeout${b.timeout === 1 ? '' : 's'}` : '', b.failover ? `${figure(b.failover)} fail-over${b.failover === 1 ? '' : 's'}` : '']
      .filter(Boolean)
      .join(', ');
    const okPct = all === 0 ? 0 : (100 * b.ok) / all;
    const space = b.key.indexOf(' ');
    const label = space > 0 ? `${b.key.slice(0, space)} · ${b.key.slice(space + 1)}` : b.key;
    return {
      label,
      parts: [
        { cls: 'k-ok', name: 'answered', value: b.ok },
        { cls: 'k-failover', name: 'failed over', value: b.failover },
        { cls: 'k-timeout', name: 'timed out', value: b.timeout },
        { cls: 'k-error', name: 'errors', value: b.error },
      ],
      note: `${okPct === 100 ? '100' : okPct.toFixed(1)}% answered of ${figure(all)}${problems ? `; ${problems}` : ''}`,
      bad: b.error + b.timeout > 0,
    };
  });
  return panel(
    'backends',
    'Backend health',
    html`${splitBars({ label: 'calls to each backend by outcome', rows })}${legend([
      { cls: 'k-ok', label: 'answered' },
      { cls: 'k-failover', label: 'failed over to another address' },
      { cls: 'k-timeout', label: 'timed out' },
      { cls: 'k-error', label: 'error' },
    ])}`,
  );
}

export function dashboardPage(o: { viewer: Viewer; data: DashboardData }): string {
  const d = o.data;
  const { step, stepLabel } = RANGES[d.range];
  const axis = timeAxis(d.range, d.steps);
  const per = step === 1 ? 'per minute' : `per minute (average of each ${stepLabel})`;
  const where = d.host === undefined ? (d.hosts.length > 1 ? `${d.hosts.length} hosts, summed` : d.hosts.length === 1 ? shown(d.hosts[0]!) : 'every host') : shown(d.host);
  const body = html`<h1>Dashboard</h1>
${choices(d)}
<p class="muted">${where}: ${when(d.since)} to ${when(d.before)}, in steps of one ${stepLabel}.</p>
<div class="gauges">${(Object.keys(GAUGE_TEXT) as GaugeName[]).map((g) => gaugeCard(g, d.gauges[g], axis))}</div>
${panel('messages', `Messages ${per}, by result`, byKey('messages by result', 'messages', 'messages a minute', axis, step, d.messages, RESULTS))}
${panel('recipients', `Recipients ${per}, by fate`, byKey('recipients by fate', 'recipients', 'recipients a minute', axis, step, d.recipients, FATES))}
<div class="grid">
${topList('senders', 'Top senders', d.senders, 'k-sender', 'messages', 'senders')}
${topList('domains', 'Sender domains', d.domains, 'k-domain', 'messages', 'sender domains')}
${topList('viruses', 'Viruses found', d.viruses, 'k-reject', 'times', 'viruses')}
${topList('refusals', 'Refusal reasons', d.refusals, 'k-defer', 'times', 'refusals')}
</div>
${latencySection(d, axis)}
${verdictSection(d)}
${backendSection(d)}`;
  return page('Dashboard', body, o.viewer);
}
