// Journal records as per-minute rollup rows (the store's RollupRow): one row per minute, host, series
// and key, counters summed, latencies with their buckets. Series and keys are the store's contract
// (src/store/types.ts); `backend_*` keys are `service address` (clamd, spamd, rspamd: what the backend
// client knows), e.g. `clamd /run/clamd.sock`.

import type { RollupRow } from '../store/types.js';
import { bucketOf, LATENCY_BUCKETS_MS } from './buckets.js';
import { backendKey } from './families.js';
import type { MessageRecord } from './record.js';
import { isoUtc } from './journal.js';

/** The minute of a time, as the rollups name it: '2026-12-02T10:07:00.000Z'. */
export function minuteOf(t: number): string {
  return isoUtc(Math.floor(t / 60_000) * 60_000);
}

type Row = { minute: string; host: string; series: string; key: string; count: number; sum: number; buckets?: number[]; gauge?: boolean };

export class RowSet {
  private readonly rows = new Map<string, Row>();

  constructor(private readonly host: string) {}

  add(minute: string, series: string, key: string, count: number, sum = 0, buckets?: readonly number[]): void {
    const id = `${minute}\0${series}\0${key}`;
    let r = this.rows.get(id);
    if (!r) {
      r = { minute, host: this.host, series, key, count: 0, sum: 0, buckets: buckets ? new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) : undefined };
      this.rows.set(id, r);
    }
    r.count += count;
    r.sum += sum;
    if (buckets && r.buckets) for (let i = 0; i < r.buckets.length; i++) r.buckets[i]! += buckets[i] ?? 0;
  }

  gauge(minute: string, series: string, value: number): void {
    this.rows.set(`${minute}\0${series}\0`, { minute, host: this.host, series, key: '', count: 1, sum: value, gauge: true });
  }

  private lastMinute = Number.NaN;
  private lastMinuteText = '';

  /** The record's minute (most records of a pass share it: made once). */
  private minuteText(t: number): string {
    const m = Math.floor(t / 60_000);
    if (m !== this.lastMinute) {
      this.lastMinute = m;
      this.lastMinuteText = isoUtc(m * 60_000);
    }
    return this.lastMinuteText;
  }

  record(rec: MessageRecord): void {
    const minute = this.minuteText(rec.t);
    if (rec.result !== undefined) {
      this.add(minute, 'messages', rec.result, 1);
      for (const [fate, n] of Object.entries(rec.fates ?? {})) if (n > 0) this.add(minute, 'recipients', fate, n);
      if (rec.sender !== undefined) {
        this.add(minute, 'sender', rec.sender, 1);
        const at = rec.sender.lastIndexOf('@');
        if (rec.sender !== '<>' && at >= 0 && at < rec.sender.length - 1) this.add(minute, 'sender_domain', rec.sender.slice(at + 1), 1);
      }
      for (const v of rec.viruses ?? []) this.add(minute, 'virus', v, 1);
      if (rec.result === 'reject' && rec.refusal !== undefined) this.add(minute, 'refusal', rec.refusal, 1);
    }
    for (const p of rec.plugins ?? []) {
      this.add(minute, 'plugin_ms', p.plugin, p.n, p.sumMs, p.buckets);
      this.add(minute, 'plugin_verdict', `${p.plugin}:${p.verdict}`, p.n);
    }
    for (const q of rec.queue ?? []) {
      const b = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
      b[bucketOf(q.ms)] = 1;
      this.add(minute, 'qmail_queue_ms', '', 1, q.ms, b);
      if (!q.ok) this.add(minute, 'qmail_queue_failure', '', 1);
    }
    for (const [key, n] of Object.entries(rec.backend ?? {})) {
      const k = backendKey(key);
      if (k) this.add(minute, `backend_${k.event}`, `${k.service} ${k.address}`, n);
    }
  }

  get size(): number {
    return this.rows.size;
  }

  list(): RollupRow[] {
    return [...this.rows.values()];
  }
}
