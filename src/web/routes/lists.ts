// The lists in the console. A user sees and changes only their own list: whatever a form says about
// which list, a user's change goes to theirs, and an entry of anyone else's is answered like one that
// does not exist (404). Administrators choose any list (global, a domain's, a user's). From a held item,
// "allow/block this sender" adds its sender to its recipient's list. Every change needs the session's
// CSRF token (postSession) and is audited with who and from where.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { entryText, holderOf, ListValueError, parseListValue } from '../../lists/entry.js';
import { PluginConfigError } from '../../plugin-api/define.js';
import { parseSkip } from '../../plugins/lists.js';
import type { ListHolder, ListScope } from '../../store/types.js';
import { visible } from '../../text/visible.js';
import { field, pageSession, postSession, sendPage, viewerOf, type WebContext } from '../context.js';
import { notice } from '../pages/layout.js';
import { listQuery, listsPage } from '../pages/lists.js';
import type { Session } from '../session.js';
import { visibleItem } from './items.js';

const SHOWN = 500;
/** How many entries a user may keep in their own list from the console: a list is not a store for anything. */
export const MAX_USER_ENTRIES = 1000;
const ID = /^[0-9a-f]{16}$/;

/** The list a request is about: a user's own, always; an administrator's choice (their own by default). */
function holderFor(s: Session, from: unknown): ListHolder {
  const own = holderOf('user', s.user);
  if (!s.admin) return own;
  const scope = field(from, 'scope');
  if (scope === undefined) return own;
  if (scope !== 'global' && scope !== 'domain' && scope !== 'user') throw new ListValueError('choose a list: user, domain or global');
  return holderOf(scope as ListScope, scope === 'global' ? '' : (field(from, 'owner') ?? '').trim());
}

async function show(ctx: WebContext, reply: FastifyReply, s: Session, holder: ListHolder, status = 200, message?: { text: string; ok: boolean }): Promise<FastifyReply> {
  const { entries, total } = await ctx.quarantine.store.findListEntries({ scope: holder.scope, owner: holder.owner, limit: SHOWN });
  return sendPage(reply, status, listsPage({ viewer: viewerOf(s), holder, entries, total, ...(message ? { message } : {}) }));
}

function refused(reply: FastifyReply, s: Session, text: string, back = '/lists'): FastifyReply {
  return sendPage(reply, 400, notice('Refused', `${text}. Nothing was changed.`, { viewer: viewerOf(s), kind: 'bad', back: { href: back, label: 'Back' } }));
}

/** A user's list is full when a new value would make it longer than MAX_USER_ENTRIES (replacing is fine). */
async function full(ctx: WebContext, s: Session, holder: ListHolder, kind: string, value: string): Promise<boolean> {
  if (s.admin) return false;
  const { entries, total } = await ctx.quarantine.store.findListEntries({ scope: holder.scope, owner: holder.owner });
  return total >= MAX_USER_ENTRIES && !entries.some((e) => e.kind === kind && e.value === value);
}

function audit(ctx: WebContext, req: FastifyRequest, s: Session, action: string, detail: string, item?: string): Promise<void> {
  ctx.log(`nqqueue web: ${action} by=${JSON.stringify(visible(s.user))} ip=${JSON.stringify(visible(req.client.ip))} ${JSON.stringify(visible(detail))}`);
  return ctx.quarantine.store.audit({ at: new Date().toISOString(), who: s.user, from: req.client.ip, action, detail, ...(item ? { item } : {}) });
}

