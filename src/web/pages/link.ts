// The page a digest link opens: the item and one button. Opening it does nothing — mail security
// products fetch every link in a message — the button (a POST to the same address) does the action once.

import type { QuarantineItem } from '../../store/types.js';
import type { LinkAction } from '../../links/links.js';
import { html } from '../html.js';
import { page } from './layout.js';
import { metaList, whyList } from './item.js';

const VERBS: Record<LinkAction, string> = { release: 'Release this message to me', delete: 'Delete this message', view: '' };

export function linkPage(o: { token: string; action: LinkAction; item: QuarantineItem }): string {
  const { item, action } = o;
  const button =
    action === 'view'
      ? html`<p><a href="/item/${item.id}">Log in to see it and act on it</a></p>`
      : html`<form method="post" action="/link/${o.token}" class="actions"><button type="submit" class="${action === 'delete' ? 'danger' : 'primary'}">${VERBS[action]}</button></form>
<p class="muted">Nothing happens until you press the button. The link works once.</p>`;
  const body = html`<h1>${action === 'release' ? 'Release a held message' : action === 'delete' ? 'Delete a held message' : 'A held message'}</h1>
${metaList(item, false)}
<h2>Why it is held</h2>
${whyList(item)}
${button}`;
  return page('Held message', body);
}
