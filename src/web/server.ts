// The console's HTTP server (fastify): the request's client and session, the security headers on every
// answer, the routes, and pages for every error — never a stack trace. Only urlencoded forms are taken,
// small; GET never changes anything.

import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance } from 'fastify';

import { describeError } from '../errors.js';
import type { Quarantine } from '../quarantine/actions.js';
import { clientOf } from './client.js';
import { SESSION_COOKIE, sendPage, viewerOf, type WebConfig, type WebContext } from './context.js';
import { LoginTokens } from './csrf.js';
import { securityHeaders } from './headers.js';
import { notice } from './pages/layout.js';
import { STYLE } from './pages/style.js';
import { FailureLimiter } from './rate-limit.js';
import { authRoutes } from './routes/auth.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { itemRoutes } from './routes/items.js';
import { linkRoutes } from './routes/links.js';
import { notSpamRoutes } from './routes/not-spam.js';
import { listRoutes } from './routes/lists.js';
import { preferenceRoutes } from './routes/preferences.js';
import { previewRoutes } from './routes/preview.js';
import { Sessions } from './session.js';

export interface ServerOptions {
  readonly config: WebConfig;
  readonly quarantine: Quarantine;
  readonly log: (line: string) => void;
}

export async function buildServer(o: ServerOptions): Promise<{ app: FastifyInstance; ctx: WebContext }> {
  const ctx: WebContext = {
    config: o.config,
    quarantine: o.quarantine,
    sessions: new Sessions(o.config.sessionMs),
    limiter: new FailureLimiter(o.config.maxFailures, o.config.failureWindowMs),
    loginTokens: new LoginTokens(),
    log: o.log,
  };
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Digest tokens are a few hundred characters long (readLink refuses more than 2048).
    routerOptions: { maxParamLength: 2100 },
    // A browser holding an idle connection open must not keep a stop waiting; a request in flight (a
    // release half-way) is let finish before the store is closed.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    requestTimeout: 60_000,
    // A URL the router cannot read (bad %-escape) gets a page like every other refusal, not fastify's JSON.
    frameworkErrors: (_err, req, reply) => {
      // Before routing: the hooks do not run, so the headers are set here.
      securityHeaders(req, reply, o.config.httpsUrl);
      void sendPage(reply, 400, notice('Refused', 'The request could not be understood.', { kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
    },
  });
  await app.register(cookie);
  // Forms only: a JSON or text body is refused (415) before any route sees it.
  app.removeAllContentTypeParsers();
  await app.register(formbody);

  app.decorateRequest('client', null as never);
  app.decorateRequest('session', undefined);
  app.addHook('onRequest', async (req) => {
    req.client = clientOf(req.raw, { trustProxy: o.config.trustProxy, httpsUrl: o.config.httpsUrl });
    req.session = ctx.sessions.get(req.cookies[SESSION_COOKIE]);
  });
  app.addHook('preHandler', async (req, reply) => {
    // A form sent from another site: refused whatever else it carries (the CSRF token is checked too).
    if (req.method === 'POST' && req.headers['sec-fetch-site'] === 'cross-site') {
      return sendPage(reply, 403, notice('Refused', 'This form was sent from another site. Nothing was changed.', { kind: 'bad' }));
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    securityHeaders(req, reply, req.client?.https ?? o.config.httpsUrl);
    return payload;
  });

  app.get('/style.css', async (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLE));
  authRoutes(app, ctx);
  itemRoutes(app, ctx);
  previewRoutes(app, ctx);
  preferenceRoutes(app, ctx);
  linkRoutes(app, ctx);
  notSpamRoutes(app, ctx);
  listRoutes(app, ctx);
  dashboardRoutes(app, ctx);

  app.setNotFoundHandler(async (req, reply) => {
    const viewer = req.session ? viewerOf(req.session) : undefined;
    return sendPage(reply, 404, notice('Not found', 'There is no such page.', { ...(viewer ? { viewer } : {}), kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
  });
  app.setErrorHandler(async (err: { statusCode?: number; name?: string; message?: string }, req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : err.name === 'StoreError' ? 503 : 500;
    if (status >= 500) o.log(`nqqueue web: error ${req.method} ${req.url.split('?')[0]!.slice(0, 100)}: ${describeError(err)}`);
    const text =
      status === 413 ? 'That was too much at once.' : status < 500 ? 'The request could not be understood.' : status === 503 ? 'The quarantine cannot be reached right now. Please try again later.' : 'Something went wrong on our side. Please try again later.';
    if (status === 503) reply.header('retry-after', '30');
    return sendPage(reply, status, notice(status < 500 ? 'Refused' : 'Not available', text, { kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
  });
  return { app, ctx };
}
