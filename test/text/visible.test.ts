import assert from 'node:assert/strict';
import { test } from 'node:test';

import { visible, visibleJson } from '../../src/text/visible.js';

test('visible: C0, DEL, C1, separators and bidi overrides become escapes; the rest is untouched', () => {
  assert.equal(visible('a\x1b[2Jb'), 'a\\x1b[2Jb');
  assert.equal(visible('\r\n\t\x07\x00\x7f'), '\\x0d\\x0a\\x09\\x07\\x00\\x7f');
  assert.equal(visible(Buffer.from([0xc2, 0x9b]).toString('utf8')), '\\u009b');
  assert.equal(visible('\u0085\u2028\u202e\u2066'), '\\u0085\\u2028\\u202e\\u2066');
  assert.equal(visible('\ta\x1b\t', { tabs: true }), '\ta\\x1b\t');
  assert.equal(visible('plain ascii, é, 日本, \\x1b as text'), 'plain ascii, é, 日本, \\x1b as text');
});

test('visibleJson: valid JSON that parses to the same value, with no raw control character', () => {
  const value = { a: 'x\x1b[2J\u009b\x7f\u202e', n: 1 };
  const text = visibleJson(value);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(text, /[\x00-\x1f\x7f-\x9f\u202e]/);
  assert.deepEqual(JSON.parse(text), value);
});
