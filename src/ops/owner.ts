// Who writes under $NQQUEUE_HOME. Everything there belongs to one user (the one qmail-smtpd runs as):
// a command run as root switches to that user before it writes anything, so root never leaves
// root-owned files in someone else's home (a root-owned spool/ makes the next partial delivery
// failure defer, and the sender's retry duplicates the copies already queued).
//
// Loaded by queue mode too: node:fs and node:path only, and nothing at all happens unless run as root.

import { lstatSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { NqqError } from '../errors.js';

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** The home does not exist, and root will not make it for a command that has nothing to do without it. */
export class NoHomeError extends NqqError {
  constructor(readonly home: string) {
    super(
      'NQQ_ERR_OWNER',
      `NQQUEUE_HOME ${home} does not exist yet (not created as root: it must belong to the user qmail-smtpd runs as: ` +
        `install -d -m 0700 -o qmaild -g nofiles ${home})`,
    );
    this.name = 'NoHomeError';
  }
}

/** Thrown when a command must not run as the current user; the message says which user to run it as. */
export class OwnerError extends NqqError {
  constructor(message: string) {
    super('NQQ_ERR_OWNER', message);
    this.name = 'OwnerError';
  }
}

/** /etc/passwd lines (name:x:uid:gid:gecos:home:shell). NSS-only users are not seen; callers fall back. */
function passwdLines(): PasswdEntry[] {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return [];
  }
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! });
  }
  return out;
}

export function userByUid(uid: number): PasswdEntry | undefined {
  return passwdLines().find((e) => e.uid === uid);
}

export function userByName(name: string): PasswdEntry | undefined {
  if (/^\d+$/.test(name)) return userByUid(Number(name));
  return passwdLines().find((e) => e.name === name);
}

/** `qmaild (uid 64011)`, or `uid 64011` when it has no passwd entry. */
export function describeUid(uid: number): string {
  const e = userByUid(uid);
  return e ? `${e.name} (uid ${uid})` : `uid ${uid}`;
}

function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

interface Target {
  readonly uid: number;
  readonly why: string;
  /** The group to use when the user has no passwd entry. */
  readonly fallbackGid: number;
}

/** Whose files go under `home`: its owner; for a home not made yet, the owner of its parent. */
function homeOwner(home: string): Target | undefined {
  try {
    const st = lstatSync(home);
    return { uid: st.uid, why: `the owner of ${home}`, fallbackGid: st.gid };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
  }
  try {
    const parent = dirname(home);
    const st = statSync(parent);
    // Root's own directory (/var/qmail): root makes the home there, owned by root, as anyone would.
    return { uid: st.uid, why: `the owner of ${parent} (${home} does not exist yet)`, fallbackGid: st.gid };
  } catch {
    return undefined;
  }
}

/**
 * Become `user` for good: supplementary groups, then the group, then the user (the order matters:
 * once the uid is dropped, the groups cannot be changed any more). Throws OwnerError when it fails.
 */
export function switchTo(uid: number, gid: number, name: string | undefined): void {
  const p = process as NodeJS.Process & { initgroups?: (user: string | number, extraGroup: string | number) => void };
  try {
    if (name !== undefined && p.initgroups) p.initgroups(name, gid);
    else p.setgroups!([gid]);
    p.setgid!(gid);
    p.setuid!(uid);
  } catch (err) {
    throw new OwnerError(`cannot switch to ${describeUid(uid)}: ${(err as Error).message}`);
  }
  if (process.getuid?.() !== uid || process.geteuid?.() !== uid || process.getegid?.() !== gid) {
    throw new OwnerError(`cannot switch to ${describeUid(uid)}: still uid ${process.geteuid?.()}`);
  }
}

/**
 * Run as the owner of `home`: as root, switch to it (its passwd group and supplementary groups; its
 * home's group when it has no passwd entry) — never staying root in someone else's home. Returns the
 * user switched to, or undefined when nothing changed (not root, or the home is root's own).
 * Throws OwnerError when root cannot switch safely.
 */
export function becomeHomeOwner(home: string): string | undefined {
  if (!isRoot()) return undefined;
  const target = homeOwner(home);
  if (!target || target.uid === 0) return undefined;
  const entry = userByUid(target.uid);
  const gid = entry?.gid ?? target.fallbackGid;
  if (gid === 0) {
    throw new OwnerError(
      `${home}: ${target.why} is uid ${target.uid}, which has no passwd entry, and its group is root: ` +
        `give it the group of the user qmail-smtpd runs as (chown ${target.uid}:GROUP ${home}), or run this as that user`,
    );
  }
  switchTo(target.uid, gid, entry?.name);
  return entry?.name ?? `uid ${target.uid}`;
}

function cannotCreate(home: string, code: string | undefined, err: Error, uid: number | undefined): OwnerError {
  const parent = dirname(home);
  const why = code === 'ENOENT' ? `${parent} does not exist` : code === 'EACCES' ? `${parent} is not writable by ${describeUid(uid ?? -1)}` : err.message;
  return new OwnerError(
    `cannot create NQQUEUE_HOME ${home}: ${why}; create it as root for the user qmail-smtpd runs as: ` +
      `install -d -m 0700 -o qmaild -g nofiles ${home}`,
  );
}

/**
 * For the commands that write under the home (`flush`, `quarantine release`/`delete`, `serve`): run as
 * its owner (switching when root), refuse anyone else with the user to run as, and create the home on
 * first use (0700, ours) when its parent allows. Throws OwnerError with a ready-to-print reason.
 */
export function prepareHome(home: string, command: string, options: { createAsRoot?: boolean } = {}): string | undefined {
  const switched = becomeHomeOwner(home);
  const uid = process.geteuid?.();
  let st;
  try {
    st = lstatSync(home);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new OwnerError(`${home}: ${(err as Error).message}`);
  }
  if (st === undefined) {
    // Still root here means a root-owned parent: a home made now would be root's, and qmail-smtpd's
    // user could not spool into it later. Commands with nothing to do without a home make none.
    if (uid === 0 && options.createAsRoot === false) throw new NoHomeError(home);
    try {
      mkdirSync(home, { mode: 0o700 });
      return switched;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw cannotCreate(home, code, err as Error, uid);
    }
    // Another process (a message, a second command) made it between the look and the mkdir: what it
    // made is checked like any existing home.
    st = lstatSync(home);
  }
  if (st.isSymbolicLink() || !st.isDirectory()) throw new OwnerError(`NQQUEUE_HOME ${home} is not a directory (symlinks are refused)`);
  if (uid !== undefined && st.uid !== uid && st.uid === 0) {
    // Most likely left by a command run as root before this release: the home should be qmail-smtpd's.
    throw new OwnerError(
      `NQQUEUE_HOME ${home} belongs to root, not to ${describeUid(uid)}: give it to the user qmail-smtpd runs as ` +
        `(chown -R qmaild:nofiles ${home}), or run "nqqueue ${command}" as root`,
    );
  }
  if (uid !== undefined && st.uid !== uid) {
    throw new OwnerError(
      `NQQUEUE_HOME ${home} belongs to ${describeUid(st.uid)}, not to ${describeUid(uid)}: ` +
        `run "nqqueue ${command}" as ${userByUid(st.uid)?.name ?? `uid ${st.uid}`} (or as root, which switches to it)`,
    );
  }
  return switched;
}
