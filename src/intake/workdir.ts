// Private directories under $NQQUEUE_HOME (0700, ours, never a symlink) and the sweep of files left
// behind by runs that were killed.

import { chmodSync, lstatSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

import { currentUser, permissionText, userName } from '../text/permission.js';
import { isAlive } from './files.js';

/** Make sure `dir` is a real directory, ours, mode 0700. Throws when it is a symlink or someone else's. */
export function ensurePrivateDir(dir: string): string {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create ${dir}: ${permissionText(dir, err)}`, { cause: err });
  }
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${dir} is not a directory (symlinks are refused)`);
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`${dir} is owned by ${userName(st.uid)}, not by ${currentUser()} that NQqueue runs as: run it as the owner, or chown the directory`);
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

/** Partial files older than this are removed whoever made them (a message's deadline is far shorter). */
export const STALE_MS = 6 * 3600_000;
/** A long-lived process (the daemon) sweeps a directory it uses again after this long. */
const RESWEEP_MS = 3600_000;
const swept = new Map<string, number>();

/**
 * Run `sweep(dir)` when this process first uses `dir`, and again on a use more than an hour after the
 * last sweep: files left by killed runs go away without a directory scan per message. Best effort.
 */
export function sweepOnFirstUse(dir: string, sweep: (dir: string) => unknown, now = Date.now()): void {
  const last = swept.get(dir);
  if (last !== undefined && now - last < RESWEEP_MS) return;
  // A daemon that has served many Maildir folders forgets the oldest sweeps rather than grow.
  if (swept.size >= 10_000) swept.clear();
  swept.set(dir, now);
  try {
    sweep(dir);
  } catch {
    // a sweep never fails the message
  }
}

/**
 * Remove working files whose creating process is gone (names start with its PID), or which are older
 * than `maxAgeMs` whoever made them. Returns how many were removed.
 */
export function sweepStale(dir: string, maxAgeMs: number, now = Date.now()): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const m = /^(\d+)\./.exec(name);
    const p = join(dir, name);
    try {
      const st = lstatSync(p);
      if (!st.isFile() && !st.isSymbolicLink()) continue;
      const pid = m ? Number(m[1]) : 0;
      const orphan = pid > 0 && pid !== process.pid && !isAlive(pid);
      if (orphan || now - st.mtimeMs > maxAgeMs) {
        unlinkSync(p);
        removed++;
      }
    } catch {
      // raced with another sweeper
    }
  }
  return removed;
}
