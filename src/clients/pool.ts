// Several addresses of one backend as a pool: `failover` tries them in the order written,
// `round-robin` starts each call at the next one. An address that cannot be reached is taken out for a
// back-off period — calls go to the others instead of each paying a connect timeout on it — and put
// back after a successful probe (a connection, made in the background by a long-lived process once
// the back-off is over; a one-shot process simply tries it again then). When every address is out,
// they are all tried anyway: a pool never refuses a call without trying.
//
// What is out is known to every process of the host: it is kept in small files under a directory
// the front door names ($NQQUEUE_HOME/backends), so a one-shot queue process learns from the failures
// of those before it. Without a directory (tests, tools) it is known to this process only.

import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Balance = 'failover' | 'round-robin';

export interface PoolOptions {
  readonly balance: Balance;
  /** How long an address that failed stays out, milliseconds. */
  readonly backoffMs: number;
  /** A connection to the address, for the background probe (resolves when it could connect). */
  readonly probe?: (address: string) => Promise<void>;
}

export const DEFAULT_BACKOFF_MS = 30_000;
export const DEFAULT_BALANCE: Balance = 'failover';
/** The longest back-off there is (settings refuse more): a file saying later is not one of ours. */
const MAX_BACKOFF_MS = 3600_000;

let healthDir: string | undefined;
/** Where this host keeps what is out (the front door sets it; undefined: this process only). */
export function setHealthDir(dir: string | undefined): void {
  healthDir = dir;
}

/** Out until (epoch ms), per `service address`: this process's view, the files being the host's. */
const outUntil = new Map<string, number>();
const probing = new Set<string>();

function fileOf(key: string): string | undefined {
  return healthDir === undefined ? undefined : join(healthDir, createHash('sha256').update(key).digest('hex').slice(0, 24));
}

/**
 * The first line of a health file, or undefined. Only a regular file, not a symbolic link, read for a
 * few bytes: a FIFO, a link to /dev/zero or a huge file put there by mistake must never hang or fill
 * a queue process (reads here are synchronous: they would stop the daemon too).
 */
function readHealthFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buf = Buffer.alloc(32);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('latin1').split('\n')[0];
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function readOut(key: string, now: number): number | undefined {
  const file = fileOf(key);
  if (file !== undefined) {
    const line = readHealthFile(file);
    const until = line === undefined || !/^\d{1,16}$/.test(line) ? NaN : Number(line);
    // Out until a time no back-off reaches (a garbled file, a clock set back): not out.
    if (Number.isFinite(until) && until > now && until <= now + MAX_BACKOFF_MS) {
      outUntil.set(key, until);
      return until;
    }
    outUntil.delete(key);
    return undefined;
  }
  const until = outUntil.get(key);
  return until !== undefined && until > now ? until : undefined;
}

function writeOut(key: string, until: number | undefined): void {
  if (until === undefined) outUntil.delete(key);
  else outUntil.set(key, until);
  const file = fileOf(key);
  if (file === undefined) return;
  // What is out is a hint that saves time: a home that cannot take it changes nothing else.
  try {
    if (until === undefined) {
      rmSync(file, { force: true });
      return;
    }
    // Not recursive: the home is made (with its owner) by the front door, never here.
    try {
      mkdirSync(healthDir!, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${until}\n${key}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // see above
  }
}

export class BackendPool<T extends { readonly text: string }> {
  private next = 0;

  constructor(
    readonly service: string,
    readonly targets: readonly T[],
    readonly options: PoolOptions,
  ) {
    // Each process starts round-robin somewhere else: one-shot processes spread over the pool too.
    this.next = targets.length > 1 ? Math.floor(Math.random() * targets.length) : 0;
  }

  private key(t: T): string {
    return `${this.service} ${t.text}`;
  }

  /** Whether an address is out now (for metrics and check-config). */
  isOut(t: T, now = Date.now()): boolean {
    return readOut(this.key(t), now) !== undefined;
  }

  /** The order to try for one call: the addresses in, by the balance; then those out. */
  order(now = Date.now()): T[] {
    const n = this.targets.length;
    let ordered: readonly T[] = this.targets;
    if (this.options.balance === 'round-robin' && n > 1) {
      const start = this.next % n;
      this.next = (start + 1) % n;
      ordered = [...this.targets.slice(start), ...this.targets.slice(0, start)];
    }
    if (n === 1) return [...ordered];
    const inside: T[] = [];
    const out: T[] = [];
    for (const t of ordered) (this.isOut(t, now) ? out : inside).push(t);
    return [...inside, ...out];
  }

  /** The address could not be reached: out for the back-off period, then probed. */
  failed(t: T, now = Date.now()): void {
    if (this.targets.length === 1) return;
    const until = now + this.options.backoffMs;
    writeOut(this.key(t), until);
    this.scheduleProbe(t, this.options.backoffMs);
  }

  /** The address answered: in (again). */
  succeeded(t: T): void {
    const key = this.key(t);
    if (outUntil.has(key) || (healthDir !== undefined && readOut(key, Date.now()) !== undefined)) writeOut(key, undefined);
  }

  private scheduleProbe(t: T, delayMs: number): void {
    const probe = this.options.probe;
    const key = this.key(t);
    if (!probe || probing.has(key)) return;
    probing.add(key);
    const timer = setTimeout(() => {
      probe(t.text).then(
        () => {
          probing.delete(key);
          writeOut(key, undefined);
        },
        () => {
          probing.delete(key);
          writeOut(key, Date.now() + this.options.backoffMs);
          this.scheduleProbe(t, this.options.backoffMs);
        },
      );
    }, delayMs);
    // A one-shot process does not wait for a probe: the next one tries the address itself.
    timer.unref();
  }
}

/** `balance=` of a routing line or plugin section. */
export function parseBalance(v: string): Balance {
  if (v === 'failover' || v === 'round-robin') return v;
  throw new Error(`balance must be failover or round-robin, not ${JSON.stringify(v)}`);
}
