// The daemon's own `nqqueue flush`: one pass before it listens, then one every `flush_interval` (read
// afresh each time, so a reload changes it). Passes never overlap; stop() waits for the one running,
// so a delivery is never cut off by the daemon's own exit.

import { defaultSettings } from '../config/settings.js';
import { describeError } from '../errors.js';
import { readSettings, type Paths } from '../queue/services.js';
import { flushSpool } from './flush.js';

export class SpoolFlusher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly paths: Paths,
    private readonly log: (line: string) => void,
  ) {}

  private intervalMs(): number {
    try {
      return readSettings(this.paths).flushIntervalMs;
    } catch {
      return defaultSettings().flushIntervalMs;
    }
  }

  /** One pass. `always`: log the summary even when the spool was empty (the pass at start). */
  once(always: boolean): Promise<void> {
    if (this.running) return this.running;
    const lines: string[] = [];
    this.running = flushSpool(this.paths, (l) => lines.push(l))
      .then(
        (counts) => {
          if (always || counts.delivered + counts.failed > 0) for (const l of lines) this.log(l);
        },
        (err: unknown) => {
          for (const l of lines) this.log(l);
          this.log(`failed: ${describeError(err)}`);
        },
      )
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.once(false).then(() => this.schedule());
    }, this.intervalMs());
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
