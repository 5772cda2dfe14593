// The "why" words for each built-in plugin's result, as the plugins record them, and the escaping of
// the page templates.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { ItemResult } from '../../src/store/types.js';
import { escapeHtml, html, trusted } from '../../src/web/html.js';
import { whyLines, whySummary } from '../../src/web/why.js';

const base = { params: '', stage: 'per-user' as const, verdict: 'accept', flagged: true };

test('each plugin\'s result in words a user understands', () => {
  const results: ItemResult[] = [
    { ...base, stage: 'general', plugin: 'clamav', verdict: 'reject', details: { virus: 'Eicar-Test-Signature', backend: '/run/clamd.ctl', ms: 3 } },
    { ...base, plugin: 'spamassassin', score: 12.34, details: { spam: true, threshold: 5, required: 5, user: 'alice@example.com', backend: '127.0.0.1:783', ms: 80 } },
    { ...base, plugin: 'spamassassin', flagged: false, score: 1.2, details: { spam: false, threshold: 6.5, required: 5, user: '(spamd default)' } },
    { ...base, plugin: 'rspamd', score: 16.5, details: { action: 'reject', score: 16.5, required: 15, symbols: ['BAYES_SPAM', 'R_DKIM_REJECT'] } },
    { ...base, plugin: 'dspam', details: { result: 'Spam', confidence: 0.87, probability: 0.9932 } },
    { ...base, stage: 'general', plugin: 'black', verdict: 'reject', details: { sender: 'bad@spam.example' } },
    { ...base, stage: 'general', plugin: 'attach', verdict: 'reject', details: { filename: 'invoice.pdf.exe', extension: '.exe' } },
    { ...base, stage: 'general', plugin: 'header', verdict: 'reject', details: { header: 'Subject', rule: '/viagra/i', part: 0 } },
    { ...base, plugin: 'mycheck', score: 3, text: 'listed in the local list', details: {} },
    { ...base, plugin: 'quarantine', verdict: 'drop', details: { store: 'global' } },
  ];
  const lines = whyLines(results, ['clamav', 'spamassassin', 'rspamd']);
  assert.deepEqual(
    lines.map((l) => l.sentence),
    [
      'ClamAV found the virus Eicar-Test-Signature',
      'SpamAssassin scored it 12.3 (your limit is 5.0): spam',
      'SpamAssassin scored it 1.2 (the limit is 6.5): not spam',
      'Rspamd scored it 16.5 (the limit is 15.0) and would refuse it; it matched BAYES_SPAM, R_DKIM_REJECT',
      'DSPAM classified it as spam (probability 99%, confidence 87%)',
      'The sender bad@spam.example is on the blocked senders list',
      'It has an attachment named invoice.pdf.exe of a type that is not accepted (.exe)',
      'Its Subject header matched the rule /viagra/i',
      'mycheck (mycheck) found something, score 3.0: listed in the local list',
    ],
  );
  assert.deepEqual(
    lines.map((l) => l.caught),
    [true, true, false, true, false, false, false, false, false],
  );
  assert.equal(whySummary(results, ['clamav']), 'ClamAV found the virus Eicar-Test-Signature');
  assert.equal(whyLines([{ ...base, plugin: 'clamav', flagged: false, details: { virus: null } }], [])[0]!.sentence, 'ClamAV found no virus');
  // Rspamd's actions in words; one it does not document is shown as it came.
  const advice = (action: string) => whyLines([{ ...base, plugin: 'rspamd', score: 7, details: { action, required: 15 } }], [])[0]!.sentence;
  assert.equal(advice('add header'), 'Rspamd scored it 7.0 (the limit is 15.0) and would mark it as spam');
  assert.equal(advice('rewrite subject'), 'Rspamd scored it 7.0 (the limit is 15.0) and would mark it as spam');
  assert.equal(advice('greylist'), 'Rspamd scored it 7.0 (the limit is 15.0) and would have it sent again later');
  assert.equal(advice('soft reject'), 'Rspamd scored it 7.0 (the limit is 15.0) and would have it sent again later');
  assert.equal(advice('no action'), 'Rspamd scored it 7.0 (the limit is 15.0) and would let it through');
  assert.equal(advice('custom'), 'Rspamd scored it 7.0 (the limit is 15.0) and advised: custom');
  assert.equal(advice('constructor'), 'Rspamd scored it 7.0 (the limit is 15.0) and advised: constructor');
});

test('templates escape every value; only our own markup passes as it is', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&\``), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;');
  const evil = '"><script>alert(1)</script>';
  assert.equal(html`<input value="${evil}">`.text, '<input value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">');
  assert.equal(html`<p>${[evil, html`<b>${evil}</b>`]}</p>`.text, '<p>&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;<b>&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</b></p>');
  assert.equal(html`${undefined}${null}${false}${0}`.text, '0');
  assert.equal(html`${trusted('<br>')}`.text, '<br>');
});
