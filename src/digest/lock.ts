// One digest run at a time per home: `nqqueue digest` from cron and the schedule in `nqqueue serve`
// may both be set up, and two runs reading the same bookkeeping at once would each mail the same items.
// The lock is a file holding the runner's PID, linked into place whole; one whose process is gone, or that has
// not been touched for an hour (a PID reused by another program), is taken over.

import { closeSync, constants, linkSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { isAlive } from '../intake/files.js';

export const LOCK_FILE = 'digest.lock';
const STALE_MS = 3_600_000;

export interface DigestLock {
  /** Show the run is still moving (a long run is not taken for a dead one). */
  touch(): void;
  release(): void;
}

/** The lock, or the PID of the run that holds it. */
export function takeDigestLock(home: string): DigestLock | { heldBy: number } {
  const path = join(home, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    // The lock appears whole, PID included (written to a file of our own, then linked into place):
    // a lock file made empty first and written after could be read empty by a second run, taken for a
    // dead one's and removed, and both would mail the same digests.
    const mine = `${path}.${process.pid}.tmp`;
    rmSync(mine, { force: true });
    const fd = openSync(mine, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(mine, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let pid = 0;
      let age = 0;
      try {
        pid = Number.parseInt(readFileSync(path, 'latin1'), 10) || 0;
        age = Date.now() - statSync(path).mtimeMs;
      } catch {
        continue; // removed meanwhile: try again
      }
      if (pid > 0 && pid !== process.pid && isAlive(pid) && age < STALE_MS) return { heldBy: pid };
      rmSync(path, { force: true });
      continue;
    } finally {
      rmSync(mine, { force: true });
    }
    return {
      touch: () => {
        try {
          const now = new Date();
          utimesSync(path, now, now);
        } catch {
          // best effort
        }
      },
      release: () => {
        try {
          if (Number.parseInt(readFileSync(path, 'latin1'), 10) === process.pid) rmSync(path, { force: true });
        } catch {
          // gone already
        }
      },
    };
  }
  throw new Error(`cannot take ${path}`);
}
