// Learning from moves on `nqqueue serve`'s schedule: with `[learn] every` and `[learn] maildirs` set
// (off by default), a walk of the users' Maildirs (as `nqqueue learn --maildirs` does) every so often,
// timed from the end of the last one; walks never overlap, and stop() waits for the one going on. The
// settings are read again at every look, so turning it on or off needs no restart; with it off, a look
// costs one read of the settings file every CHECK_MS and loads nothing of the learners.

import { serviceSettings } from '../config/service-sections.js';
import { describeError } from '../errors.js';
import { Periodic } from '../ops/periodic.js';
import { readSettings, type Paths } from '../queue/services.js';

/** How often the daemon looks whether a walk is due (and whether learning was turned on). */
export const CHECK_MS = 60_000;
/** The first look, a moment after start. */
export const FIRST_MS = 5_000;

export class LearnScheduler {
  private readonly periodic: Periodic;
  private lastEnd = 0;
  private saidOff = false;

  constructor(
    private readonly paths: Paths,
    private readonly log: (line: string) => void,
    checkMs = CHECK_MS,
  ) {
    this.periodic = new Periodic(
      () => this.pass(),
      () => checkMs,
      (err) => this.log(`failed: ${describeError(err)}`),
    );
  }

  private async pass(): Promise<void> {
    const settings = readSettings(this.paths);
    let learn;
    try {
      learn = serviceSettings(settings, 'learn');
    } catch (err) {
      // A value check-config refuses: said at each look until it is fixed.
      this.log(`[learn]: ${(err as Error).message}`);
      return;
    }
    if (learn.every === undefined || learn.maildirs === undefined) {
      // Once, at the first look: an admin reading the log sees why nothing is learned.
      if (!this.saidOff) this.log(`learning from Maildirs is off ([learn] ${learn.every === undefined ? 'every' : 'maildirs'} is not set)`);
      this.saidOff = true;
      return;
    }
    this.saidOff = false;
    if (this.lastEnd !== 0 && Date.now() - this.lastEnd < learn.every) return;
    try {
      const { learnMaildirs } = await import('./run.js');
      const r = await learnMaildirs(this.paths, settings, learn.maildirs, this.log);
      this.log(r.text);
    } finally {
      this.lastEnd = Date.now();
    }
  }

  start(): void {
    this.periodic.schedule(FIRST_MS);
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
