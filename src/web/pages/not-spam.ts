// The "Not spam" button of an item page: shown while the item is held and a learner voted spam on it.

import type { QuarantineItem } from '../../store/types.js';
import { spamVoters } from '../../learn/not-spam.js';
import { html, type Html } from '../html.js';
import type { Viewer } from './layout.js';

export function notSpamButton(item: QuarantineItem, viewer: Viewer): Html {
  if (item.status !== 'held' || spamVoters(item).length === 0) return html``;
  return html`<form method="post" action="/item/${item.id}/not-spam"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Not spam: release${viewer.admin ? '' : ' to me'} and teach the filter</button></form>`;
}
