// Header fields NQqueue writes: a line over the RFC 5322 limit is folded, never refused.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { foldLong, MAX_LINE, renderHeaders } from '../../src/pipeline/headers.js';

const lines = (b: Buffer | string) => b.toString().replace(/\n$/, '').split('\n');
const longest = (b: Buffer | string) => Math.max(...lines(b).map((l) => Buffer.byteLength(l)));
/** RFC 5322 unfolding: a newline before a space or tab goes. */
const unfold = (s: string) => s.replace(/\n(?=[ \t])/g, '');

test('a value of words over 990 bytes is folded before its spaces; unfolding gives it back exactly', () => {
  const value = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
  const out = renderHeaders([{ name: 'X-Spam-Report', value }]);
  assert.ok(longest(out) <= 78, `longest line ${longest(out)}`);
  assert.ok(lines(out).slice(1).every((l) => /^[ \t]\S/.test(l)));
  assert.equal(unfold(out.toString()), `X-Spam-Report: ${value}\n`);
  // Folding is not a way around the checks: line breaks and control characters are still refused.
  assert.throws(() => renderHeaders([{ name: 'X-A', value: `${value}\nBcc: x` }]), /line break/);
  assert.throws(() => renderHeaders([{ name: 'X-A', value: `${value}\rb` }]), /control character/);
});

test('a run over 990 bytes without a space is cut every 990 bytes with a tab, on character boundaries', () => {
  const value = `${'é'.repeat(700)}${'x'.repeat(900)}`;
  const out = renderHeaders([{ name: 'X-Spam-Long', value }]);
  assert.ok(longest(out) <= MAX_LINE, `longest line ${longest(out)}`);
  assert.ok(lines(out).length >= 3);
  assert.equal(out.toString().replace(/\n\t/g, ''), `X-Spam-Long: ${value}\n`);
  assert.ok(!out.toString().includes('\ufffd'));
});

test('existing folds and short lines are kept as they are; only the long line of a field is refolded', () => {
  const short = 'a, b,\n\tc';
  assert.equal(renderHeaders([{ name: 'X-A', value: short }]).toString(), `X-A: ${short}\n`);
  const long = Array.from({ length: 150 }, (_, i) => `t${i}`).join(' ');
  const value = `first line\n\t${long}\n\tlast`;
  const out = foldLong(`X-B: ${value}`);
  assert.ok(out.startsWith('X-B: first line\n\t'));
  assert.ok(out.endsWith('\n\tlast'));
  assert.equal(unfold(out), unfold(`X-B: ${value}`));
  assert.ok(longest(out) <= MAX_LINE);
});
