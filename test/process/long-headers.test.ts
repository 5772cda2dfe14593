// A header line NQqueue writes that is longer than RFC 5322 allows is folded, and the message is
// delivered: never deferred (a deferral would come back for ever, the same header each time).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { requireDaemon } from '../helpers/daemons.js';
import { setupsForThisFile, withoutTrace } from '../helpers/nqq.js';

const make = setupsForThisFile();

const unfold = (s: string) => s.replace(/\n(?=[ \t])/g, '');
const longest = (s: string) => Math.max(...s.split('\n').map((l) => Buffer.byteLength(l)));
const headOf = (b: Buffer) => b.toString('latin1').slice(0, b.toString('latin1').indexOf('\n\n') + 1);

test('a plugin header of 1,500 bytes (words, and one run with no space) is folded and delivered', async () => {
  const s = make();
  const words = Array.from({ length: 150 }, (_, i) => `word-${i}`).join(' ');
  const token = 'y'.repeat(1500);
  const prog = s.script('long.sh', `#!/bin/sh\ncat >/dev/null\nprintf 'X-Words: %s\\nX-Token: %s\\n' '${words}' '${token}'\n`);
  s.write('nqqueue.cfb', `:exec=${prog}\n`);
  const r = await s.run({});
  assert.equal(r.code, 0, r.stderr);
  const head = headOf(withoutTrace(r.deliveries[0]!.message));
  assert.ok(longest(head) <= 990, `longest line ${longest(head)}`);
  assert.ok(unfold(head).includes(`X-Words: ${words}\n`));
  assert.match(head, /^X-Token: y+\n(\ty+\n)+/m);
  assert.ok(head.replace(/\n\t/g, '').includes(`X-Token: ${token}\n`));
});

test('spamd headers over 990 bytes (a user whose prefs add long ones, unfolded) are folded and delivered', async (t) => {
  const address = requireDaemon('NQQ_TEST_SPAMD', t);
  if (!address) return;
  const s = make();
  s.write('nqqueue.conf', `[spamassassin]\nhost = ${address}\n`);
  s.write('nqqueue.cfb', ':spamassassin\n');
  const r = await s.run({ to: ['longlines@example.com'], timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const head = headOf(withoutTrace(r.deliveries[0]!.message));
  assert.ok(longest(head) <= 990, `longest line ${longest(head)}`);
  const words = Array.from({ length: 100 }, (_, i) => `nqq-word-${String(i).padStart(4, '0')}`).join(' ');
  assert.ok(unfold(head).includes(`X-Spam-Long-Words: ${words}\n`), head.slice(0, 3000));
  assert.ok(head.replace(/\n\t/g, '').includes(`X-Spam-Long-Token: ${'x'.repeat(1200)}\n`), head.slice(0, 3000));
});
