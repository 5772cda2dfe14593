// The metrics of `nqqueue serve`: its registry (its own messages counted as they are answered, the
// standalone program's and nqqueue-qq's fallbacks read from the journal), its own journal records (so
// the rollups see both modes the same way), the /metrics listener, and the rollup writer's schedule.
// This is the one door the daemon uses; the queue path uses record.ts and journal.ts alone.

import { hostname } from 'node:os';
import { readdirSync } from 'node:fs';
import type { Server } from 'node:http';

import type { Settings } from '../config/settings.js';
import { describeError } from '../errors.js';
import { Periodic } from '../ops/periodic.js';
import { setBackendCounter } from './counter.js';
import { listenMetrics } from './exporter.js';
import { applyRecord, nqqueueFamilies, type Families } from './families.js';
import { quarantineItems, spoolGauges } from './gauges.js';
import { endPositions, JournalWriter, readJournal, type Positions } from './journal.js';
import { eventsRecord, EventTally, makeRecord, type MessageFacts } from './record.js';
import { Registry } from './registry.js';
import { RollupWriter, type RollupStore } from './rollup.js';

/** How often the journal is rolled up into the store (and read for the registry between scrapes). */
export const ROLLUP_INTERVAL_MS = 10_000;

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
  private readonly rollups: RollupWriter | undefined;
  private readonly periodic: Periodic;
  private readonly started = Date.now();

  constructor(private readonly o: DaemonMetricsOptions) {
    this.families = nqqueueFamilies(this.registry);
    const journal = o.settings.metricsJournal;
    this.writer = journal ? new JournalWriter(o.home) : undefined;
    this.rollups = journal
      ? new RollupWriter({
          home: o.home,
          host: hostname(),
          store: o.store,
          gauges: () => this.gauges(),
          historyMs: o.settings.metricsHistoryMs,
          log: (l) => o.log(`nqqueue serve: metrics: ${l}`),
        })
      : undefined;
    this.periodic = new Periodic(
      () => this.tick(),
      () => ROLLUP_INTERVAL_MS,
      (err) => o.log(`nqqueue serve: metrics: rollup failed: ${describeError(err)}`),
    );
    this.registry.collect(() => this.collect());
  }

  /** Counting starts: what the journal holds already is the rollups' business, not this registry's. */
  async start(): Promise<void> {
    setBackendCounter(this.tally);
    this.positions = endPositions(this.o.home);
    const at = this.o.settings.metrics;
    if (at) {
      // Mail matters more than its figures: a metrics address in use is logged, the daemon still starts.
      try {
        const { server, url } = await listenMetrics(at, () => this.registry.exposition());
        this.server = server;
        this.o.log(`nqqueue serve: metrics on ${url}${at.public ? ' (public)' : ''}`);
      } catch (err) {
        this.o.log(`nqqueue serve: metrics: cannot listen on ${at.host}:${at.port}: ${describeError(err)}; no /metrics`);
      }
    }
    if (this.rollups) this.periodic.schedule(1000);
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
    const { records, positions, skipped } = readJournal(this.o.home, this.positions);
    this.positions = positions;
    for (const r of records) if (!(r.via === 'daemon' && r.pid === process.pid)) applyRecord(this.families, r);
    if (skipped) this.families.skipped.inc([], skipped);
  }

  private async gauges() {
    const spool = spoolGauges(this.o.home);
    const q = await quarantineItems(this.o.home, this.o.settings);
    return { spool_items: spool.items, spool_oldest_s: spool.oldestS, quarantine_items: q, in_flight: this.o.inFlight() };
  }

  private async collect(): Promise<void> {
    this.flushEvents();
    this.catchUp();
    const g = await this.gauges();
    const f = this.families;
    f.spoolItems.set([], g.spool_items);
    f.spoolOldest.set([], g.spool_oldest_s);
    if (g.quarantine_items !== undefined) f.quarantineItems.set([], g.quarantine_items);
    f.inFlight.set([], g.in_flight);
    processGauges(this.registry, this.started);
  }

  private async tick(): Promise<void> {
    this.flushEvents();
    this.catchUp();
    await this.rollups?.pass();
  }

  async stop(): Promise<void> {
    await this.periodic.stop();
    // The last figures reach the store before the daemon goes.
    if (this.rollups) await this.tick().catch((err) => this.o.log(`nqqueue serve: metrics: rollup failed: ${describeError(err)}`));
    this.writer?.close();
    setBackendCounter(undefined);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The process metrics Prometheus expects of any exporter (the names prom-client uses). */
function processGauges(r: Registry, started: number): void {
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
