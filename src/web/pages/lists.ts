// The allow and block lists in the console: a user's own list (administrators: any list — global, a
// domain's, a user's), with a form to add an entry and a button to remove each; and the two buttons
// the item page shows, "Allow this sender" and "Block this sender".

import type { ListEntry, ListHolder, QuarantineItem } from '../../store/types.js';
import { valueText } from '../../lists/entry.js';
import { html, shown, type Html } from '../html.js';
import { page, type Viewer } from './layout.js';

function listName(h: ListHolder, viewer: Viewer): string {
  if (h.scope === 'user' && h.owner === viewer.user) return 'Your list';
  return h.scope === 'global' ? 'The global list (every recipient)' : h.scope === 'domain' ? `The list of ${h.owner} (every recipient in it)` : `The list of ${h.owner}`;
}

function kindText(e: ListEntry): string {
  return e.kind === 'address' ? 'sender' : e.kind === 'domain' ? 'domain' : e.kind === 'subdomains' ? 'domain and its subdomains' : 'network';
}

function skipText(e: ListEntry): string {
  if (e.action === 'block') return 'refused';
  if (e.skip === undefined) return 'spam checks skipped';
  return e.skip.length === 0 ? 'nothing skipped' : `skips ${e.skip.join(', ')}`;
}

/** Where a form about this list posts to, and the fields that name the list (administrators only). */
export function listQuery(h: ListHolder): string {
  return h.scope === 'user' ? `?scope=user&owner=${encodeURIComponent(h.owner)}` : h.scope === 'domain' ? `?scope=domain&owner=${encodeURIComponent(h.owner)}` : '?scope=global';
}

function holderFields(h: ListHolder, viewer: Viewer): Html {
  if (!viewer.admin) return html``;
  return html`<input type="hidden" name="scope" value="${h.scope}"><input type="hidden" name="owner" value="${h.owner}">`;
}

export function listsPage(o: { viewer: Viewer; holder: ListHolder; entries: readonly ListEntry[]; total: number; message?: { text: string; ok: boolean } }): string {
  const { viewer, holder, entries } = o;
  const chooser = viewer.admin
    ? html`<form class="search" method="get" action="/lists">
<label>List <select name="scope">${(['user', 'domain', 'global'] as const).map((s) => html`<option value="${s}"${holder.scope === s ? html` selected` : ''}>${s}</option>`)}</select></label>
<label>Owner (address or domain) <input type="text" name="owner" value="${holder.owner}"></label>
<button type="submit">Show</button></form>`
    : '';
  const rows = entries.map(
    (e) => html`<tr><td>${e.action === 'allow' ? 'Allowed' : 'Blocked'}</td><td>${kindText(e)}</td><td><code>${shown(valueText(e.kind, e.value))}</code></td><td>${skipText(e)}</td><td>${shown(e.note ?? '')}</td>
<td><form method="post" action="/lists/${e.id}/delete">${holderFields(holder, viewer)}<input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit" class="danger">Remove</button></form></td></tr>`,
  );
  const body = html`<h1>Allowed and blocked senders</h1>
${chooser}
${o.message ? html`<p class="notice ${o.message.ok ? 'ok' : 'bad'}">${o.message.text}</p>` : ''}
<h2>${listName(holder, viewer)}</h2>
<p class="muted">Mail from a blocked sender is refused. Mail from an allowed sender is not checked for spam (it is always checked for viruses). Your own list comes first, then your domain's, then the site's.</p>
${o.total === 0 ? html`<p class="muted">No entries.</p>` : html`<table class="checks"><thead><tr><th>What</th><th>By</th><th>Value</th><th>Effect</th><th>Note</th><th></th></tr></thead><tbody>${rows}</tbody></table>`}
${o.total > entries.length ? html`<p class="muted">The first ${entries.length} of ${o.total} entries.</p>` : ''}
<h2>Add an entry</h2>
<form method="post" action="/lists/add">
<input type="hidden" name="csrf" value="${viewer.csrf}">
${holderFields(holder, viewer)}
<label><input type="radio" name="action" value="allow" checked> Allow</label>
<label><input type="radio" name="action" value="block"> Block</label>
<label>Sender <input type="text" name="value" placeholder="friend@example.org, example.org, .example.org" required></label>
${viewer.admin ? html`<label>Skips (allow; comma-separated, "none"; empty: the default policy) <input type="text" name="skip"></label>` : ''}
<button type="submit" class="primary">Add</button>
</form>
<p class="muted">A sender is an address (friend@example.org), a domain (example.org), a domain with every domain under it (.example.org)${viewer.admin ? ', or the network the mail comes from (192.0.2.0/24, 2001:db8::/32)' : ''}.</p>`;
  return page('Lists', body, viewer);
}

/** The item page's buttons: allow or block this item's sender, in its recipient's list. */
export function senderButtons(item: QuarantineItem, viewer: Viewer): Html {
  if (item.sender.text === '') return html``;
  const form = (action: 'allow' | 'block', label: string, cls: string) =>
    html`<form method="post" action="/item/${item.id}/list"><input type="hidden" name="csrf" value="${viewer.csrf}"><input type="hidden" name="action" value="${action}"><button type="submit" class="${cls}">${label}</button></form>`;
  return html`<div class="actions">${form('allow', 'Allow this sender', '')}${form('block', 'Block this sender', 'danger')}</div>`;
}
