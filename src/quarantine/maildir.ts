// The per-recipient quarantine: a Maildir folder of the recipient's, from a template in the settings
// (`/home/vpopmail/domains/%d/%u/Maildir/.Quarantine`). %u and %d are filled in only from a plain
// address (SPEC §7: nothing from an address becomes a path unchecked). A message is written the Maildir
// way: tmp/<unique>, fsync, renamed to new/<unique>, fsync — at the commit point, before the message is
// accepted; taken back when it ends up deferred. What a killed run of ours left in tmp/ is swept when a
// later process first writes to that folder (only names of ours; other programs' files are theirs).

import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';

import { isAlive, syncDir, withPrefix, writePrivateFile } from '../intake/files.js';
import { STALE_MS, sweepOnFirstUse } from '../intake/workdir.js';
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

/**
 * Why `folder` cannot take a copy without making up a Maildir (undefined: it can): the folder exists
 * as a directory, or its parent — the recipient's Maildir — does and the folder can be made in it.
 * Checked while the plugin runs; nothing is created here (a dry run makes nothing).
 */
export function maildirProblem(folder: string): string | undefined {
  try {
    const st = lstatSync(folder);
    return st.isDirectory() ? undefined : `${folder} is not a directory (symlinks are refused)`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${folder}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  const parent = dirname(folder);
  try {
    if (statSync(parent).isDirectory()) return undefined;
    return `the Maildir ${parent} is not a directory`;
  } catch (err) {
    return `the Maildir ${parent} is missing (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
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
  delivered += 1;
  return `${sec}.M${usec}P${process.pid}Q${delivered}R${randomBytes(8).toString('hex')}.${escapeHost(host)}`;
}

/** Our unique names (uniqueName): the PID and the host they were made on. */
const OURS = /^\d+\.M\d+P(\d+)Q\d+R[0-9a-f]{16}\.(.+)$/;

/**
 * Remove from a folder's tmp/ what a run of ours left there: files with our kind of name whose process
 * (on this host) is gone, or older than STALE_MS. Files of other programs and other hosts' fresh files stay.
 */
export function sweepMaildirTmp(tmp: string, host = hostname(), now = Date.now()): number {
  const safeHost = escapeHost(host);
  let removed = 0;
  for (const name of readdirSync(tmp)) {
    const m = OURS.exec(name);
    if (!m) continue;
    const path = join(tmp, name);
    try {
      const st = lstatSync(path);
      if (!st.isFile()) continue;
      const pid = Number(m[1]);
      const orphan = m[2] === safeHost && pid !== process.pid && !isAlive(pid);
      if (orphan || now - st.mtimeMs > STALE_MS) {
        unlinkSync(path);
        removed++;
      }
    } catch {
      // raced with another sweeper
    }
  }
  return removed;
}

function escapeHost(host: string): string {
  return host.replace(/\//g, '\\057').replace(/:/g, '\\072') || 'localhost';
}

/** A copy in a Maildir folder: written and fsynced under tmp/ by prepareMaildir, put in new/ by commit(). */
export interface MaildirItem extends PendingItem {
  readonly name: string;
}

/**
 * Write `prefix` + the message to <folder>/tmp/<unique> (fsynced); commit() renames it into new/ and
 * fsyncs new/; discard() removes it, before or after commit (after: from new/, or from cur/ where a
 * mail client may have moved it already).
 */
export async function prepareMaildir(folder: string, prefix: Buffer, message: MessageView, host?: string): Promise<MaildirItem> {
  ensureDir(folder);
  for (const sub of ['tmp', 'new', 'cur']) ensureDir(join(folder, sub));
  sweepOnFirstUse(join(folder, 'tmp'), (dir) => sweepMaildirTmp(dir, host));
  const name = uniqueName(host);
  const tmp = join(folder, 'tmp', name);
  const written = await writePrivateFile(tmp, withPrefix([prefix], message.chunks()));
  if (written !== prefix.length + message.size) {
    unlinkSync(tmp);
    throw new Error(`wrote ${written} bytes, expected ${prefix.length + message.size}`);
  }
  let state: 'pending' | 'kept' | 'gone' = 'pending';
  return {
    id: name,
    name,
    commit: () => {
      if (state !== 'pending') return;
      renameSync(tmp, join(folder, 'new', name));
      state = 'kept';
      syncDir(join(folder, 'new'));
    },
    discard: () => {
      if (state === 'gone') return;
      const was = state;
      state = 'gone';
      if (was === 'pending') return unlinkQuietly(tmp);
      if (unlinkQuietly(join(folder, 'new', name))) return syncDir(join(folder, 'new'));
      // Already seen by a mail client: cur/<name>:2,<flags>.
      for (const n of readdirSync(join(folder, 'cur'))) {
        if (n === name || n.startsWith(`${name}:`)) unlinkQuietly(join(folder, 'cur', n));
      }
    },
  };
}

function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}
