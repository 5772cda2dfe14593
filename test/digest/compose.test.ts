// The digest mail as bytes (src/digest/compose.ts): quoted-printable that any decoder reads back to the
// same text within RFC 2045's limits, hostile text made harmless, a long list cut and counted, the
// words for why an item is held.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { composeDigest, escapeHtml, MAX_LISTED, oneLine, quotedPrintable, type DigestEntry } from '../../src/digest/compose.js';
import { whySummary } from '../../src/web/why.js';
import type { QuarantineItem } from '../../src/store/types.js';
import { decodeQuotedPrintable, readMail } from '../helpers/mail.js';

function item(n: number, over: Partial<QuarantineItem> = {}): QuarantineItem {
  return {
    id: `0123456789abcdef${String(n).padStart(4, '0')}`,
    date: new Date(Date.UTC(2026, 11, 1, 10, n % 60)).toISOString(),
    messageId: `m${n}`,
    host: 'mx.example.com',
    size: 10,
    sender: { text: `s${n}@example.org`, base64: '' },
    recipient: { text: 'a@example.com', base64: '' },
    owner: 'a@example.com',
    domain: 'example.com',
    subject: `subject ${n}`,
    results: [{ plugin: 'clamav', params: '', stage: 'general', verdict: 'reject', flagged: true, details: { virus: 'Eicar-Test-Signature' } }],
    caughtBy: ['clamav'],
    routing: {},
    status: 'held',
    ...over,
  };
}

const base = { from: 'postmaster@mx.example.com', to: 'a@example.com', now: new Date(Date.UTC(2026, 11, 2, 0, 0, 0)), hostname: 'mx.example.com', expireMs: 30 * 86_400_000 };

test('quoted-printable: any text reads back the same, in lines of at most 76 printable characters', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => {
      const text = s.replace(/\r/g, '');
      assert.equal(decodeQuotedPrintable(quotedPrintable(text)).toString('utf8'), Buffer.from(text, 'utf8').toString('utf8'));
    }),
    { numRuns: 400 },
  );
  const long = `${'x'.repeat(300)} ${'é'.repeat(100)} trailing  `;
  const qp = quotedPrintable(long);
  assert.ok(qp.split('\n').every((l) => l.length <= 76));
  assert.equal(decodeQuotedPrintable(qp).toString('utf8'), long);
  assert.match(quotedPrintable('From here'), /^=46rom here$/, '"From " at a line start is encoded');
  assert.match(quotedPrintable('.\n.x'), /^=2E\n=2Ex$/, 'a leading dot is encoded');
  assert.equal(quotedPrintable('a=b'), 'a=3Db');
});

test('oneLine and escapeHtml: no control character, no line break, no markup', () => {
  assert.equal(oneLine('a\r\nb\tc\u0085d\u2028e\u202ef\x1b[2Jg'), 'a b c d e f [2Jg');
  assert.equal(oneLine('x'.repeat(500)).length, 200);
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

test('a digest of more than MAX_LISTED items lists the newest MAX_LISTED and counts the rest; the Subject counts all', () => {
  const entries: DigestEntry[] = Array.from({ length: MAX_LISTED }, (_, i) => ({ item: item(i) }));
  const m = readMail(composeDigest({ ...base, entries, more: 7 }));
  assert.deepEqual(m.header('Subject'), [`${MAX_LISTED + 7} messages held for you in quarantine`]);
  const text = m.parts[0]!.text;
  assert.match(text, /\.\.\. and 7 more messages, not listed here\./);
  assert.equal(text.match(/^\d+\. /gm)?.length, MAX_LISTED);
  assert.match(m.parts[1]!.text, /and 7 more messages/);
});

test('the boundary never appears inside a part, and each part is declared UTF-8 quoted-printable', () => {
  const entries: DigestEntry[] = [{ item: item(1, { subject: '--=_nqqueue_ ===== =_ ☃ 日本' }) }];
  const bytes = composeDigest({ ...base, entries, more: 0 });
  const m = readMail(bytes);
  assert.equal(m.parts.length, 2);
  assert.match(m.parts[0]!.text, /--=_nqqueue_ ===== =_ ☃ 日本/);
  const boundary = /boundary="([^"]+)"/.exec(bytes.toString('latin1'))![1]!;
  assert.equal(bytes.toString('latin1').split(`--${boundary}`).length, 4, 'two parts: three delimiters');
});

test("why: the console's words, one line, escaped in HTML", () => {
  const spam = item(2, { caughtBy: ['spamassassin'], results: [{ plugin: 'spamassassin', params: '', stage: 'per-user', verdict: 'accept', flagged: true, score: 12.34, details: { threshold: 5 } }] });
  const virus = item(1);
  const hostile = item(3, { caughtBy: ['mine'], results: [{ plugin: 'mine', params: '', stage: 'per-user', verdict: 'accept', flagged: true, text: 'too <b>shouty</b>\r\nX-Evil: 1', details: {} }] });
  const m = readMail(composeDigest({ ...base, entries: [spam, virus, hostile].map((i) => ({ item: i })), more: 0 }));
  const [text, html] = [m.parts[0]!.text, m.parts[1]!.text];
  for (const i of [spam, virus]) {
    const words = whySummary(i.results, i.caughtBy);
    assert.ok(words.length > 10);
    assert.ok(text.includes(`   Why:     ${words}\n`), words);
    assert.ok(html.includes(escapeHtml(words)), words);
  }
  assert.match(text, /^ {3}Why: .*too <b>shouty<\/b> X-Evil: 1$/m);
  assert.match(html, /too &lt;b&gt;shouty&lt;\/b&gt; X-Evil: 1/);
});
