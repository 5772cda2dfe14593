// The rollup writer on a schedule, for `nqqueue serve` and `nqqueue web`: a pass every
// ROLLUP_INTERVAL_MS (the first a second after start), and a last one at stop so that the figures of
// the last seconds reach the store before the process goes.

import { hostname } from 'node:os';

import type { Settings } from '../config/settings.js';
import { describeError } from '../errors.js';
import { Periodic } from '../ops/periodic.js';
import { quarantineItems, spoolGauges } from './gauges.js';
import { RollupWriter, type Gauges, type RollupStore } from './rollup.js';

export const ROLLUP_INTERVAL_MS = 10_000;

export interface RollupScheduleOptions {
  readonly home: string;
  readonly settings: Settings;
  readonly store: () => Promise<RollupStore>;
  readonly log: (line: string) => void;
  /** Messages in flight (the daemon's); absent elsewhere. */
  readonly inFlight?: () => number;
  /** Run before each pass (the daemon reads the journal for its registry then). */
  readonly before?: () => void;
}

export async function sampleGauges(home: string, settings: Settings, inFlight?: () => number): Promise<Gauges> {
  const spool = spoolGauges(home);
  return { spool_items: spool.items, spool_oldest_s: spool.oldestS, quarantine_items: await quarantineItems(home, settings), in_flight: inFlight?.() };
}

export class RollupSchedule {
  private readonly writer: RollupWriter;
  private readonly periodic: Periodic;

  constructor(private readonly o: RollupScheduleOptions) {
    this.writer = new RollupWriter({
      home: o.home,
      host: hostname(),
      store: o.store,
      gauges: () => sampleGauges(o.home, o.settings, o.inFlight),
      historyMs: o.settings.metricsHistoryMs,
      log: o.log,
    });
    this.periodic = new Periodic(
      () => this.pass(),
      () => ROLLUP_INTERVAL_MS,
      (err) => o.log(`rollup failed: ${describeError(err)}`),
    );
  }

  private async pass(): Promise<void> {
    this.o.before?.();
    await this.writer.pass();
  }

  start(): void {
    this.periodic.schedule(1000);
  }

  async stop(): Promise<void> {
    await this.periodic.stop();
    await this.pass().catch((err) => this.o.log(`rollup failed: ${describeError(err)}`));
  }
}