export function listRoutes(app: FastifyInstance, ctx: WebContext): void {
  app.get('/lists', async (req, reply) => {
    const s = pageSession(req, reply);
    if (!s) return reply;
    let holder: ListHolder;
    try {
      holder = holderFor(s, req.query);
    } catch (err) {
      if (!(err instanceof ListValueError)) throw err;
      return show(ctx, reply, s, holderOf('user', s.user), 400, { text: err.message, ok: false });
    }
    return show(ctx, reply, s, holder);
  });

  app.post('/lists/add', async (req, reply) => {
    const s = postSession(req, reply);
    if (!s) return reply;
    let holder: ListHolder;
    let parsed;
    let skip: string[] | undefined;
    const action = field(req.body, 'action');
    try {
      holder = holderFor(s, req.body);
      if (action !== 'allow' && action !== 'block') throw new ListValueError('choose allow or block');
      parsed = parseListValue(field(req.body, 'value') ?? '');
      // Networks are the site's business: a user's list is about senders.
      if (!s.admin && parsed.kind === 'network') throw new ListValueError('a network can be listed by an administrator only');
      const skipText = s.admin ? (field(req.body, 'skip') ?? '').trim() : '';
      if (skipText !== '' && action === 'allow') skip = skipText === 'none' ? [] : parseSkip(skipText.replace(/,/g, ':'));
    } catch (err) {
      if (err instanceof ListValueError || err instanceof PluginConfigError) return refused(reply, s, err.message);
      throw err;
    }
    if (await full(ctx, s, holder, parsed.kind, parsed.value)) return refused(reply, s, `Your list has ${MAX_USER_ENTRIES} entries, as many as it can: remove some first`);
    const r = await ctx.quarantine.store.putListEntry({ ...holder, action, ...parsed, ...(skip === undefined ? {} : { skip }), by: s.user });
    await audit(ctx, req, s, 'list-add', `${entryText(r.entry)}${r.replaced ? ` (was ${r.replaced.action})` : ''}`);
    return reply.code(303).header('location', `/lists${s.admin ? listQuery(holder) : ''}`).send();
  });

  app.post('/lists/:id/delete', async (req, reply) => {
    const s = postSession(req, reply);
    if (!s) return reply;
    const id = (req.params as { id: string }).id;
    // A user removes only from their own list: another's entry is not found.
    const gone = ID.test(id) ? await ctx.quarantine.store.deleteListEntry(id, s.admin ? undefined : holderOf('user', s.user)) : undefined;
    if (!gone) return sendPage(reply, 404, notice('Not found', 'There is no such entry in your list. Nothing was changed.', { viewer: viewerOf(s), kind: 'bad', back: { href: '/lists', label: 'Back to the list' } }));
    await audit(ctx, req, s, 'list-del', entryText(gone));
    return reply.code(303).header('location', `/lists${s.admin ? listQuery(gone) : ''}`).send();
  });

  app.post('/item/:id/list', async (req, reply) => {
    const s = postSession(req, reply);
    if (!s) return reply;
    const id = (req.params as { id: string }).id;
    const item = await visibleItem(ctx, s, id);
    if (!item) return sendPage(reply, 404, notice('Not found', 'There is no such held message.', { viewer: viewerOf(s), kind: 'bad', back: { href: '/', label: 'Back to the list' } }));
    const action = field(req.body, 'action');
    if (action !== 'allow' && action !== 'block') return refused(reply, s, 'Choose allow or block', `/item/${id}`);
    let holder: ListHolder;
    let parsed;
    try {
      // The recipient's own list: the item's owner (a user's items are their own).
      holder = holderOf('user', item.owner);
      parsed = parseListValue(item.sender.text);
      if (parsed.kind !== 'address') throw new ListValueError('the sender is not an address');
    } catch (err) {
      if (!(err instanceof ListValueError)) throw err;
      return refused(reply, s, `This sender cannot be listed (${err.message})`, `/item/${id}`);
    }
    if (await full(ctx, s, holder, parsed.kind, parsed.value)) return refused(reply, s, `Your list has ${MAX_USER_ENTRIES} entries, as many as it can: remove some first`, `/item/${id}`);
    const r = await ctx.quarantine.store.putListEntry({ ...holder, action, ...parsed, note: `from held message ${id}`, by: s.user });
    await audit(ctx, req, s, 'list-add', `${entryText(r.entry)}${r.replaced ? ` (was ${r.replaced.action})` : ''}`, id);
    const whose = holder.owner === s.user ? 'your list' : `the list of ${holder.owner}`;
    const what = action === 'allow' ? 'Mail from this sender is no longer checked for spam (it is always checked for viruses).' : 'Mail from this sender will be refused.';
    return sendPage(reply, 200, notice(action === 'allow' ? 'Sender allowed' : 'Sender blocked', `<${visible(parsed.value)}> is now ${action === 'allow' ? 'allowed' : 'blocked'} in ${whose}. ${what}`, { viewer: viewerOf(s), kind: 'ok', back: { href: `/item/${id}`, label: 'Back to the message' } }));
  });
}
