// Signed one-click links (digests): a token bound to one item, one recipient and one action, with an
// expiry, HMAC-SHA256-signed with the site's key. The token says nothing secret (the item id and the
// owner are in it, base64url) but cannot be made or changed without the key. Following a link never
// acts by itself: the console shows the item and asks for one confirming click, and the token's nonce
// is then used up in the store (Store.useToken), so a link acts at most once.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { createWhole } from '../intake/files.js';
import { ensurePrivateDir } from '../intake/workdir.js';

export type LinkAction = 'release' | 'delete' | 'view';
const ACTIONS: readonly LinkAction[] = ['release', 'delete', 'view'];

export interface LinkClaims {
  readonly id: string;
  /** The recipient the item belongs to (lower case). */
  readonly owner: string;
  readonly action: LinkAction;
  /** Milliseconds since the epoch. */
  readonly expires: number;
  /** Random: what Store.useToken records. */
  readonly nonce: string;
}

export type LinkReading = { readonly ok: true; readonly claims: LinkClaims } | { readonly ok: false; readonly why: 'malformed' | 'tampered' | 'expired' };

export const KEY_FILE = 'signing.key';
export const KEY_BYTES = 32;

/**
 * The site's signing key, $NQQUEUE_HOME/signing.key: made (32 random bytes, 0600, never through a
 * symlink) the first time it is asked for. A key file of the wrong size or that others can read is
 * refused: links signed with a leaked key could release anything.
 *
 * A new key is written whole to a private temporary file, fsynced, then hard-linked to its name: the
 * link either appears with all 32 bytes or not at all, so a process that loses the race (or runs
 * after one killed half-way) never reads a partial key, and every process ends up with the one key.
 */
export function signingKey(home: string): Buffer {
  ensurePrivateDir(home);
  const path = join(home, KEY_FILE);
  const existing = readKey(path);
  if (existing) return existing;
  const key = randomBytes(KEY_BYTES);
  // Another process made it first: use theirs.
  if (createWhole(path, key, 0o600) === 'exists') return readKey(path) ?? fail(path, 'vanished while it was being read');
  return key;
}

function fail(path: string, why: string): never {
  throw new Error(`${path} ${why}`);
}

/** The key at `path`, undefined when there is none; throws when the file is not one to trust. */
function readKey(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') fail(path, 'is a symlink: refused (the key must be a file of its own): remove it to make a new key');
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) fail(path, 'is not a regular file');
    if ((st.mode & 0o077) !== 0) fail(path, `can be read by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it, or remove it to make a new key (links already mailed stop working)`);
    const key = readFileSync(fd);
    if (key.length !== KEY_BYTES) fail(path, `is ${key.length} bytes, not ${KEY_BYTES}: remove it to make a new key`);
    return key;
  } finally {
    closeSync(fd);
  }
}

function mac(key: Buffer, body: string): Buffer {
  return createHmac('sha256', key).update(`nqqueue-link-1\n${body}`).digest();
}

/** A token for these claims (a fresh nonce each time), URL-safe. */
export function makeLink(key: Buffer, claims: Omit<LinkClaims, 'nonce'>): string {
  if (key.length !== KEY_BYTES) throw new Error(`a signing key is ${KEY_BYTES} bytes, not ${key.length}`);
  if (!ACTIONS.includes(claims.action)) throw new Error(`not a link action: ${JSON.stringify(claims.action)}`);
  if (!Number.isFinite(claims.expires)) throw new Error(`a link's expiry must be a time, not ${claims.expires}`);
  const full: LinkClaims = { ...claims, nonce: randomBytes(12).toString('base64url') };
  const body = Buffer.from(JSON.stringify([full.id, full.owner, full.action, full.expires, full.nonce])).toString('base64url');
  return `${body}.${mac(key, body).toString('base64url')}`;
}

/** Check a token: its signature first, then its shape, then its expiry. */
export function readLink(key: Buffer, token: string, now = Date.now()): LinkReading {
  if (typeof token !== 'string' || token.length > 2048) return { ok: false, why: 'malformed' };
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, why: 'malformed' };
  // Compared as text, not as decoded bytes: the last of 43 base64url characters carries two unused
  // bits, so four spellings decode to the same signature and a changed token would still pass.
  const given = Buffer.from(m[2]!, 'latin1');
  const want = Buffer.from(mac(key, m[1]!).toString('base64url'), 'latin1');
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, why: 'tampered' };
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, why: 'malformed' };
  }
  if (!Array.isArray(parts) || parts.length !== 5) return { ok: false, why: 'malformed' };
  const [id, owner, action, expires, nonce] = parts as unknown[];
  if (typeof id !== 'string' || typeof owner !== 'string' || typeof nonce !== 'string' || typeof expires !== 'number' || !ACTIONS.includes(action as LinkAction)) {
    return { ok: false, why: 'malformed' };
  }
  if (now >= expires) return { ok: false, why: 'expired' };
  return { ok: true, claims: { id, owner, action: action as LinkAction, expires, nonce } };
}
