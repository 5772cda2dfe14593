// The list of held items with its search form. A user sees their own; an administrator sees everyone's,
// has more search fields (recipient, sender, domain, dates, what caught it, status) and can select
// many items and release or delete them at once.

import type { QuarantineItem } from '../../store/types.js';
import { html, shown } from '../html.js';
import { whySummary } from '../why.js';
import { address, STATUS_WORDS, subject, when } from './format.js';
import { page, type Viewer } from './layout.js';

export interface ListSearch {
  readonly q?: string;
  readonly recipient?: string;
  readonly sender?: string;
  readonly domain?: string;
  readonly since?: string;
  readonly before?: string;
  readonly plugin?: string;
  readonly status?: string;
}

export const PAGE_SIZE = 50;

function field(label: string, name: keyof ListSearch, s: ListSearch, type = 'text') {
  return html`<label>${label}<input type="${type}" name="${name}" value="${s[name] ?? ''}" maxlength="200"></label>`;
}

function statusSelect(s: ListSearch) {
  const options = ['held', 'released', 'deleted', 'expired', 'all'];
  return html`<label>Status<select name="status">${options.map(
    (o) => html`<option value="${o}"${(s.status ?? 'held') === o ? html` selected` : ''}>${o}</option>`,
  )}</select></label>`;
}

function query(s: ListSearch, pageNo: number): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) if (typeof v === 'string' && v !== '') p.set(k, v);
  if (pageNo > 1) p.set('page', String(pageNo));
  const q = p.toString();
  return q ? `/?${q}` : '/';
}

export function listPage(o: { viewer: Viewer; items: readonly QuarantineItem[]; total: number; search: ListSearch; pageNo: number; message?: string }): string {
  const { viewer, items, total, search, pageNo } = o;
  const admin = viewer.admin;
  const form = admin
    ? html`<form class="search" method="get" action="/">
${field('Text', 'q', search)}${field('Recipient', 'recipient', search)}${field('Sender', 'sender', search)}${field('Domain', 'domain', search)}
${field('From (date)', 'since', search, 'date')}${field('Until (date)', 'before', search, 'date')}${field('Caught by', 'plugin', search)}${statusSelect(search)}
<button type="submit">Search</button></form>`
    : html`<form class="search" method="get" action="/">${field('Search sender, subject, reason', 'q', search)}<button type="submit">Search</button></form>`;
  const rows = items.map(
    (it) => html`<tr>
${admin ? html`<td><input type="checkbox" name="id" value="${it.id}" form="bulk" aria-label="select"></td>` : ''}
<td class="nowrap">${when(it.date)}</td>
<td>${address(it.sender)}</td>
${admin ? html`<td>${address(it.recipient)}</td>` : ''}
<td><a href="/item/${it.id}">${subject(it)}</a>${it.status !== 'held' ? html` <span class="muted">(${STATUS_WORDS[it.status] ?? it.status})</span>` : ''}</td>
<td class="why">${shown(whySummary(it.results, it.caughtBy))}</td>
</tr>`,
  );
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const body = html`<h1>${admin ? 'All held mail' : 'Your held mail'}</h1>
${o.message ? html`<p class="notice">${o.message}</p>` : ''}
${form}
<p class="muted">${total === 0 ? 'Nothing found.' : `${total} item${total === 1 ? '' : 's'}${pages > 1 ? `, page ${pageNo} of ${pages}` : ''}.`}</p>
${
  items.length > 0
    ? html`<table>
<thead><tr>${admin ? html`<th></th>` : ''}<th class="nowrap">Date</th><th>Sender</th>${admin ? html`<th>Recipient</th>` : ''}<th>Subject</th><th>Why it is held</th></tr></thead>
<tbody>${rows}</tbody>
</table>`
    : ''
}
${
  admin && items.length > 0
    ? html`<form id="bulk" method="post" action="/bulk" class="actions">
<input type="hidden" name="csrf" value="${viewer.csrf}">
<button type="submit" name="action" value="release">Release selected</button>
<button type="submit" name="action" value="delete" class="danger">Delete selected</button>
</form>`
    : ''
}
<div class="pages">${pageNo > 1 ? html`<a href="${query(search, pageNo - 1)}">Newer</a>` : ''}${pageNo < pages ? html`<a href="${query(search, pageNo + 1)}">Older</a>` : ''}</div>`;
  return page(admin ? 'All held mail' : 'Your held mail', body, viewer);
}
