// The backend clients' side of the metrics: a tiny counter they tell what happened at each address
// (a call that worked, an error, a timeout, a fail-over to the next address). It knows nothing of
// messages or plugins; the process that runs the pipeline decides where the counts go (the daemon's
// registry, or the standalone program's journal record). No counter set: counting costs one test.

export type BackendEvent = 'ok' | 'error' | 'timeout' | 'failover';

export interface BackendCounter {
  /** `service`: clamd, spamd, rspamd; `address`: the address as configured (a socket path, HOST:PORT, a URL). */
  count(service: string, address: string, event: BackendEvent): void;
}

let current: BackendCounter | undefined;

/** Where this process's backend counts go from now on (undefined: nowhere). */
export function setBackendCounter(counter: BackendCounter | undefined): void {
  current = counter;
}

export function countBackend(service: string, address: string, event: BackendEvent): void {
  current?.count(service, address, event);
}

/** A failure's event: a timeout when it (or its cause) says ETIMEDOUT, else an error. */
export function failureEvent(err: unknown): BackendEvent {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'ETIMEDOUT') return 'timeout';
    if ((e as { name?: unknown }).name === 'TimeoutError') return 'timeout';
  }
  return 'error';
}
