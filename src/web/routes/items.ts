// The held items: the list and its search, one item with its preview, the "why" page, release and
// delete one, and (administrators) many at once. A user reaches only their own items: another user's
// id is answered exactly like an id that does not exist (404). Every action goes through the
// quarantine's actions (one claim in the store: exactly once, audited with who and from where).

import type { FastifyInstance, FastifyReply } from 'fastify';

import { deleteItem, itemMessage, releaseItem, type ActionResult } from '../../quarantine/actions.js';
import { ID_PATTERN } from '../../quarantine/store.js';
import type { ItemQuery, ItemStatus, QuarantineItem } from '../../store/types.js';
import { visible } from '../../text/visible.js';
import { fields, field, pageSession, postSession, sendPage, viewerOf, type WebContext } from '../context.js';
import { html, shown, type Html } from '../html.js';
import { page, notice, type Viewer } from '../pages/layout.js';
import { itemPage, whyPage } from '../pages/item.js';
import { listPage, PAGE_SIZE, type ListSearch } from '../pages/list.js';
import { PAGE_CSP_WITH_PREVIEW, previewChoice, previewOf, previewSection, type PreviewChoice } from '../item-preview.js';
import type { Session } from '../session.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const STATUSES: readonly ItemStatus[] = ['held', 'releasing', 'released', 'deleted', 'expired'];
const MAX_BULK = 500;

function text(q: Record<string, unknown>, name: string): string | undefined {
  const v = q[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, 200) : undefined;
}

function dayAfter(d: string): string {
  return new Date(Date.parse(`${d}T00:00:00.000Z`) + 86_400_000).toISOString();
}

function searchOf(q: Record<string, unknown>, admin: boolean): { search: ListSearch; query: ItemQuery; pageNo: number } {
  const s: Record<string, string | undefined> = { q: text(q, 'q') };
  if (admin) for (const k of ['recipient', 'sender', 'domain', 'since', 'before', 'plugin', 'status']) s[k] = text(q, k);
  if (s.since !== undefined && (!DATE.test(s.since) || Number.isNaN(Date.parse(s.since)))) s.since = undefined;
  if (s.before !== undefined && (!DATE.test(s.before) || Number.isNaN(Date.parse(s.before)))) s.before = undefined;
  const pageNo = Math.max(1, Math.min(10_000, Number.parseInt(String(q.page ?? '1'), 10) || 1));
  const status = s.status === 'all' ? STATUSES : STATUSES.includes(s.status as ItemStatus) ? [s.status as ItemStatus] : (['held'] as const);
  const query: ItemQuery = {
    ...(s.q === undefined ? {} : { text: s.q }),
    ...(s.recipient === undefined ? {} : { recipient: s.recipient }),
    ...(s.sender === undefined ? {} : { sender: s.sender }),
    ...(s.domain === undefined ? {} : { domain: s.domain.toLowerCase().replace(/^@/, '') }),
    ...(s.plugin === undefined ? {} : { caughtBy: s.plugin.toLowerCase() }),
    ...(s.since === undefined ? {} : { since: `${s.since}T00:00:00.000Z` }),
    ...(s.before === undefined ? {} : { before: dayAfter(s.before) }),
    status,
    limit: PAGE_SIZE,
    offset: (pageNo - 1) * PAGE_SIZE,
  };
  return { search: s as ListSearch, query, pageNo };
}

/** The item if this session may see it; undefined for one that does not exist or is someone else's. */
export async function visibleItem(ctx: WebContext, s: Pick<Session, 'user' | 'admin'>, id: string): Promise<QuarantineItem | undefined> {
  if (!ID_PATTERN.test(id)) return undefined;
  const item = await ctx.quarantine.store.getItem(id);
  if (!item) return undefined;
  return s.admin || item.owner === s.user ? item : undefined;
}

