// Where the embedded store lives, without loading it: the daemon's passes check whether a home has
// anything to work on before they open (or create) a store.

import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The store's file under the home. */
export const STORE_FILE = 'store.sqlite';

/** Has this home ever quarantined anything (a quarantine directory or a store)? */
export function hasQuarantine(home: string): boolean {
  return existsSync(join(home, 'quarantine')) || existsSync(join(home, STORE_FILE));
}
