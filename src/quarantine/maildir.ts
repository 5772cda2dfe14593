// The per-recipient quarantine: a Maildir folder of the recipient's, from a template in the settings
// (`/home/vpopmail/domains/%d/%u/Maildir/.Quarantine`). %u and %d are filled in only from a plain
// address (SPEC §7: nothing from an address becomes a path unchecked). A message is written the Maildir
// way: tmp/<unique>, fsync, then renamed to new/<unique> — here, when the message's fate is known.

import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { syncDir, withPrefix, writePrivateFile } from '../intake/files.js';
import type { MessageView } from '../pipeline/types.js';
import { plainAddress } from '../qmail/plain-address.js';
import type { PendingItem } from './store.js';

/** Check a folder template once: an absolute path, no `..`, only %u, %d and %% escapes. */
export function checkTemplate(template: string): string {
  if (!template.startsWith('/')) throw new Error(`maildir template ${JSON.stringify(template)} must be an absolute path`);
  if (template.split('/').some((part) => part === '..' || part === '.')) throw new Error(`maildir template ${JSON.stringify(template)} may not contain . or .. components`);
  const bad = /%[^ud%]|%$/.exec(template);
  if (bad) throw new Error(`maildir template ${JSON.stringify(template)}: unknown escape ${bad[0]} (use %u, %d, %%)`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(template)) throw new Error('maildir template has a control character');
  return template;
}

/** The folder of a recipient, or why there is none (an address that is not plain). */
export function maildirFolder(template: string, address: string): { folder: string } | { reason: string } {
  const plain = plainAddress(address);
  if (!plain) return { reason: `recipient ${JSON.stringify(address)} is not a plain address, so it does not name a Maildir folder` };
  return { folder: template.replace(/%[ud%]/g, (m) => (m === '%u' ? plain.local : m === '%d' ? plain.domain : '%')) };
}

/** A real directory (never a symlink); created 0700 when missing, its parent must exist. */
function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${dir} is not a directory (symlinks are refused)`);
}

let delivered = 0;

/** A Maildir unique name: time, microseconds, pid, a counter and randomness, the host ('/' and ':' escaped). */
export function uniqueName(host = hostname(), now = Date.now()): string {
  const sec = Math.floor(now / 1000);
  const usec = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
  const safeHost = host.replace(/\//g, '\\057').replace(/:/g, '\\072') || 'localhost';
  delivered += 1;
  return `${sec}.M${usec}P${process.pid}Q${delivered}R${randomBytes(8).toString('hex')}.${safeHost}`;
}

/** Write `prefix` + the message to <folder>/tmp/<unique> (fsynced); commit() renames it into new/. */
export async function prepareMaildir(folder: string, prefix: Buffer, message: MessageView, host?: string): Promise<PendingItem & { readonly name: string }> {
  ensureDir(folder);
  for (const sub of ['tmp', 'new', 'cur']) ensureDir(join(folder, sub));
  const name = uniqueName(host);
  const tmp = join(folder, 'tmp', name);
  const written = await writePrivateFile(tmp, withPrefix([prefix], message.chunks()));
  if (written !== prefix.length + message.size) {
    unlinkSync(tmp);
    throw new Error(`wrote ${written} bytes, expected ${prefix.length + message.size}`);
  }
  let done = false;
  return {
    id: name,
    name,
    commit: () => {
      if (done) return;
      done = true;
      renameSync(tmp, join(folder, 'new', name));
      syncDir(join(folder, 'new'));
    },
    discard: () => {
      if (done) return;
      done = true;
      try {
        unlinkSync(tmp);
      } catch {
        // already gone
      }
    },
  };
}
