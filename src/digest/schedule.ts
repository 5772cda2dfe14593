// The digest schedule of `nqqueue serve`: a digest run (src/digest/run.ts) a moment after the daemon
// starts, then every CHECK_MS. Runs never overlap; stop() waits for the one going on, so a digest is
// never cut off between qmail-inject taking it and its bookkeeping. Nothing is loaded or opened while the home has
// neither a store nor a quarantine (a site that never held a message pays nothing for this).

import { describeError } from '../errors.js';
import { Periodic } from '../ops/periodic.js';
import { readSettings, type Paths } from '../queue/services.js';
import { hasQuarantine } from '../store/file.js';

/** How often the daemon looks for digests that are due. The cadences are hourly at the shortest. */
export const CHECK_MS = 5 * 60_000;
/** The first look, a moment after start: not competing with the daemon's own start for the CPU. */
export const FIRST_MS = 5_000;

export class DigestScheduler {
  private readonly periodic: Periodic;
  private readonly warned: { url?: boolean } = {};

  constructor(
    private readonly paths: Paths,
    private readonly log: (line: string) => void,
    everyMs = CHECK_MS,
  ) {
    this.periodic = new Periodic(
      () => this.pass(),
      () => everyMs,
      (err) => this.log(`failed: ${describeError(err)}`),
    );
  }

  /** One run, unless one is going on (then that one). */
  once(): Promise<void> {
    return this.periodic.once();
  }

  private async pass(): Promise<void> {
    const home = this.paths.home;
    if (!hasQuarantine(home)) return;
    const settings = readSettings(this.paths);
    const { sharedQuarantine } = await import('../quarantine/actions.js');
    const { runDigests } = await import('./run.js');
    // The daemon's one open store, shared with the quarantine and the expiry passes.
    await sharedQuarantine(this.paths, settings, (q) => runDigests(q, { log: this.log, warned: this.warned, from: 'nqqueue serve' }).then(() => undefined));
  }

  /** The first run FIRST_MS after start, then one every CHECK_MS after the last ended. */
  start(): void {
    this.periodic.schedule(FIRST_MS);
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
