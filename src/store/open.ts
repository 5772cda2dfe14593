// Opening the store a site uses. Today that is the embedded SQLite file in $NQQUEUE_HOME; an engine for
// several hosts (PostgreSQL) would be chosen here from the settings, behind the same interface.
// Loaded lazily: the queue path imports this only for a message being quarantined.

import { join } from 'node:path';

import type { Settings } from '../config/settings.js';
import { ensurePrivateDir } from '../intake/workdir.js';
import { STORE_FILE } from './file.js';
import { SqliteStore } from './sqlite.js';
import { StoreError, type Store } from './types.js';

export { STORE_FILE } from './file.js';

/** Open the store of `home` (created and migrated on first use). Rejects with a StoreError when it cannot. */
export async function openStore(home: string, _settings: Settings): Promise<Store> {
  try {
    ensurePrivateDir(home);
  } catch (err) {
    throw new StoreError(`cannot use the store in ${home}: ${(err as Error).message}`, { cause: err });
  }
  return new SqliteStore(join(home, STORE_FILE));
}

const open = new Map<string, Promise<Store>>();

/**
 * One open store per home for a long-lived process (the daemon opens it once, not per message). A
 * store that failed is forgotten, so the next caller tries again: a store repaired by the admin is
 * used again without a restart.
 */
export function sharedStore(home: string, settings: Settings): Promise<Store> {
  let p = open.get(home);
  if (!p) {
    p = openStore(home, settings);
    open.set(home, p);
    p.catch(() => {
      if (open.get(home) === p) open.delete(home);
    });
  }
  return p;
}

/** After a store failed in use: the next sharedStore() opens it again. */
export function dropSharedStore(home: string, store: Store): void {
  const p = open.get(home);
  if (!p) return;
  // Not closed here: other messages in flight may still be using it; it goes with its last user.
  void p.then((s) => {
    if (s === store && open.get(home) === p) open.delete(home);
  });
}
