// A small Prometheus registry and its text exposition format (version 0.0.4): counters, gauges and
// histograms with fixed label names. Written here rather than taken from prom-client: the daemon's
// counts come from the same journal records the rollups read, so what is needed is "add this record"
// on plain maps, not a client library's collectors; the format for these three types is a page of code,
// and the queue path loads none of it.

import { LATENCY_BUCKETS_MS } from './buckets.js';

type Kind = 'counter' | 'gauge' | 'histogram';

interface Hist {
  readonly buckets: number[];
  sum: number;
  count: number;
}

/** At most this many series per family: label values come from configuration and backends, but a bound is kept. */
export const SERIES_MAX = 1000;

class Family {
  readonly series = new Map<string, { labels: readonly string[]; value: number; hist?: Hist }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: Kind,
    readonly labels: readonly string[],
  ) {
    // A family without labels shows 0 from the start: a counter that is absent and one that is 0 are
    // not the same thing to an alert rule.
    if (labels.length === 0) this.entry([]);
  }

  private entry(values: readonly string[]) {
    const key = values.join('\0');
    let e = this.series.get(key);
    if (!e) {
      if (this.series.size >= SERIES_MAX) return undefined;
      e = { labels: values, value: 0, hist: this.kind === 'histogram' ? { buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), sum: 0, count: 0 } : undefined };
      this.series.set(key, e);
    }
    return e;
  }

  add(values: readonly string[], n: number): void {
    const e = this.entry(values);
    if (e) e.value += n;
  }

  set(values: readonly string[], v: number): void {
    const e = this.entry(values);
    if (e) e.value = v;
  }

  /** Histogram: `buckets` counts per LATENCY_BUCKETS_MS bound (not cumulative), `sumMs` their total. */
  observe(values: readonly string[], buckets: readonly number[], sumMs: number): void {
    const h = this.entry(values)?.hist;
    if (!h) return;
    for (let i = 0; i < h.buckets.length; i++) h.buckets[i]! += buckets[i] ?? 0;
    h.sum += sumMs / 1000;
    h.count += buckets.reduce((a, b) => a + b, 0);
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Registry {
  private readonly families = new Map<string, Family>();
  /** Called before each exposition: gauges read at scrape time. */
  private readonly collectors: (() => void | Promise<void>)[] = [];

  private family(name: string, help: string, kind: Kind, labels: readonly string[]): Family {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = new Family(name, help, kind, labels)));
    return f;
  }

  counter(name: string, help: string, labels: readonly string[] = []) {
    const f = this.family(name, help, 'counter', labels);
    // `set`: a total kept elsewhere (the process's CPU time), shown as a counter.
    return { inc: (values: readonly string[] = [], n = 1) => f.add(values, n), set: (values: readonly string[], v: number) => f.set(values, v) };
  }

  gauge(name: string, help: string, labels: readonly string[] = []) {
    const f = this.family(name, help, 'gauge', labels);
    return { set: (values: readonly string[], v: number) => f.set(values, v) };
  }

  histogram(name: string, help: string, labels: readonly string[] = []) {
    const f = this.family(name, help, 'histogram', labels);
    return { observe: (values: readonly string[], buckets: readonly number[], sumMs: number) => f.observe(values, buckets, sumMs) };
  }

  collect(fn: () => void | Promise<void>): void {
    this.collectors.push(fn);
  }

  async exposition(): Promise<string> {
    for (const c of this.collectors) await c();
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`);
      for (const s of f.series.values()) {
        if (f.kind !== 'histogram') {
          out.push(`${f.name}${labelText(f.labels, s.labels)} ${num(s.value)}`);
          continue;
        }
        const h = s.hist!;
        let cumulative = 0;
        for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
          cumulative += h.buckets[i]!;
          out.push(`${f.name}_bucket${labelText(f.labels, s.labels, `le="${LATENCY_BUCKETS_MS[i]! / 1000}"`)} ${cumulative}`);
        }
        cumulative += h.buckets[LATENCY_BUCKETS_MS.length]!;
        out.push(`${f.name}_bucket${labelText(f.labels, s.labels, 'le="+Inf"')} ${cumulative}`);
        out.push(`${f.name}_sum${labelText(f.labels, s.labels)} ${num(h.sum)}`);
        out.push(`${f.name}_count${labelText(f.labels, s.labels)} ${h.count}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}
