// CSRF tokens. Logged in, every form carries the session's own token (Session.csrf) and a POST must
// send it back. Before login there is no session: the login form is bound to a random cookie of its own
// (`nqq_login`) by an HMAC under a key of this process, so a page on another site can neither read the
// pair nor make one (the cookie is HttpOnly and SameSite=Strict besides).

import { createHmac, timingSafeEqual } from 'node:crypto';

import { randomToken } from './session.js';

export function sameToken(given: unknown, want: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class LoginTokens {
  private readonly key = randomToken();

  /** A new value for the login cookie. */
  cookie(): string {
    return randomToken(18);
  }

  /** The form token that goes with a login cookie. */
  formToken(cookie: string): string {
    return createHmac('sha256', this.key).update(`login\n${cookie}`).digest('base64url');
  }

  check(cookie: string | undefined, given: unknown): boolean {
    return cookie !== undefined && /^[A-Za-z0-9_-]{16,64}$/.test(cookie) && sameToken(given, this.formToken(cookie));
  }
}
