// What every engine checks the same way about what learning remembers.

import type { LearnClass, LearnedKey } from './types.js';

export const CLASSES: readonly LearnClass[] = ['spam', 'ham'];

export function checkKey(key: LearnedKey): void {
  if (!/^[0-9a-f]{16,128}$/.test(key.digest)) throw new TypeError(`not a message digest: ${JSON.stringify(String(key.digest).slice(0, 40))}`);
  if (key.user === '' || key.learner === '') throw new TypeError('a learned entry needs a user and a learner');
}
