// Opening the store a site uses: the embedded SQLite file in $NQQUEUE_HOME, or (`store =
// postgres://...`) one PostgreSQL database shared by several hosts, behind the same interface.
// Loaded lazily: the queue path imports this only for a message that needs the store; the PostgreSQL
// engine (and its client library) only when the settings name it.

import { closeSync, fstatSync, openSync, readSync, statSync, constants } from 'node:fs';
import { join } from 'node:path';

import type { Settings } from '../config/settings.js';
import { ensurePrivateDir } from '../intake/workdir.js';
import { permissionText } from '../text/permission.js';
import { STORE_FILE } from './file.js';
import { SqliteStore } from './sqlite.js';
import { StoreError, type Store } from './types.js';

export { STORE_FILE } from './file.js';

/**
 * The PostgreSQL password from `store_password_file`: its first line. The file must be a regular file
 * (not a symlink) readable by NQqueue's user only: a password others can read is refused, not used.
 */
export function readPasswordFile(path: string, options: { anyOwner?: boolean } = {}): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'it is a symbolic link (refused: name the file itself)' : permissionText(path, err);
    throw new StoreError(`cannot read store_password_file ${path}: ${why}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new StoreError(`store_password_file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new StoreError(`store_password_file ${path} can be read by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it (and change the password if it was exposed)`);
    }
    const uid = process.geteuid?.();
    if (!options.anyOwner && uid !== undefined && st.uid !== uid) throw new StoreError(`store_password_file ${path} belongs to uid ${st.uid}, not to NQqueue's user (uid ${uid}): chown it`);
    const buf = Buffer.alloc(Math.min(st.size, 4096));
    const n = readSync(fd, buf, 0, buf.length, 0);
    const password = buf.subarray(0, n).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (password === '') throw new StoreError(`store_password_file ${path} is empty: its first line is the password`);
    return password;
  } finally {
    closeSync(fd);
  }
}

/** Open the store of `home` (created and migrated on first use). Rejects with a StoreError when it cannot. */
export async function openStore(home: string, settings: Settings): Promise<Store> {
  if (settings.store !== 'sqlite') {
    const password = settings.storePasswordFile === undefined ? undefined : readPasswordFile(settings.storePasswordFile);
    const { PostgresStore } = await import('./postgres.js');
    return PostgresStore.open({ url: settings.store, password, timeoutMs: settings.storeTimeoutMs });
  }
  try {
    ensurePrivateDir(home);
  } catch (err) {
    throw new StoreError(`cannot use the store in ${home}: ${(err as Error).message}`, { cause: err });
  }
  return new SqliteStore(join(home, STORE_FILE));
}

/** A store open for a long-lived process, and which file it opened (to notice one deleted or replaced). */
interface Shared {
  readonly store: Promise<Store>;
  file?: { readonly dev: number; readonly ino: number };
  readonly graceMs: number;
}

const open = new Map<string, Shared>();

/** The identity of the store file now; undefined when there is none. */
function fileId(home: string): { dev: number; ino: number } | undefined {
  try {
    const st = statSync(join(home, STORE_FILE));
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/**
 * Forget a shared store, and close it once the messages that may still be using it are done (their
 * deadline): closing it now would fail them, never closing it would keep a deleted file (and its
 * descriptors) alive for the life of the daemon.
 */
function retire(home: string, shared: Shared): void {
  if (open.get(home) === shared) open.delete(home);
  void shared.store.then(
    (s) => setTimeout(() => void s.close().catch(() => undefined), shared.graceMs).unref(),
    () => undefined,
  );
}

/**
 * One open store per home for a long-lived process (the daemon opens it once, not per message). A
 * store that failed is forgotten, so the next caller tries again: a store repaired by the admin is
 * used again without a restart. So is a store file deleted or replaced by hand (moved to a backup, a
 * broken one put back): an open SQLite connection would go on writing into the old file unseen, and
 * items indexed there would be found by nobody; one stat per message notices it.
 */
export async function sharedStore(home: string, settings: Settings): Promise<Store> {
  let shared = open.get(home);
  if (shared?.file) {
    const now = fileId(home);
    if (!now || now.dev !== shared.file.dev || now.ino !== shared.file.ino) {
      retire(home, shared);
      shared = undefined;
    }
  }
  if (!shared) {
    const made: Shared = { store: openStore(home, settings), graceMs: settings.deadlineMs ?? 0 };
    shared = made;
    open.set(home, made);
    made.store.then(
      (s) => {
        if (s.engine === 'sqlite') made.file = fileId(home);
      },
      () => {
        if (open.get(home) === made) open.delete(home);
      },
    );
  }
  return shared.store;
}

/** After a store failed in use: the next sharedStore() opens it again. */
export function dropSharedStore(home: string, store: Store): void {
  const shared = open.get(home);
  if (!shared) return;
  void shared.store.then((s) => {
    if (s === store && open.get(home) === shared) retire(home, shared);
  });
}
