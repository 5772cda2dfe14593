// How a test's separate process opens a PostgreSQL store (the store suite's `child`).

import { parseSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';

export function openPostgres(home: string, url: string): Promise<Store> {
  return openStore(home, parseSettings(`store = ${url}\n`, 'nqqueue.conf'));
}
