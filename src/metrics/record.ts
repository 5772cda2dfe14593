// One message as the metrics see it: a compact record made by the front door (src/queue/process.ts)
// for both modes, appended to the journal (journal.ts) and counted by whoever reads it (the daemon's
// registry, the per-minute rollups). Every field is bounded: a message for 10,000 recipients makes a
// record no longer than one for one recipient (plugin runs are summed per plugin and verdict).

import type { BackendEvent } from './counter.js';
import { bucketOf, LATENCY_BUCKETS_MS } from './buckets.js';

export const RECORD_VERSION = 1;
/** What the longest text kept (a refusal, a virus name, a sender) may be. */
export const TEXT_MAX = 200;
const SENDER_MAX = 320;
const VIRUSES_MAX = 8;

export type MessageResult = 'accept' | 'reject' | 'defer' | 'error' | 'bug';
export type RecipientFate = 'deliver' | 'reject' | 'drop' | 'quarantine' | 'tempfail';
export type Via = 'standalone' | 'daemon' | 'fallback';

/** One plugin and verdict: how many runs, their total time, and how many fell in each latency bucket. */
export interface PluginRuns {
  readonly plugin: string;
  readonly verdict: string;
  n: number;
  sumMs: number;
  readonly buckets: number[];
}

export interface MessageRecord {
  readonly v: number;
  /** When it was answered, ms since the epoch. */
  readonly t: number;
  /** The process that wrote it (a daemon's counts are in its own registry already). */
  readonly pid: number;
  readonly via: Via;
  /** nqqueue-qq's reason, when it fell back to the standalone program. */
  readonly why?: string;
  /** Absent in a record that carries only backend events. */
  readonly result?: MessageResult;
  readonly fates?: Partial<Record<RecipientFate, number>>;
  /** Lower case, `<>` for a bounce. */
  readonly sender?: string;
  readonly refusal?: string;
  readonly viruses?: readonly string[];
  readonly plugins?: readonly PluginRuns[];
  /** Each qmail-queue call: its time and whether it took the copy. */
  readonly queue?: readonly { readonly ms: number; readonly ok: boolean }[];
  /** `service address event` → count. */
  readonly backend?: Readonly<Record<string, number>>;
}

/** What the front door knows of a message when it is answered. */
export interface MessageFacts {
  readonly result: MessageResult;
  readonly sender?: string;
  readonly recipients?: number;
  readonly fates?: Partial<Record<RecipientFate, number>>;
  readonly refusal?: string;
  readonly results?: Iterable<{ readonly plugin: string; readonly verdict: string; readonly ms: number; readonly details: Readonly<Record<string, unknown>> }>;
  readonly queue?: readonly { readonly ms: number; readonly ok: boolean }[];
}

export function cut(text: string, max = TEXT_MAX): string {
  // Control characters never reach a label, a key or a log: they are shown as '?'.
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length <= max ? clean : clean.slice(0, max);
}

/** The sender as the rollups key it: lower case, `<>` for a bounce. */
export function senderKey(address: string): string {
  return address === '' ? '<>' : cut(address.toLowerCase(), SENDER_MAX);
}

export function makeRecord(facts: MessageFacts, via: Via, why: string | undefined, backend: Readonly<Record<string, number>> | undefined, now = Date.now()): MessageRecord {
  const runs = new Map<string, PluginRuns>();
  const viruses = new Set<string>();
  for (const r of facts.results ?? []) {
    const key = `${r.plugin}\0${r.verdict}`;
    let x = runs.get(key);
    if (!x) runs.set(key, (x = { plugin: cut(r.plugin, 100), verdict: r.verdict, n: 0, sumMs: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) }));
    x.n++;
    x.sumMs += r.ms;
    x.buckets[bucketOf(r.ms)]!++;
    const virus = r.details.virus;
    if (typeof virus === 'string' && virus !== '' && viruses.size < VIRUSES_MAX) viruses.add(cut(virus));
  }
  // v, t, pid and via come first, in this order: the daemon passes over its own lines by them undecoded.
  return {
    v: RECORD_VERSION,
    t: now,
    pid: process.pid,
    via,
    why,
    result: facts.result,
    fates: facts.fates,
    sender: facts.sender === undefined ? undefined : senderKey(facts.sender),
    refusal: facts.refusal === undefined ? undefined : cut(facts.refusal),
    viruses: viruses.size ? [...viruses] : undefined,
    plugins: runs.size ? [...runs.values()] : undefined,
    queue: facts.queue?.length ? facts.queue : undefined,
    backend: backend && Object.keys(backend).length ? backend : undefined,
  };
}

