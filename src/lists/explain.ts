// What `nqqueue explain` says about a chain with the lists plugin: the precedence, the entries that match
// this sender (and client) in the lists that apply, which one decides and what it does. Reads the store
// without creating it: explaining never makes files.

import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { Settings } from '../config/settings.js';
import { describeError } from '../errors.js';
import { STORE_FILE } from '../store/file.js';
import type { ListsConfig } from '../plugins/lists.js';
import { decide, entryText, holdersFor, PRECEDENCE_TEXT } from './entry.js';

export async function explainLists(o: {
  home: string;
  settings: Settings;
  config: ListsConfig;
  stage: 'general' | 'per-user';
  sender: string;
  recipient?: string;
  ip?: string;
}): Promise<string[]> {
  const lines = [`      lists ${PRECEDENCE_TEXT}`];
  const holders = o.stage === 'general' ? [{ scope: 'global' as const, owner: '' }] : holdersFor(o.recipient);
  lines.push(`      lists looked up: ${holders.map((h) => (h.scope === 'global' ? 'global' : `${h.scope} ${h.owner}`)).join(', ')}${o.stage === 'general' ? ' (the general stage has no recipient: global only)' : ''}`);
  const who = `<${o.sender}>${o.ip ? ` from ${o.ip}` : ' (no client IP: networks cannot match)'}`;
  if (!existsSync(join(o.home, STORE_FILE))) {
    lines.push(`      lists for ${who}: no store yet (${join(o.home, STORE_FILE)}): no entries, nothing decided`);
    return lines;
  }
  try {
    // As root, reading the store as its owner: SQLite may make its -wal and -shm files on open, and
    // root-owned ones would lock qmail-smtpd's user out of the store.
    const { prepareHome } = await import('../ops/owner.js');
    prepareHome(o.home, 'explain', { createAsRoot: false });
    const { openStore } = await import('../store/open.js');
    const store = await openStore(o.home, o.settings);
    try {
      const d = decide(await store.matchListEntries({ sender: o.sender, ...(o.ip ? { ip: o.ip } : {}), holders }));
      if (!d.entry) {
        lines.push(`      lists for ${who}: no entry matches: nothing decided, every check runs`);
        return lines;
      }
      const effect = d.entry.action === 'block' ? `refused: "${o.config.text}"` : `allowed: skips ${(d.entry.skip ?? o.config.skip).join(', ') || 'nothing'} (never a virus check)`;
      lines.push(`      lists for ${who}: ${entryText(d.entry, o.config.skip)} [${d.entry.id}] decides: ${effect}`);
      for (const e of d.matches.slice(1)) lines.push(`        also matching, not deciding: ${entryText(e, o.config.skip)} [${e.id}]`);
    } finally {
      await store.close().catch(() => undefined);
    }
  } catch (err) {
    lines.push(`      lists for ${who}: the store cannot be used (${describeError(err)}): mail would be deferred`);
  }
  return lines;
}
