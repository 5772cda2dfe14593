// The metrics of `nqqueue serve`: its registry (its own messages counted as they are answered, the
// standalone program's and nqqueue-qq's fallbacks read from the journal), its own journal records (so
// the rollups see both modes the same way), the /metrics listener, and the rollup writer's schedule.
// This is the one door the daemon uses; the queue path uses record.ts and journal.ts alone.

import { readdirSync } from 'node:fs';
import type { Server } from 'node:http';

import type { Settings } from '../config/settings.js';
import { describeError } from '../errors.js';
import { setBackendCounter } from './counter.js';
import { applyRecord, nqqueueFamilies, type Families } from './families.js';
import { endPositions, JournalWriter, readJournal, type Positions } from './journal.js';
import { eventsRecord, EventTally, makeRecord, type MessageFacts } from './record.js';
import { Registry } from './registry.js';
import type { RollupStore } from './rollup.js';
import { RollupSchedule, sampleGauges } from './rollup-schedule.js';

export interface DaemonMetricsOptions {
  readonly home: string;
  readonly settings: Settings;
  readonly log: (line: string) => void;
  /** Messages being handled now. */
  readonly inFlight: () => number;
  /** The store the rollups go to (opened on first use). */
  readonly store: () => Promise<RollupStore>;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly families: Families;
  private readonly tally = new EventTally();
  private readonly writer: JournalWriter | undefined;
  private positions: Positions = new Map();
  private server: Server | undefined;
  private readonly rollups: RollupSchedule | undefined;
  private readonly started = Date.now();
  /** What this daemon's own journal lines have near their start (encodeRecord writes v, t, pid, via first). */
  private readonly own = Buffer.from(`,"pid":${process.pid},"via":"daemon"`);

  constructor(private readonly o: DaemonMetricsOptions) {
    this.families = nqqueueFamilies(this.registry);
    const journal = o.settings.metricsJournal;
    this.writer = journal ? new JournalWriter(o.home) : undefined;
    // Between scrapes too, the journal is read before each pass: an hour's file read whole by the
    // rollups is removed a while later, and this registry must have read it by then.
    this.rollups = journal
      ? new RollupSchedule({ home: o.home, settings: o.settings, store: o.store, inFlight: o.inFlight, log: (l) => o.log(`nqqueue serve: metrics: ${l}`), before: () => {
          this.flushEvents();
          this.catchUp();
        } })
      : undefined;
    this.registry.collect(() => this.collect());
    // From the first message on: the daemon's backend clients count into this registry.
    setBackendCounter(this.tally);
  }

  /** Counting starts: what the journal holds already is the rollups' business, not this registry's. */
  async start(): Promise<void> {
    this.positions = endPositions(this.o.home);
    const at = this.o.settings.metrics;
    if (at) {
      // Mail matters more than its figures: a metrics address in use is logged, the daemon still starts.
      try {
        // node:http and the listener only for a site that asked for one: an idle daemon stays small.
        const { listenMetrics } = await import('./exporter.js');
        const { server, url } = await listenMetrics(at, () => this.registry.exposition());
        this.server = server;
        this.o.log(`nqqueue serve: metrics on ${url}${at.public ? ' (public)' : ''}`);
      } catch (err) {
        this.o.log(`nqqueue serve: metrics: cannot listen on ${at.host}:${at.port}: ${describeError(err)}; no /metrics`);
      }
    }
    this.rollups?.start();
  }

  /** One message answered by the daemon. */
  message(facts: MessageFacts): void {
    const rec = makeRecord(facts, 'daemon', undefined, this.tally.take());
    applyRecord(this.families, rec);
    this.writer?.append(rec);
  }

  /** A configuration (re)load: `ok` when messages can use it. */
  loaded(ok: boolean, reload: boolean): void {
    if (reload) this.families.reloads.inc([ok ? 'success' : 'failure']);
    this.families.reloadOk.set([], ok ? 1 : 0);
    if (ok) this.families.reloadAt.set([], Math.round(Date.now() / 1000));
  }

  /** Backend events counted since the last message, as a record of their own. */
  private flushEvents(): void {
    const events = this.tally.take();
    if (!events) return;
    const rec = eventsRecord('daemon', events);
    applyRecord(this.families, rec);
    this.writer?.append(rec);
  }

  /** Records other processes wrote since the last look (this daemon's own are counted already). */
  private catchUp(): void {
    const { records, positions, skipped } = readJournal(this.o.home, this.positions, (line) => line.subarray(0, 80).includes(this.own));
    this.positions = positions;
    for (const r of records) if (!(r.via === 'daemon' && r.pid === process.pid)) applyRecord(this.families, r);
    if (skipped) this.families.skipped.inc([], skipped);
  }

  private async collect(): Promise<void> {
    this.flushEvents();
    this.catchUp();
    const g = await sampleGauges(this.o.home, this.o.settings, this.o.inFlight);
    const f = this.families;
    f.spoolItems.set([], g.spool_items ?? 0);
    f.spoolOldest.set([], g.spool_oldest_s ?? 0);
    if (g.quarantine_items !== undefined) f.quarantineItems.set([], g.quarantine_items);
    f.inFlight.set([], g.in_flight ?? 0);
    processGauges(this.registry, this.started);
  }

  async stop(): Promise<void> {
    // The last figures reach the store before the daemon goes.
    await this.rollups?.stop();
    this.writer?.close();
    setBackendCounter(undefined);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The process metrics Prometheus expects of any exporter (the names prom-client uses). */
export function processGauges(r: Registry, started: number): void {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  r.counter('process_cpu_user_seconds_total', 'User CPU time spent, seconds.').set([], cpu.user / 1e6);
  r.counter('process_cpu_system_seconds_total', 'System CPU time spent, seconds.').set([], cpu.system / 1e6);
  r.gauge('process_resident_memory_bytes', 'Resident memory size, bytes.').set([], mem.rss);
  r.gauge('process_heap_bytes', 'Heap size of the JavaScript engine, bytes.').set([], mem.heapTotal);
  r.gauge('process_start_time_seconds', 'Start time of the process since the epoch, seconds.').set([], Math.round(started / 1000));
  try {
    r.gauge('process_open_fds', 'Open file descriptors.').set([], readdirSync('/proc/self/fd').length);
  } catch {
    // not Linux
  }
}
