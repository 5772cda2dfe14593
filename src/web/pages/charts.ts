// The dashboard's graphs, drawn on the server as inline SVG: nothing is fetched and nothing runs (the
// console's policy allows neither), and they read the same with the stylesheet's light and dark colours
// (every colour is a class of /style.css, never an attribute). Each mark carries a <title>: hovering it
// shows the exact figure. Labels that come from outside (addresses, virus names, refusal texts) go
// through `html`, so they are escaped like everything else on a page.

import { html, shown, type Html } from '../html.js';

/** The drawing width of every graph (the viewBox); the stylesheet scales it to the page. */
const W = 1000;

export interface StackSeries {
  readonly key: string;
  /** The colour class (`k-accept`, `c3`...). */
  readonly cls: string;
  readonly label: string;
  /** One value per step. */
  readonly values: readonly number[];
}

/** 1, 2, 5 times a power of ten, at least `v` (and at least 1). */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v - 1e-9) return m * p;
  return 10 * p;
}

/** A figure for a label: 1234 → '1,234', 0.25 → '0.25', 1.5e6 → '1.5M'. */
export function figure(v: number): string {
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return trim(v, 1);
  return trim(v, 2);
}

/** `digits` decimals at most, without trailing zeros: 2.50 → '2.5', 10.0 → '10'. */
function trim(v: number, digits = 1): string {
  const t = v.toFixed(digits);
  return t.includes('.') ? t.replace(/\.?0+$/, '') : t;
}

/** A latency for a label: '0.4 ms', '12 ms', '1.3 s'. */
export function ms(v: number): string {
  if (v >= 1000) return `${trim(v / 1000, v >= 10_000 ? 0 : 1)} s`;
  if (v >= 10) return `${Math.round(v)} ms`;
  return `${trim(v, 1)} ms`;
}

/** A duration in seconds for a label: '45 s', '12 min', '3.5 h', '2 d'. */
export function seconds(v: number): string {
  if (v < 90) return `${Math.round(v)} s`;
  if (v < 5400) return `${Math.round(v / 60)} min`;
  if (v < 172_800) return `${trim(v / 3600)} h`;
  return `${trim(v / 86_400)} d`;
}

/** Cut to `n` characters (by code point) with an ellipsis: the whole text stays in the <title>. */
function cut(s: string, n: number): string {
  const cps = Array.from(s);
  return cps.length <= n ? s : `${cps.slice(0, n - 1).join('')}…`;
}