function notFound(reply: FastifyReply, viewer: Viewer): FastifyReply {
  return sendPage(reply, 404, notice('Not found', 'There is no such held message.', { viewer, kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
}

async function preview(ctx: WebContext, item: QuarantineItem, choice: PreviewChoice): Promise<Html> {
  if (item.status !== 'held' && item.status !== 'releasing') return html`<p class="muted">The message itself is no longer kept (it was ${item.status}).</p>`;
  try {
    return previewSection(item, await previewOf(await itemMessage(ctx.quarantine, item.id), { html: choice.html }), choice);
  } catch {
    return html`<p class="muted">The message itself cannot be read here${item.host ? ` (it is kept on ${shown(item.host)})` : ''}.</p>`;
  }
}

/** Run one action and describe it for the log. */
export async function act(ctx: WebContext, action: 'release' | 'delete', id: string, who: string, from: string): Promise<ActionResult> {
  const fn = action === 'release' ? releaseItem : deleteItem;
  const r = await fn(ctx.quarantine, id, { who, from });
  ctx.log(`nqqueue web: ${action} id=${id} by=${JSON.stringify(visible(who))} ip=${JSON.stringify(visible(from))} ${r.ok ? 'ok' : `refused reason=${JSON.stringify(visible(r.reason))}`}`);
  return r;
}

/** The status of an answer to a refused action: gone (404), done by someone else (409), or not now (503). */
export async function refusalStatus(ctx: WebContext, id: string, r: ActionResult & { ok: false }): Promise<number> {
  if (r.notFound) return 404;
  const now = await ctx.quarantine.store.getItem(id).catch(() => undefined);
  return now?.status === 'held' ? 503 : 409;
}

const DONE: Record<'release' | 'delete', { title: string; text: (item: QuarantineItem) => string }> = {
  release: { title: 'Released', text: (i) => `The message was handed to the mail system for delivery to <${visible(i.recipient.text)}>.` },
  delete: { title: 'Deleted', text: () => 'The message was deleted.' },
};

export function itemRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.get('/', async (req, reply) => {
    const s = pageSession(req, reply);
    if (!s) return reply;
    const { search, query, pageNo } = searchOf(req.query as Record<string, unknown>, s.admin);
    const { items, total } = await ctx.quarantine.store.findItems(s.admin ? query : { ...query, owner: s.user, status: ['held'] });
    return sendPage(reply, 200, listPage({ viewer: viewerOf(s), items, total, search, pageNo }));
  });

  app.get('/item/:id', async (req, reply) => {
    const s = pageSession(req, reply);
    if (!s) return reply;
    const item = await visibleItem(ctx, s, (req.params as { id: string }).id);
    if (!item) return notFound(reply, viewerOf(s));
    const choice = previewChoice(req.query);
    if (choice.html) reply.header('content-security-policy', PAGE_CSP_WITH_PREVIEW);
    return sendPage(reply, 200, itemPage({ viewer: viewerOf(s), item, preview: await preview(ctx, item, choice) }));
  });

  app.get('/item/:id/why', async (req, reply) => {
    const s = pageSession(req, reply);
    if (!s) return reply;
    const item = await visibleItem(ctx, s, (req.params as { id: string }).id);
    if (!item) return notFound(reply, viewerOf(s));
    return sendPage(reply, 200, whyPage({ viewer: viewerOf(s), item }));
  });

  for (const action of ['release', 'delete'] as const) {
    app.post(`/item/:id/${action}`, async (req, reply) => {
      const s = postSession(req, reply);
      if (!s) return reply;
      const id = (req.params as { id: string }).id;
      const item = await visibleItem(ctx, s, id);
      if (!item) return notFound(reply, viewerOf(s));
      const r = await act(ctx, action, id, s.user, req.client.ip);
      if (r.ok) return sendPage(reply, 200, notice(DONE[action].title, DONE[action].text(r.item), { viewer: viewerOf(s), kind: 'ok', back: { href: '/', label: 'Back to the list' } }));
      const status = await refusalStatus(ctx, id, r);
      if (status === 404) return notFound(reply, viewerOf(s));
      return sendPage(reply, status, notice(status === 409 ? 'Already done' : 'Not done', status === 409 ? `Nothing was done: ${r.reason}` : `Nothing was done, the message is still held: ${r.reason}. Try again later.`, { viewer: viewerOf(s), kind: 'bad', back: { href: `/item/${id}`, label: 'Back to the message' } }));
    });
  }

  app.post('/bulk', async (req, reply) => {
    const s = postSession(req, reply);
    if (!s) return reply;
    if (!s.admin) return notFound(reply, viewerOf(s));
    const action = field(req.body, 'action');
    if (action !== 'release' && action !== 'delete') return sendPage(reply, 400, notice('Refused', 'Choose release or delete.', { viewer: viewerOf(s), kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
    const ids = [...new Set(fields(req.body, 'id'))];
    if (ids.length === 0) return sendPage(reply, 400, notice('Nothing selected', 'Select the messages first. Nothing was changed.', { viewer: viewerOf(s), kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
    if (ids.length > MAX_BULK) return sendPage(reply, 400, notice('Too many', `At most ${MAX_BULK} messages at once. Nothing was changed.`, { viewer: viewerOf(s), kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
    const rows: { id: string; ok: boolean; text: string }[] = [];
    for (const id of ids) {
      if (!ID_PATTERN.test(id)) {
        rows.push({ id, ok: false, text: 'no such message' });
        continue;
      }
      const r = await act(ctx, action, id, s.user, req.client.ip);
      rows.push({ id, ok: r.ok, text: r.ok ? (action === 'release' ? `released to <${visible(r.item.recipient.text)}>` : 'deleted') : r.reason });
    }
    const done = rows.filter((r) => r.ok).length;
    const body = html`<h1>${action === 'release' ? 'Released' : 'Deleted'}: ${done} of ${rows.length}</h1>
<table><thead><tr><th>Message</th><th>Result</th></tr></thead><tbody>
${rows.map((r) => html`<tr><td><code>${shown(r.id)}</code></td><td class="${r.ok ? 'ok' : 'bad'}">${shown(r.text)}</td></tr>`)}
</tbody></table>
<p><a href="/">Back to the list</a></p>`;
    return sendPage(reply, 200, page('Done', body, viewerOf(s)));
  });
}
