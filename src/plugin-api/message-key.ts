// A key naming the exact bytes a plugin sees, for ctx.shared(): two runs may share a backend's answer
// only when they hand it the same message.

import { createHash } from 'node:crypto';

import { PrefixedMessage } from '../intake/message.js';
import type { MessageView } from '../pipeline/types.js';

const ids = new WeakMap<object, number>();
let next = 0;

function idOf(view: object): number {
  let id = ids.get(view);
  if (id === undefined) {
    id = ++next;
    ids.set(view, id);
  }
  return id;
}

/**
 * The same key for the same bytes as far as can be told cheaply: the same view object, or the same
 * base message with the same headers put in front (each recipient's chain makes its own prefix view).
 */
export function messageKey(view: MessageView): string {
  if (view instanceof PrefixedMessage) {
    return `${idOf(view.base)}+${createHash('sha256').update(view.prefix).digest('base64url')}`;
  }
  return String(idOf(view));
}
