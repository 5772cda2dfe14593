// Logging in and out. The address and password go to the checkpassword program; the answer is the same
// page, after the same minimum time, for an address that does not exist and for a wrong password, and
// failures are limited per address and per client (429 with Retry-After past the limit, before the
// program is even asked). A login gets a new session id (never one the browser brought).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { visible } from '../../text/visible.js';
import { checkPassword, type CheckResult } from '../checkpassword.js';
import { field, LOGIN_COOKIE, postSession, SESSION_COOKIE, sendPage, type WebContext } from '../context.js';
import { notice } from '../pages/layout.js';
import { loginPage } from '../pages/login.js';
import { clientKey } from '../rate-limit.js';

const ADDRESS = /^[^@\s]{1,200}@[^@\s]{1,200}$/;
/** Checks running at once; more wait for nothing: they are told to try again. */
const MAX_CHECKS = 8;

function cookieOptions(req: FastifyRequest) {
  return { path: '/', httpOnly: true, sameSite: 'strict' as const, secure: req.client.https };
}

function loginCookie(ctx: WebContext, req: FastifyRequest, reply: FastifyReply): string {
  const have = req.cookies[LOGIN_COOKIE];
  if (have !== undefined && /^[A-Za-z0-9_-]{16,64}$/.test(have)) return have;
  const fresh = ctx.loginTokens.cookie();
  void reply.setCookie(LOGIN_COOKIE, fresh, cookieOptions(req));
  return fresh;
}

function sleepUntil(t: number): Promise<void> {
  const ms = t - Date.now();
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

export function authRoutes(app: FastifyInstance, ctx: WebContext): void {
  let checking = 0;

  app.get('/login', async (req, reply) => {
    if (req.session) return reply.code(303).header('location', '/').send();
    const cookie = loginCookie(ctx, req, reply);
    return sendPage(reply, 200, loginPage({ csrf: ctx.loginTokens.formToken(cookie) }));
  });

  app.post('/login', async (req, reply) => {
    const started = Date.now();
    const cookie = loginCookie(ctx, req, reply);
    const again = (status: number, message: string, login?: string) =>
      sendPage(reply, status, loginPage({ csrf: ctx.loginTokens.formToken(cookie), message, ...(login === undefined ? {} : { login }) }));
    if (!ctx.loginTokens.check(req.cookies[LOGIN_COOKIE], field(req.body, 'csrf'))) {
      return again(403, 'This form had expired or did not come from this page: please log in again.');
    }
    const typed = (field(req.body, 'login') ?? '').trim();
    const password = field(req.body, 'password') ?? '';
    const login = typed.toLowerCase();
    // Bounded keys: a 64 KB "address" must not cost 64 KB of memory per try.
    const keys = [`address:${login.slice(0, 402)}`, `client:${clientKey(req.client.ip)}`];
    const wait = Math.max(...keys.map((k) => ctx.limiter.blockedFor(k)));
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      reply.header('retry-after', String(seconds));
      ctx.log(`nqqueue web: login limited login=${JSON.stringify(visible(login.slice(0, 254)))} ip=${req.client.ip} retry_after=${seconds}`);
      return again(429, `Too many failed logins. Try again in ${Math.ceil(seconds / 60)} minute${seconds > 60 ? 's' : ''}.`, typed.slice(0, 254));
    }
    // Counted as a failure now, before the answer: attempts sent at once would otherwise all pass the
    // check above while the first are still being checked (MAX_CHECKS guesses instead of maxFailures).
    // Taken back below when the attempt turns out not to be a failure.
    const stamp = Date.now();
    for (const k of keys) ctx.limiter.fail(k, stamp);
    let result: CheckResult;
    if (!ADDRESS.test(login) || password === '') {
      result = { outcome: 'refused', detail: 'not an address and a password' };
    } else if (checking >= MAX_CHECKS) {
      result = { outcome: 'temporary', detail: `${MAX_CHECKS} checks already running` };
    } else {
      checking++;
      try {
        result = await checkPassword({ argv: ctx.config.checkpassword, timeoutMs: ctx.config.checkTimeoutMs, remoteIp: req.client.ip }, login, password);
      } finally {
        checking--;
      }
    }
    // One minimum time for every answer: how long the program took does not tell which check failed.
    await sleepUntil(started + ctx.config.loginFloorMs);
    const who = JSON.stringify(visible(login.slice(0, 254)));
    if (result.outcome === 'temporary') {
      for (const k of keys) ctx.limiter.unfail(k, stamp);
      ctx.log(`nqqueue web: login deferred login=${who} ip=${req.client.ip} checkpassword=${JSON.stringify(visible(result.detail))}`);
      reply.header('retry-after', '30');
      return again(503, 'Passwords cannot be checked right now. Please try again later.', typed.slice(0, 254));
    }
    if (result.outcome === 'refused') {
      ctx.log(`nqqueue web: login refused login=${who} ip=${req.client.ip} checkpassword=${JSON.stringify(visible(result.detail))}`);
      await ctx.quarantine.store.audit({ at: new Date().toISOString(), who: visible(login.slice(0, 254)), from: req.client.ip, action: 'login-refused' }).catch(() => {});
      return again(401, 'The address or the password is not right.', typed.slice(0, 254));
    }
    ctx.limiter.clear(keys[0]!);
    ctx.limiter.unfail(keys[1]!, stamp);
    if (req.session) ctx.sessions.destroy(req.session.id);
    const admin = ctx.config.admins.includes(login);
    const s = ctx.sessions.create(login, admin);
    void reply.setCookie(SESSION_COOKIE, s.id, cookieOptions(req));
    void reply.clearCookie(LOGIN_COOKIE, { path: '/' });
    ctx.log(`nqqueue web: login ok login=${who} ip=${req.client.ip}${admin ? ' admin=yes' : ''}`);
    await ctx.quarantine.store.audit({ at: new Date().toISOString(), who: login, from: req.client.ip, action: 'login', ...(admin ? { detail: 'administrator' } : {}) }).catch(() => {});
    return reply.code(303).header('location', '/').send();
  });

  app.post('/logout', async (req, reply) => {
    const s = postSession(req, reply);
    if (!s) return reply;
    ctx.sessions.destroy(s.id);
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return sendPage(reply, 200, notice('Logged out', 'You are logged out.', { kind: 'ok', back: { href: '/login', label: 'Log in again' } }));
  });
}
