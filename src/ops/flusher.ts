// The daemon's own `nqqueue flush`: one pass before it listens, then one every `flush_interval` (read
// afresh each time, so a reload changes it). Passes never overlap; stop() waits for the one running,
// so a delivery is never cut off by the daemon's own exit.

import { defaultSettings } from '../config/settings.js';
import { describeError } from '../errors.js';
import { readSettings, type Paths } from '../queue/services.js';
import { flushSpool } from './flush.js';
import { Periodic } from './periodic.js';

export class SpoolFlusher {
  private readonly periodic: Periodic;
  /** Whether the pass under way logs its summary even when the spool was empty. */
  private always = false;

  constructor(
    private readonly paths: Paths,
    private readonly log: (line: string) => void,
  ) {
    this.periodic = new Periodic(
      () => this.pass(),
      () => this.intervalMs(),
      (err) => this.log(`failed: ${describeError(err)}`),
    );
  }

  private intervalMs(): number {
    try {
      return readSettings(this.paths).flushIntervalMs;
    } catch {
      return defaultSettings().flushIntervalMs;
    }
  }

  private async pass(): Promise<void> {
    const always = this.always;
    const lines: string[] = [];
    try {
      const counts = await flushSpool(this.paths, (l) => lines.push(l));
      if (always || counts.delivered + counts.failed > 0) for (const l of lines) this.log(l);
    } catch (err) {
      for (const l of lines) this.log(l);
      throw err;
    }
  }

  /** One pass. `always`: log the summary even when the spool was empty (the pass at start). */
  once(always: boolean): Promise<void> {
    // pass() reads the flag before its first await, i.e. within periodic.once() (when it starts one).
    this.always = always;
    const running = this.periodic.once();
    this.always = false;
    return running;
  }

  schedule(): void {
    this.periodic.schedule();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
