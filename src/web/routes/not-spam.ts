// POST /item/:id/not-spam: release the item (as the release button does: exactly once, audited) and
// teach its message as ham, for its recipient, to every learner that voted spam on it. The bytes are
// read before the release (a release removes them); teaching comes after it, so a learner that is
// down never keeps anyone's mail from them. What was taught is in the audit log and the answer.

import type { FastifyInstance } from 'fastify';

import { itemMessage } from '../../quarantine/actions.js';
import { visible } from '../../text/visible.js';
import { postSession, sendPage, viewerOf, type WebContext } from '../context.js';
import { notice } from '../pages/layout.js';
import { act, refusalStatus, visibleItem } from './items.js';

export function notSpamRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.post('/item/:id/not-spam', async (req, reply) => {
    const s = postSession(req, reply);
    if (!s) return reply;
    const id = (req.params as { id: string }).id;
    const item = await visibleItem(ctx, s, id);
    const back = { href: '/', label: 'Back to the list' };
    if (!item) return sendPage(reply, 404, notice('Not found', 'There is no such held message.', { viewer: viewerOf(s), kind: 'bad', back }));
    let message: Buffer | undefined;
    try {
      message = item.status === 'held' ? await (await itemMessage(ctx.quarantine, id)).buffer() : undefined;
    } catch {
      message = undefined;
    }
    const r = await act(ctx, 'release', id, s.user, req.client.ip);
    if (!r.ok) {
      const status = await refusalStatus(ctx, id, r);
      if (status === 404) return sendPage(reply, 404, notice('Not found', 'There is no such held message.', { viewer: viewerOf(s), kind: 'bad', back }));
      return sendPage(reply, status, notice(status === 409 ? 'Already done' : 'Not done', `Nothing was done: ${r.reason}`, { viewer: viewerOf(s), kind: 'bad', back: { href: `/item/${id}`, label: 'Back to the message' } }));
    }
    let taught = 'the filter was not taught: the message could not be read';
    if (message) {
      const { teachNotSpam } = await import('../../learn/not-spam.js');
      const t = await teachNotSpam(ctx.quarantine, r.item, message, (l) => ctx.log(`nqqueue web: not spam id=${id}: ${visible(l)}`));
      taught = t.failed.length === 0 ? `the filter was taught (${t.text})` : `teaching failed for ${t.failed.join(', ')} (${t.text})`;
      await ctx.quarantine.store.audit({ at: new Date().toISOString(), who: s.user, from: req.client.ip, action: 'not-spam', item: id, detail: t.text });
    }
    ctx.log(`nqqueue web: not spam id=${id} by=${JSON.stringify(visible(s.user))} ${taught}`);
    return sendPage(reply, 200, notice('Released as not spam', `The message was handed to the mail system for delivery to <${visible(r.item.recipient.text)}>; ${taught}.`, { viewer: viewerOf(s), kind: 'ok', back }));
  });
}
