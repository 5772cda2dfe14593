// Logins, kept in the memory of the web process: a random id (the cookie) → who, whether an admin, the
// CSRF token of the session and when it was last used. A login ends after `idleMs` without use, on
// logout, and when the process restarts (users then log in again: nothing to leak from disk, nothing
// to share between hosts). Bounded: past `max` live sessions the least recently used one goes, and one
// user has at most `perUser` (their least recently used goes): logging in over and over with one
// password must not push everyone else's logins out.

import { randomBytes } from 'node:crypto';

export interface Session {
  readonly id: string;
  readonly user: string;
  readonly admin: boolean;
  /** Sent back in every form of this session; a POST without it changes nothing. */
  readonly csrf: string;
  readonly created: number;
  lastSeen: number;
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export class Sessions {
  // A Map keeps insertion order: re-inserting on use makes the first entry the least recently used.
  private readonly live = new Map<string, Session>();

  constructor(
    readonly idleMs: number,
    private readonly max = 10_000,
    private readonly perUser = 20,
  ) {}

  create(user: string, admin: boolean, now = Date.now()): Session {
    this.sweep(now);
    const mine = [...this.live.values()].filter((x) => x.user === user);
    for (const old of mine.slice(0, Math.max(0, mine.length - this.perUser + 1))) this.live.delete(old.id);
    while (this.live.size >= this.max) this.live.delete(this.live.keys().next().value!);
    const s: Session = { id: randomToken(), user, admin, csrf: randomToken(), created: now, lastSeen: now };
    this.live.set(s.id, s);
    return s;
  }

  /** The session of this id if it is live (and it is then used: its idle time starts again). */
  get(id: string | undefined, now = Date.now()): Session | undefined {
    if (id === undefined) return undefined;
    const s = this.live.get(id);
    if (!s) return undefined;
    this.live.delete(id);
    if (now - s.lastSeen >= this.idleMs) return undefined;
    s.lastSeen = now;
    this.live.set(id, s);
    return s;
  }

  destroy(id: string): void {
    this.live.delete(id);
  }

  /** Forget the sessions idle for too long (oldest first: stop at the first live one). */
  sweep(now = Date.now()): void {
    for (const [id, s] of this.live) {
      if (now - s.lastSeen < this.idleMs) break;
      this.live.delete(id);
    }
  }

  get size(): number {
    return this.live.size;
  }
}
