// Small formatting shared by the pages.

import type { QuarantineItem } from '../../store/types.js';
import { shown } from '../html.js';

/** `2026-12-02 00:10 UTC` from an ISO date. */
export function when(iso: string | undefined): string {
  if (!iso) return '';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

export function address(a: { text: string }): string {
  return a.text === '' ? '<> (a bounce)' : `<${shown(a.text)}>`;
}

export function subject(item: QuarantineItem): string {
  return item.subject === '' ? '(no subject)' : shown(item.subject);
}

export function size(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const STATUS_WORDS: Record<string, string> = {
  held: 'held',
  releasing: 'being released',
  released: 'released',
  deleted: 'deleted',
  expired: 'expired',
};