function r(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

function svg(height: number, label: string, body: Html | Html[], cls = 'chart', width = W): Html {
  return html`<svg class="${cls}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${label}"><title>${label}</title>${body}</svg>`;
}

/** The swatches under a graph: each series' colour, name and total. */
export function legend(items: readonly { cls: string; label: string; value?: string }[]): Html {
  return html`<ul class="legend">${items.map((i) => html`<li><span class="swatch ${i.cls}"></span>${i.label}${i.value === undefined ? '' : html` <b>${i.value}</b>`}</li>`)}</ul>`;
}

export interface TimeAxis {
  /** The ISO minute each step starts at. */
  readonly steps: readonly string[];
  /** What a step is called in a title: 'minute', '15 minutes'... */
  readonly stepLabel: string;
  /** Which steps get a label under the axis, and what it says. */
  readonly tick: (iso: string, index: number) => string | undefined;
  /** How a step is named in a bar's title. */
  readonly name: (iso: string) => string;
}

const PAD_L = 56;
const PAD_R = 10;
const PAD_T = 10;
const PAD_B = 26;

function yAxis(max: number, top: number, h: number, format: (v: number) => string): Html[] {
  const out: Html[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = top + h - (h * i) / 4;
    out.push(html`<line class="gridline" x1="${PAD_L}" x2="${W - PAD_R}" y1="${r(y)}" y2="${r(y)}"/><text class="axis" x="${PAD_L - 6}" y="${r(y + 4)}" text-anchor="end">${format(v)}</text>`);
  }
  return out;
}

function xAxis(axis: TimeAxis, top: number, h: number, bw: number): Html[] {
  const out: Html[] = [];
  axis.steps.forEach((iso, i) => {
    const t = axis.tick(iso, i);
    if (t === undefined) return;
    const x = PAD_L + i * bw;
    out.push(html`<line class="tick" x1="${r(x)}" x2="${r(x)}" y1="${r(top + h)}" y2="${r(top + h + 4)}"/><text class="axis" x="${r(x)}" y="${r(top + h + 17)}" text-anchor="middle">${t}</text>`);
  });
  return out;
}

/** Stacked columns over time: one column per step, one coloured part per series. */
export function stackedColumns(o: { label: string; axis: TimeAxis; series: readonly StackSeries[]; unit: string; height?: number }): Html {
  const height = o.height ?? 220;
  const n = o.axis.steps.length;
  const h = height - PAD_T - PAD_B;
  const bw = (W - PAD_L - PAD_R) / Math.max(1, n);
  const totals = Array.from({ length: n }, (_, i) => o.series.reduce((a, s) => a + (s.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const parts: Html[] = [...yAxis(max, PAD_T, h, figure)];
  const gap = bw > 4 ? 1 : 0;
  for (let i = 0; i < n; i++) {
    let y = PAD_T + h;
    for (const s of o.series) {
      const v = s.values[i] ?? 0;
      if (v <= 0) continue;
      const bh = (h * v) / max;
      y -= bh;
      parts.push(
        html`<rect class="${s.cls}" x="${r(PAD_L + i * bw + gap / 2)}" y="${r(y)}" width="${r(Math.max(0.5, bw - gap))}" height="${r(Math.max(0.5, bh))}"><title>${o.axis.name(o.axis.steps[i]!)}: ${figure(v)} ${s.label} ${o.unit}</title></rect>`,
      );
    }
  }
  parts.push(html`<line class="base" x1="${PAD_L}" x2="${W - PAD_R}" y1="${PAD_T + h}" y2="${PAD_T + h}"/>`);
  parts.push(...xAxis(o.axis, PAD_T, h, bw));
  return svg(height, o.label, parts);
}

/** Lines over time, one per series (a step without a value breaks the line), on a linear or log scale. */
export function lines(o: {
  label: string;
  axis: TimeAxis;
  series: readonly { cls: string; label: string; values: readonly (number | undefined)[] }[];
  format: (v: number) => string;
  log?: { min: number; max: number };
  height?: number;
}): Html {
  const height = o.height ?? 200;
  const n = o.axis.steps.length;
  const h = height - PAD_T - PAD_B;
  const bw = (W - PAD_L - PAD_R) / Math.max(1, n);
  const all = o.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined));
  const parts: Html[] = [];
  let yOf: (v: number) => number;
  if (o.log) {
    const lo = Math.log10(o.log.min);
    const hi = Math.log10(o.log.max);
    yOf = (v) => PAD_T + h - (h * (Math.log10(Math.min(o.log!.max, Math.max(o.log!.min, v))) - lo)) / (hi - lo);
    for (let p = Math.ceil(lo); p <= hi; p++) {
      const y = yOf(10 ** p);
      parts.push(html`<line class="gridline" x1="${PAD_L}" x2="${W - PAD_R}" y1="${r(y)}" y2="${r(y)}"/><text class="axis" x="${PAD_L - 6}" y="${r(y + 4)}" text-anchor="end">${o.format(10 ** p)}</text>`);
    }
  } else {
    const max = niceMax(Math.max(0, ...all));
    yOf = (v) => PAD_T + h - (h * v) / max;
    parts.push(...yAxis(max, PAD_T, h, o.format));
  }
  for (const s of o.series) {
    let d = '';
    let open = false;
    s.values.forEach((v, i) => {
      if (v === undefined) {
        open = false;
        return;
      }
      d += `${open ? 'L' : 'M'}${r(PAD_L + (i + 0.5) * bw)} ${r(yOf(v))}`;
      open = true;
    });
    if (d !== '') parts.push(html`<path class="line ${s.cls}" d="${d}"/>`);
    s.values.forEach((v, i) => {
      if (v === undefined) return;
      parts.push(html`<circle class="dot ${s.cls}" cx="${r(PAD_L + (i + 0.5) * bw)}" cy="${r(yOf(v))}" r="${bw > 8 ? 2.5 : 1.5}"><title>${o.axis.name(o.axis.steps[i]!)}: ${s.label} ${o.format(v)}</title></circle>`);
    });
  }
  parts.push(html`<line class="base" x1="${PAD_L}" x2="${W - PAD_R}" y1="${PAD_T + h}" y2="${PAD_T + h}"/>`);
  parts.push(...xAxis(o.axis, PAD_T, h, bw));
  return svg(height, o.label, parts);
}

/** A gauge over time, drawn small: one column per step up to its highest value. */
export function area(o: { label: string; axis: TimeAxis; values: readonly (number | undefined)[]; format: (v: number) => string; cls: string }): Html {
  const width = 300;
  const height = 56;
  const n = o.axis.steps.length;
  const h = height - 2;
  const bw = width / Math.max(1, n);
  const max = niceMax(Math.max(0, ...o.values.filter((v): v is number => v !== undefined)));
  const parts: Html[] = [];
  o.values.forEach((v, i) => {
    if (v === undefined) return;
    const bh = Math.max(1, (h * v) / max);
    parts.push(html`<rect class="${o.cls}" x="${r(i * bw)}" y="${r(h - bh)}" width="${r(Math.max(0.5, bw))}" height="${r(bh)}"><title>${o.axis.name(o.axis.steps[i]!)}: ${o.format(v)}</title></rect>`);
  });
  parts.push(html`<line class="base" x1="0" x2="${width}" y1="${h}" y2="${h}"/>`);
  return svg(height, o.label, parts, 'chart spark', width);
}

export interface BarRow {
  /** Shown as it is (escaped and made visible), cut to fit; the whole in the title. */
  readonly label: string;
  readonly value: number;
}

/** Horizontal bars, largest first: the top senders, domains, viruses, refusal reasons. */
export function bars(o: { label: string; rows: readonly BarRow[]; cls: string; unit: string; width?: number }): Html {
  const width = o.width ?? W;
  const rowH = 24;
  const height = o.rows.length * rowH + 4;
  const labelW = Math.round(width * 0.43);
  const valueW = 60;
  const labelChars = Math.floor(labelW / 7);
  const max = Math.max(1, ...o.rows.map((x) => x.value));
  const parts = o.rows.map((row, i) => {
    const y = i * rowH + 2;
    const bw = ((width - labelW - valueW - 10) * row.value) / max;
    const text = shown(row.label);
    return html`<g><title>${text}: ${figure(row.value)} ${o.unit}</title><text class="label" x="${labelW - 8}" y="${y + 16}" text-anchor="end">${cut(text, labelChars)}</text><rect class="${o.cls}" x="${labelW}" y="${y + 3}" width="${r(Math.max(1, bw))}" height="${rowH - 7}"/><text class="value" x="${r(labelW + bw + 6)}" y="${y + 16}">${figure(row.value)}</text></g>`;
  });
  return svg(height, o.label, parts, 'chart bars', width);
}

export interface SplitRow {
  readonly label: string;
  /** The parts, in order, each with its colour class and name. */
  readonly parts: readonly { cls: string; name: string; value: number }[];
  /** Said at the end of the row ('99.5% ok of 1,200'). */
  readonly note: string;
  /** Marked as a problem. */
  readonly bad?: boolean;
}

/** One 100% bar per row, split into coloured parts: the calls of each backend by outcome. */
export function splitBars(o: { label: string; rows: readonly SplitRow[] }): Html {
  const rowH = 26;
  const height = o.rows.length * rowH + 4;
  const labelW = 300;
  const barW = 300;
  const parts = o.rows.map((row, i) => {
    const y = i * rowH + 2;
    const total = row.parts.reduce((a, p) => a + p.value, 0);
    let x = labelW;
    const segs: Html[] = [];
    for (const p of row.parts) {
      if (p.value <= 0 || total <= 0) continue;
      const w = (barW * p.value) / total;
      segs.push(html`<rect class="${p.cls}" x="${r(x)}" y="${y + 4}" width="${r(Math.max(1, w))}" height="${rowH - 9}"><title>${shown(row.label)}: ${figure(p.value)} ${p.name}</title></rect>`);
      x += w;
    }
    const label = shown(row.label);
    return html`<g><text class="label${row.bad ? ' bad' : ''}" x="${labelW - 8}" y="${y + 17}" text-anchor="end"><title>${label}</title>${cut(label, 40)}</text>${segs}<text class="value${row.bad ? ' bad' : ''}" x="${labelW + barW + 8}" y="${y + 17}">${row.note}</text></g>`;
  });
  return svg(height, o.label, parts, 'chart bars');
}

/** p50 and p95 of each row on a log scale of ms: a light bar to p95, a dark one to p50, both written. */
export function latencyBars(o: { label: string; rows: readonly { label: string; p50: number; p95: number; above95: boolean; count: number }[] }): Html {
  const rowH = 26;
  const axisH = 20;
  const height = o.rows.length * rowH + axisH + 4;
  const labelW = 200;
  const noteW = 250;
  const plotW = W - labelW - noteW;
  const lo = 0; // log10(1 ms)
  const hi = Math.log10(30_000);
  const xOf = (v: number) => labelW + (plotW * (Math.log10(Math.max(1, Math.min(30_000, v))) - lo)) / (hi - lo);
  const parts: Html[] = [];
  for (const t of [1, 10, 100, 1000, 10_000]) {
    const x = xOf(t);
    parts.push(html`<line class="gridline" x1="${r(x)}" x2="${r(x)}" y1="0" y2="${o.rows.length * rowH}"/><text class="axis" x="${r(x)}" y="${o.rows.length * rowH + 15}" text-anchor="middle">${ms(t)}</text>`);
  }
  o.rows.forEach((row, i) => {
    const y = i * rowH + 2;
    const p95 = `${row.above95 ? 'over ' : ''}${ms(row.p95)}`;
    parts.push(
      html`<g><title>${shown(row.label)}: p50 ${ms(row.p50)}, p95 ${p95} (${figure(row.count)} runs)</title><text class="label" x="${labelW - 8}" y="${y + 17}" text-anchor="end">${cut(shown(row.label), 26)}</text><rect class="p95" x="${labelW}" y="${y + 4}" width="${r(Math.max(1, xOf(row.p95) - labelW))}" height="${rowH - 9}"/><rect class="p50" x="${labelW}" y="${y + 4}" width="${r(Math.max(1, xOf(row.p50) - labelW))}" height="${rowH - 9}"/><text class="value" x="${labelW + plotW + 8}" y="${y + 17}">p50 ${ms(row.p50)} · p95 ${p95}</text></g>`,
    );
  });
  return svg(height, o.label, parts, 'chart bars');
}
