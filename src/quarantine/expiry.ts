// The daemon's own `nqqueue quarantine expire`: once at start, then hourly. Passes never overlap;
// stop() waits for the one running. A pass that fails (the store unreachable) is logged and the next
// one tries again. Passes use the daemon's one open store (the quarantine's), not one of their own.

import { describeError } from '../errors.js';
import { Periodic } from '../ops/periodic.js';
import { readSettings, type Paths } from '../queue/services.js';
import { hasQuarantine } from '../store/file.js';

export const EXPIRY_INTERVAL_MS = 3600_000;
/** The first pass waits this long: a daemon starting takes its first messages before anything else. */
export const FIRST_PASS_DELAY_MS = 2000;

export class QuarantineExpiry {
  private readonly periodic: Periodic;

  constructor(
    private readonly paths: Paths,
    private readonly log: (line: string) => void,
    intervalMs = EXPIRY_INTERVAL_MS,
  ) {
    this.periodic = new Periodic(
      () => this.pass(),
      () => intervalMs,
      (err) => this.log(`failed: ${describeError(err)}`),
    );
  }

  private async pass(): Promise<void> {
    // A site that never quarantined anything has nothing to expire: no store is made for it.
    if (!hasQuarantine(this.paths.home)) return;
    const { ageText, sharedQuarantine, expireItems } = await import('./actions.js');
    await sharedQuarantine(this.paths, readSettings(this.paths), async (q) => {
      const n = await expireItems(q, { who: 'nqqueue serve', from: 'expiry' });
      if (n > 0) this.log(`expired ${n} item${n === 1 ? '' : 's'} older than ${ageText(q.settings.quarantineExpireMs)} (quarantine_expire)`);
    });
  }

  /** One pass; logs only what it did or why it could not. */
  once(): Promise<void> {
    return this.periodic.once();
  }

  /** The next pass in `delayMs` (an interval by default), and every interval after it. */
  schedule(delayMs?: number): void {
    this.periodic.schedule(delayMs);
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
