// The preview frame's document: GET /item/ID/preview[?remote=1] answers the sanitized HTML of an item
// the session may see (another user's is a 404, like one that does not exist) with the frame's own
// headers: a policy that loads nothing but data: images (https images too with remote=1), sandboxed
// even when opened outside the frame, UTF-8, never cached, no referrer.

import type { FastifyInstance } from 'fastify';

import { itemMessage } from '../../quarantine/actions.js';
import { pageSession, sendPage, viewerOf, type WebContext } from '../context.js';
import { notice } from '../pages/layout.js';
import { previewOf } from '../item-preview.js';
import { previewFrameHeaders } from '../preview-csp.js';
import { visibleItem } from './items.js';

export function previewRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.get('/item/:id/preview', async (req, reply) => {
    const s = pageSession(req, reply);
    if (!s) return reply;
    const item = await visibleItem(ctx, s, (req.params as { id: string }).id);
    const gone = (text: string) => sendPage(reply, 404, notice('Not found', text, { viewer: viewerOf(s), kind: 'bad' }));
    if (!item) return gone('There is no such held message.');
    if (item.status !== 'held' && item.status !== 'releasing') return gone('The message itself is no longer kept.');
    const remote = (req.query as Record<string, unknown>).remote === '1';
    let document: string | undefined;
    try {
      document = (await previewOf(await itemMessage(ctx.quarantine, item.id), { html: true, remote })).html;
    } catch {
      return gone('The message itself cannot be read here.');
    }
    for (const [k, v] of Object.entries(previewFrameHeaders(remote))) reply.header(k, v);
    // Framed by the console's own item page only (the policy's frame-ancestors 'self' says the same).
    reply.header('x-frame-options', 'SAMEORIGIN');
    return reply.code(200).send(document ?? (await import('../html-sanitize.js')).previewDocument('<p>This message has no HTML version.</p>', remote));
  });
}
