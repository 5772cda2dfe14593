// How a test's separate process opens the SQLite store of a home (the store suite's `child`).

import { defaultSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';

export function openSqlite(home: string): Promise<Store> {
  return openStore(home, defaultSettings());
}