/** A record of backend events alone (a daemon's, counted between messages). */
export function eventsRecord(via: Via, backend: Readonly<Record<string, number>>, now = Date.now()): MessageRecord {
  return { v: RECORD_VERSION, t: now, pid: process.pid, via, backend };
}

/** Collects backend events until the next record takes them. */
export class EventTally {
  private counts: Record<string, number> = {};
  private any = false;

  count(service: string, address: string, event: BackendEvent): void {
    const key = `${service} ${cut(address)} ${event}`;
    this.counts[key] = (this.counts[key] ?? 0) + 1;
    this.any = true;
  }

  /** What was counted since the last take, and start again. */
  take(): Record<string, number> | undefined {
    if (!this.any) return undefined;
    const out = this.counts;
    this.counts = {};
    this.any = false;
    return out;
  }
}

/** One journal line: JSON, one line, no trailing spaces (the reader skips what does not parse). */
export function encodeRecord(r: MessageRecord): string {
  return `${JSON.stringify(r)}\n`;
}

const RESULTS: ReadonlySet<string> = new Set(['accept', 'reject', 'defer', 'error', 'bug']);
const FATES: ReadonlySet<string> = new Set(['deliver', 'reject', 'drop', 'quarantine', 'tempfail']);
const EVENTS: ReadonlySet<string> = new Set(['ok', 'error', 'timeout', 'failover']);

const count = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const text = (v: unknown, max = TEXT_MAX): v is string => typeof v === 'string' && v.length <= max * 2;

/**
 * A journal line back as a record, checked field by field: the journal is a file in the home, and a
 * line cut short by a crash or written by something else must not put anything odd into a label.
 * Undefined when the line is not a record.
 */
export function decodeRecord(line: string): MessageRecord | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!o || typeof o !== 'object' || o.v !== RECORD_VERSION || !count(o.t) || !count(o.pid)) return undefined;
  if (o.via !== 'standalone' && o.via !== 'daemon' && o.via !== 'fallback') return undefined;
  if (o.result !== undefined && !RESULTS.has(o.result as string)) return undefined;
  const fates: Partial<Record<RecipientFate, number>> = {};
  if (o.fates !== undefined) {
    if (typeof o.fates !== 'object' || o.fates === null) return undefined;
    for (const [k, v] of Object.entries(o.fates)) if (FATES.has(k) && count(v)) fates[k as RecipientFate] = v;
  }
  const plugins: PluginRuns[] = [];
  for (const p of Array.isArray(o.plugins) ? (o.plugins as unknown[]) : []) {
    const x = p as Partial<PluginRuns>;
    if (!text(x.plugin, 100) || !text(x.verdict, 20) || !count(x.n) || !count(x.sumMs) || !Array.isArray(x.buckets) || x.buckets.length !== LATENCY_BUCKETS_MS.length + 1 || !x.buckets.every(count)) continue;
    plugins.push({ plugin: cut(x.plugin, 100), verdict: cut(x.verdict, 20), n: x.n, sumMs: x.sumMs, buckets: [...x.buckets] });
  }
  const queue: { ms: number; ok: boolean }[] = [];
  for (const q of Array.isArray(o.queue) ? (o.queue as unknown[]) : []) {
    const x = q as { ms?: unknown; ok?: unknown };
    if (count(x.ms) && typeof x.ok === 'boolean') queue.push({ ms: x.ms, ok: x.ok });
  }
  const backend: Record<string, number> = {};
  if (o.backend && typeof o.backend === 'object') {
    for (const [k, v] of Object.entries(o.backend)) {
      const event = k.slice(k.lastIndexOf(' ') + 1);
      if (count(v) && EVENTS.has(event) && k.length <= 400) backend[k] = v;
    }
  }
  return {
    v: RECORD_VERSION,
    t: o.t,
    pid: o.pid,
    via: o.via,
    why: text(o.why, 40) ? cut(o.why, 40) : undefined,
    result: o.result as MessageResult | undefined,
    fates,
    sender: text(o.sender, SENDER_MAX) ? cut(o.sender, SENDER_MAX) : undefined,
    refusal: text(o.refusal) ? cut(o.refusal) : undefined,
    viruses: Array.isArray(o.viruses) ? (o.viruses as unknown[]).filter((x): x is string => text(x)).slice(0, VIRUSES_MAX).map((x) => cut(x)) : undefined,
    plugins,
    queue,
    backend,
  };
}
