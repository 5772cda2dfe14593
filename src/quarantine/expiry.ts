// The daemon's own `nqqueue quarantine expire`: once at start, then hourly. Passes never overlap;
// stop() waits for the one running. A pass that fails (the store unreachable) is logged and the next
// one tries again. The store is opened for each pass only: between passes the daemon holds nothing.

import { describeError } from '../errors.js';
import { readSettings, type Paths } from '../queue/services.js';

export const EXPIRY_INTERVAL_MS = 3600_000;

export class QuarantineExpiry {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly paths: Paths,
    private readonly log: (line: string) => void,
    private readonly intervalMs = EXPIRY_INTERVAL_MS,
  ) {}

  /** One pass; logs only what it did or why it could not. */
  once(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      const { ageText, openQuarantine, expireItems } = await import('./actions.js');
      const q = await openQuarantine(this.paths, readSettings(this.paths));
      try {
        const n = await expireItems(q, { who: 'nqqueue serve', from: 'expiry' });
        if (n > 0) this.log(`expired ${n} item${n === 1 ? '' : 's'} older than ${ageText(q.settings.quarantineExpireMs)} (quarantine_expire)`);
      } finally {
        await q.store.close().catch(() => undefined);
      }
    })()
      .catch((err: unknown) => this.log(`failed: ${describeError(err)}`))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.once().then(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
