// The gauges read when they are asked for (a scrape, a rollup pass): the retry spool's size and oldest
// copy, and the quarantine's held items (from the store, opened only where a quarantine exists).

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type { Settings } from '../config/settings.js';
import { hasQuarantine } from '../store/file.js';

export function spoolGauges(home: string, now = Date.now()): { items: number; oldestS: number } {
  const dir = join(home, 'spool', 'new');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return { items: 0, oldestS: 0 };
  }
  let oldest = now;
  for (const n of names) {
    try {
      oldest = Math.min(oldest, statSync(join(dir, n)).mtimeMs);
    } catch {
      // delivered meanwhile
    }
  }
  return { items: names.length, oldestS: names.length ? Math.max(0, Math.round((now - oldest) / 1000)) : 0 };
}

/** Held quarantined items; undefined when the store cannot be read. */
export async function quarantineItems(home: string, settings: Settings): Promise<number | undefined> {
  if (!hasQuarantine(home)) return 0;
  try {
    const { sharedStore } = await import('../store/open.js');
    const store = await sharedStore(home, settings);
    return (await store.findItems({ status: ['held'], limit: 1 })).total;
  } catch {
    return undefined;
  }
}
