// Digest links. GET /link/TOKEN checks the signature and the expiry and shows the item with one button;
// it never acts (link scanners fetch every link). POST /link/TOKEN — the button — uses up the token's
// nonce in the store, then acts through the quarantine's actions. The token is the capability: no login
// and no CSRF token (a page elsewhere cannot know it), and it is bound to one item, one owner and one
// action; a used, tampered or expired one does nothing.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { readLink, type LinkClaims } from '../../links/links.js';
import { ID_PATTERN } from '../../quarantine/store.js';
import type { QuarantineItem } from '../../store/types.js';
import { sendPage, type WebContext } from '../context.js';
import { notice } from '../pages/layout.js';
import { linkPage } from '../pages/link.js';
import { act, refusalStatus } from './items.js';

const DONE_TEXT = { release: 'Released', delete: 'Deleted' } as const;

type Checked = { claims: LinkClaims; item: QuarantineItem; token: string };

async function check(ctx: WebContext, req: FastifyRequest, reply: FastifyReply): Promise<Checked | undefined> {
  const token = (req.params as { token: string }).token;
  const r = readLink(ctx.config.linkKey, token);
  if (!r.ok) {
    if (r.why === 'expired') sendPage(reply, 410, notice('Link expired', 'This link has expired. Nothing was done. Log in to see your held mail.', { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
    else sendPage(reply, 400, notice('Link not valid', 'This link is not valid (it was changed or cut short). Nothing was done.', { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
    return undefined;
  }
  const { claims } = r;
  const item = ID_PATTERN.test(claims.id) ? await ctx.quarantine.store.getItem(claims.id) : undefined;
  if (!item || item.owner !== claims.owner) {
    sendPage(reply, 404, notice('Not found', 'There is no such held message. Nothing was done.', { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
    return undefined;
  }
  if (item.status !== 'held') {
    sendPage(reply, 410, notice('Already done', `This message is no longer held: it was ${item.status}. Nothing was done.`, { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
    return undefined;
  }
  return { claims, item, token };
}

export function linkRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.get('/link/:token', async (req, reply) => {
    const c = await check(ctx, req, reply);
    if (!c) return reply;
    return sendPage(reply, 200, linkPage({ token: c.token, action: c.claims.action, item: c.item }));
  });

  app.post('/link/:token', async (req, reply) => {
    const c = await check(ctx, req, reply);
    if (!c) return reply;
    const { claims } = c;
    if (claims.action === 'view') return sendPage(reply, 400, notice('Nothing to do', 'This link only shows the message. Nothing was done.', { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
    if (!(await ctx.quarantine.store.useToken(claims.nonce, new Date(claims.expires).toISOString()))) {
      ctx.log(`nqqueue web: link refused id=${claims.id} ip=${req.client.ip} reason="used already"`);
      return sendPage(reply, 410, notice('Link used', 'This link was used already: it works once. Nothing was done.', { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
    }
    const r = await act(ctx, claims.action, claims.id, claims.owner, `${req.client.ip} (digest link)`);
    if (r.ok) {
      const text = claims.action === 'release' ? `The message was handed to the mail system for delivery to you.` : 'The message was deleted.';
      return sendPage(reply, 200, notice(DONE_TEXT[claims.action], text, { kind: 'ok' }));
    }
    const status = await refusalStatus(ctx, claims.id, r);
    return sendPage(reply, status, notice('Not done', `Nothing was done: ${r.reason}`, { kind: 'bad', back: { href: '/login', label: 'Log in' } }));
  });
}
