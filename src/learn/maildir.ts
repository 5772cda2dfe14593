// Reading users' Maildirs without changing anything in them: Maildir++ (the inbox's cur/ and new/, a
// folder per `.Name` directory, `.Junk.Sub` a subfolder of `.Junk`), messages only in cur/ and new/
// (tmp/ is mail still being written), flags from the name's `:2,FLAGS`. Nothing is renamed, no flag is
// set, symbolic links are not followed, and files are opened for reading only (O_NOATIME where the
// kernel lets us: reading mail is no reason to change its times either).

import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** Messages larger than this are not taught (no learner wants them: spamc's own limit is 500 KB). */
export const MAX_LEARN_BYTES = 10 * 1024 * 1024;

export interface UserMaildir {
  /** The user's address, lower case. */
  readonly user: string;
  readonly maildir: string;
}

export interface MaildirFile {
  readonly path: string;
  /** Maildir flags (`S` seen, `T` trashed, `F` flagged, `R` replied, `D` draft). */
  readonly flags: string;
}

function isDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** A Maildir (or a Maildir++ folder): a directory with cur/ and new/. */
export function isMaildir(path: string): boolean {
  return isDir(join(path, 'cur')) && isDir(join(path, 'new'));
}

const NAME = /^[A-Za-z0-9._+=-][^/\s@]*$/;

/**
 * Every user Maildir under `root`: vpopmail's `domains/DOMAIN/USER/Maildir` (root = ~vpopmail), and
 * plain `USER/Maildir` (root = the directory of the users' homes, /home), that user being
 * USER@`defaultDomain` as qmail names local users.
 */
export function userMaildirs(root: string, defaultDomain: string | undefined): UserMaildir[] {
  const out: UserMaildir[] = [];
  const domains = join(root, 'domains');
  if (isDir(domains)) {
    for (const d of list(domains)) {
      if (!NAME.test(d) || !isDir(join(domains, d))) continue;
      for (const u of list(join(domains, d))) {
        const md = join(domains, d, u, 'Maildir');
        if (NAME.test(u) && isMaildir(md)) out.push({ user: `${u}@${d}`.toLowerCase(), maildir: md });
      }
    }
  }
  if (defaultDomain !== undefined) {
    for (const u of list(root)) {
      if (u === 'domains' || !NAME.test(u)) continue;
      const md = join(root, u, 'Maildir');
      if (isMaildir(md)) out.push({ user: `${u}@${defaultDomain}`.toLowerCase(), maildir: md });
    }
  }
  return out;
}

/** The folders of a Maildir: the inbox ('') and each `.Name` directory that is a Maildir. */
export function folders(maildir: string): { name: string; path: string }[] {
  const out = [{ name: '', path: maildir }];
  for (const n of list(maildir)) if (n.startsWith('.') && n !== '.' && n !== '..' && isMaildir(join(maildir, n))) out.push({ name: n, path: join(maildir, n) });
  return out;
}

/** Is `folder` one of `names`, or a subfolder of one (`.Junk.2026`)? Case-insensitive, as IMAP servers treat them. */
export function inFolders(folder: string, names: readonly string[]): boolean {
  const f = folder.toLowerCase();
  return names.some((n) => f === n.toLowerCase() || f.startsWith(`${n.toLowerCase()}.`));
}

/** The flags in a Maildir file name (`1700000000.M1P2.host,S=123:2,RS` → `RS`). */
export function flagsOf(name: string): string {
  const i = name.lastIndexOf(':2,');
  return i < 0 ? '' : name.slice(i + 3);
}

/**
 * The messages of one folder: new/ then cur/, regular files only, owned by the folder's owner (a file
 * of someone else's hard-linked into a Maildir is not that user's mail to teach from).
 */
export function folderMessages(folder: string): MaildirFile[] {
  const out: MaildirFile[] = [];
  let owner: number;
  try {
    owner = lstatSync(folder).uid;
  } catch {
    return out;
  }
  for (const sub of ['new', 'cur']) {
    for (const n of list(join(folder, sub))) {
      if (n.startsWith('.')) continue;
      const path = join(folder, sub, n);
      try {
        const st = lstatSync(path);
        if (!st.isFile() || st.uid !== owner) continue;
      } catch {
        continue; // moved or deleted by the user's mail client meanwhile
      }
      out.push({ path, flags: sub === 'new' ? '' : flagsOf(n) });
    }
  }
  return out;
}

const NOATIME = (constants as { O_NOATIME?: number }).O_NOATIME ?? 0;

/** A message's bytes, read only; undefined when it went away meanwhile or is too large to teach. */
export function readMessage(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | NOATIME);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // O_NOATIME is only for the file's owner (or root): then an ordinary read.
    if (code === 'EPERM' && NOATIME !== 0) fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    else if (code === 'ENOENT') return undefined;
    else throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_LEARN_BYTES) return undefined;
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The user a path in a vpopmail tree belongs to (`.../domains/DOMAIN/USER/Maildir/...`), if it is one. */
export function vpopmailUser(path: string): string | undefined {
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 3; i--) {
    if (parts[i] === 'Maildir' && parts[i - 3] === 'domains' && NAME.test(parts[i - 1]!) && NAME.test(parts[i - 2]!)) return `${parts[i - 1]}@${parts[i - 2]}`.toLowerCase();
  }
  return undefined;
}

