// A pass the daemon repeats (the spool flush, the quarantine expiry, the digests): passes never
// overlap (asking for one while one runs gets that one), the next is timed from the end of the last,
// and stop() waits for the one running, so the daemon's own exit never cuts a pass off half-way.

export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  /** `pass` must not throw for what it can say itself; a throw is logged through `failed`. */
  constructor(
    private readonly pass: () => Promise<void>,
    private readonly intervalMs: () => number,
    private readonly failed: (err: unknown) => void,
  ) {}

  /** One pass, unless one is going on (then that one). */
  once(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.pass()
      .catch((err: unknown) => this.failed(err))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** The next pass in `delayMs` (an interval by default), then one an interval after each. */
  schedule(delayMs = this.intervalMs()): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.once().then(() => this.schedule());
    }, delayMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
