// Files that must land whole: private (0600, created new, never through a symlink), written fully,
// fsynced; directories fsynced after a rename. Shared by the retry spool and the quarantine stores.

import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, linkSync, lstatSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { open } from 'node:fs/promises';

import { PRIVATE_FILE } from './message.js';

/** Make a rename or a new entry in `dir` durable. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Create `path` with `bytes`, whole or not at all, and never over a file that is there: written to a
 * new temporary file beside it (`mode` whatever the umask, never through a symlink), fsynced, then
 * hard-linked to its name and the directory fsynced. 'exists' when a file (or a symlink) of that name
 * was there, or appeared first: someone else's, left as it is.
 */
export function createWhole(path: string, bytes: Buffer, mode: number): 'wrote' | 'exists' {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    try {
      fchmodSync(fd, mode);
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
      throw err;
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  syncDir(dirname(path));
  return 'wrote';
}

/** Whether anything is at `path`: a file, a directory, a symlink (a dangling one too). */
export function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Is the process `pid` still there (ours or someone else's)? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Write `parts` into a new private file at `path` and fsync it; returns the bytes written. On any
 * failure the file is removed and the error thrown. Each part is finished with before the next is
 * asked for, so reused buffers (MessageView.chunks()) are safe.
 */
export async function writePrivateFile(path: string, parts: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<number> {
  const fh = await open(path, PRIVATE_FILE, 0o600);
  let pos = 0;
  try {
    for await (const b of parts) {
      let off = 0;
      while (off < b.length) {
        const { bytesWritten } = await fh.write(b, off, b.length - off, pos);
        off += bytesWritten;
        pos += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    return pos;
  } catch (err) {
    await fh.close().catch(() => {});
    try {
      unlinkSync(path);
    } catch {
      // not there
    }
    throw err;
  }
}

/** The bytes of a message with `before` in front, as parts for writePrivateFile. */
export async function* withPrefix(before: readonly Buffer[], rest: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  yield* before;
  yield* rest;
}
