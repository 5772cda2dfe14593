// HTML that escapes by default: every value put into an `html` template is escaped unless it is itself
// Html (a fragment built the same way). What a page shows comes from the internet (addresses, subjects,
// message text): there is no way to put a string into a page unescaped except `trusted()`, which is for
// constant markup of our own.

import { visible } from '../text/visible.js';

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text for an element's content or a double-quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

function piece(v: unknown): string {
  if (v instanceof Html) return v.text;
  if (v === undefined || v === null || v === false) return '';
  if (Array.isArray(v)) return v.map(piece).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Constant markup of our own (never text from a request or a message). */
export function trusted(markup: string): Html {
  return new Html(markup);
}

/**
 * Text from outside shown as it is but unable to hide or reorder itself: control characters and
 * bidirectional overrides become visible escapes (then the whole is escaped as usual by `html`).
 */
export function shown(s: string): string {
  return visible(s);
}
