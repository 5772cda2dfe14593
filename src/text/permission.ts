// What a permission problem says: the path, who owns it (name and uid, and its mode) and which user
// NQqueue runs as, so the admin knows what to chown or which user to run as without guessing.

import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { userInfo } from 'node:os';

/** A user's name from /etc/passwd (read only when a problem is being described), or "uid N". */
export function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'latin1').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return `${f[0]} (uid ${uid})`;
    }
  } catch {
    // no passwd file to read: the number alone
  }
  return `uid ${uid}`;
}

/** The user this process runs as: "qmaild (uid 1001)". */
export function currentUser(): string {
  const uid = process.geteuid?.() ?? userInfo().uid;
  return userName(uid);
}

/** "owned by root (uid 0), mode 0755" for a path that exists, else undefined. */
export function ownerOf(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `owned by ${userName(st.uid)}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`;
  } catch {
    return undefined;
  }
}

/**
 * The text for a failed file operation on `path`: for EACCES/EPERM, who owns the path (or the
 * nearest directory above it that exists) and who we are; otherwise the error as it was.
 */
export function permissionText(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const base = err instanceof Error ? err.message : String(err);
  if (code !== 'EACCES' && code !== 'EPERM') return base;
  let at = path;
  let owner = ownerOf(at);
  while (owner === undefined && dirname(at) !== at) {
    at = dirname(at);
    owner = ownerOf(at);
  }
  const where = owner === undefined ? '' : at === path ? `${path} is ${owner}` : `${at} is ${owner}`;
  return `permission denied on ${path}${where ? ` (${where})` : ''}; NQqueue runs as ${currentUser()}`;
}
