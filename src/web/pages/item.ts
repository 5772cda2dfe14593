// One item: what it is (date, sender, recipient, subject, size), why it is held, a preview of the
// message and the buttons (release to the recipient, delete) while it is held. The "why" page says, per
// plugin, what it found; administrators also see each check's parameters (socket paths, addresses: not
// the recipient's business), the routing lines (file:line) that chose the chains and each result's
// recorded details.

import type { QuarantineItem, RuleRef } from '../../store/types.js';
import { html, shown, type Html } from '../html.js';
import { pluginName, whyLines } from '../why.js';
import { address, size, STATUS_WORDS, subject, when } from './format.js';
import { page, type Viewer } from './layout.js';
import { notSpamButton } from './not-spam.js';
import { senderButtons } from './lists.js';

function rule(r: RuleRef | undefined): string {
  return r ? `${r.file}:${r.line}` : '(none: the default chain)';
}

export function metaList(item: QuarantineItem, admin: boolean): Html {
  return html`<dl class="meta">
<dt>Date</dt><dd>${when(item.date)}</dd>
<dt>Sender</dt><dd>${address(item.sender)}</dd>
<dt>Recipient</dt><dd>${address(item.recipient)}</dd>
<dt>Subject</dt><dd>${subject(item)}</dd>
<dt>Size</dt><dd>${size(item.size)}</dd>
<dt>Status</dt><dd>${STATUS_WORDS[item.status] ?? item.status}${item.statusAt ? ` on ${when(item.statusAt)}` : ''}${admin && item.statusBy ? ` by ${shown(item.statusBy)}` : ''}</dd>
${admin ? html`<dt>Id</dt><dd>${item.id} (message ${shown(item.messageId)} on ${shown(item.host)})</dd>` : ''}
</dl>`;
}

export function whyList(item: QuarantineItem): Html {
  const lines = whyLines(item.results, item.caughtBy);
  if (lines.length === 0) return html`<p class="muted">No check result was recorded.</p>`;
  return html`<ul class="why">${lines.map((l) => html`<li class="${l.caught ? 'caught' : ''}">${shown(l.sentence)}${l.caught ? ' — this is why it is held' : ''}</li>`)}</ul>`;
}

export function actionButtons(item: QuarantineItem, viewer: Viewer): Html {
  if (item.status !== 'held') return html``;
  return html`<div class="actions">
<form method="post" action="/item/${item.id}/release"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit" class="primary">Release${viewer.admin ? ' to the recipient' : ' to me'}</button></form>
${notSpamButton(item, viewer)}
<form method="post" action="/item/${item.id}/delete"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit" class="danger">Delete</button></form>
</div>`;
}

export function itemPage(o: { viewer: Viewer; item: QuarantineItem; preview: Html }): string {
  const { viewer, item } = o;
  const body = html`<p><a href="/">← Back to the list</a></p>
<h1>${subject(item)}</h1>
${metaList(item, viewer.admin)}
${actionButtons(item, viewer)}
${senderButtons(item, viewer)}
<h2>Why it is held</h2>
${whyList(item)}
<p><a href="/item/${item.id}/why">Every check in detail</a></p>
<h2>Preview</h2>
${o.preview}`;
  return page(subject(item), body, viewer);
}

export function whyPage(o: { viewer: Viewer; item: QuarantineItem }): string {
  const { viewer, item } = o;
  const lines = whyLines(item.results, item.caughtBy);
  const results = item.results.filter((r) => r.plugin !== 'quarantine');
  const body = html`<p><a href="/item/${item.id}">← Back to the message</a></p>
<h1>Why this message is held</h1>
${metaList(item, viewer.admin)}
<table class="checks">
<thead><tr><th>Check</th><th>What it found</th>${viewer.admin ? html`<th>Stage</th><th>Chosen by</th><th>Recorded</th>` : ''}</tr></thead>
<tbody>${results.map((r, i) => {
    const l = lines[i]!;
    return html`<tr>
<td>${viewer.admin ? html`${shown(r.plugin)}${r.params ? html`<span class="muted">=${shown(r.params)}</span>` : ''}` : shown(pluginName(r.plugin))}</td>
<td>${shown(l.sentence)}${l.caught ? html` <strong>(why it is held)</strong>` : ''}</td>
${
  viewer.admin
    ? html`<td class="nowrap">${r.stage}</td><td>${rule(r.stage === 'general' ? item.routing.general : item.routing.user)}</td>
<td><code>${shown(`verdict ${r.verdict}${r.score === undefined ? '' : `, score ${r.score}`}`)}</code><br><code class="muted">${shown(JSON.stringify(r.details))}</code></td>`
    : ''
}
</tr>`;
  })}</tbody>
</table>
${
  viewer.admin
    ? html`<h2>Routing</h2><dl class="meta"><dt>General chain</dt><dd>${rule(item.routing.general)}</dd><dt>Recipient's chain</dt><dd>${rule(item.routing.user)}</dd></dl>`
    : ''
}
${item.note ? html`<p class="muted">Note: ${shown(item.note)}</p>` : ''}`;
  return page('Why it is held', body, viewer);
}
