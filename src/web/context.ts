// What every route of the console shares: its settings, the quarantine (the store and the actions), the
// logins, the login limits, and the helpers that answer with a page.

import type { FastifyReply, FastifyRequest } from 'fastify';

import type { Quarantine } from '../quarantine/actions.js';
import type { ClientView } from './client.js';
import { sameToken } from './csrf.js';
import type { LoginTokens } from './csrf.js';
import { notice, type Viewer } from './pages/layout.js';
import type { FailureLimiter } from './rate-limit.js';
import type { Session, Sessions } from './session.js';

export interface WebConfig {
  /** The checkpassword program and its arguments. */
  readonly checkpassword: readonly string[];
  /** Lower case. */
  readonly admins: readonly string[];
  /** [web] url is https: cookies are Secure whatever the request says. */
  readonly httpsUrl: boolean;
  readonly trustProxy: boolean;
  /** A login ends after this long without use. */
  readonly sessionMs: number;
  /** The key digest links are signed with. */
  readonly linkKey: Buffer;
  /** Every answer to a login attempt takes at least this long (the same for every kind of failure). */
  readonly loginFloorMs: number;
  readonly checkTimeoutMs: number;
  /** Login failures allowed per address and per client within `failureWindowMs`. */
  readonly maxFailures: number;
  readonly failureWindowMs: number;
}

export interface WebContext {
  readonly config: WebConfig;
  readonly quarantine: Quarantine;
  readonly sessions: Sessions;
  readonly limiter: FailureLimiter;
  readonly loginTokens: LoginTokens;
  readonly log: (line: string) => void;
}

export const SESSION_COOKIE = 'nqq_session';
export const LOGIN_COOKIE = 'nqq_login';

declare module 'fastify' {
  interface FastifyRequest {
    client: ClientView;
    session: Session | undefined;
  }
}

export type Form = Record<string, string | string[] | undefined>;

/** A single field of a form; a field given twice counts as not given (no guessing which one is meant). */
export function field(body: unknown, name: string): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const v = (body as Form)[name];
  return typeof v === 'string' ? v : undefined;
}

/** Every value of a field that may be repeated (the ids of a bulk action). */
export function fields(body: unknown, name: string): string[] {
  if (body === null || typeof body !== 'object') return [];
  const v = (body as Form)[name];
  return typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function sendPage(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

export function viewerOf(s: Session): Viewer {
  return { user: s.user, admin: s.admin, csrf: s.csrf };
}

/** For a page: the session, or a redirect to the login (and undefined). */
export function pageSession(req: FastifyRequest, reply: FastifyReply): Session | undefined {
  if (req.session) return req.session;
  void reply.code(303).header('location', '/login').send();
  return undefined;
}

/**
 * For a change: the session whose CSRF token the form carries, or a refusal page (and undefined).
 * Nothing is done for a POST without a live session and its token.
 */
export function postSession(req: FastifyRequest, reply: FastifyReply): Session | undefined {
  const s = req.session;
  if (!s) {
    sendPage(reply, 403, notice('Not logged in', 'Your login has ended: log in again, then try once more. Nothing was changed.', { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
    return undefined;
  }
  if (!sameToken(field(req.body, 'csrf'), s.csrf)) {
    sendPage(reply, 403, notice('Refused', 'This form did not come from this page (its security token is missing or wrong). Nothing was changed.', { viewer: viewerOf(s), kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
    return undefined;
  }
  return s;
}
