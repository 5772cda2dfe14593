// spamassassin: user modes, per-line threshold, scope (who shares a scan), defaults.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PluginConfigError } from '../../src/plugin-api/define.js';
import spamassassin, { DEFAULT_HOST, DEFAULT_MAXSIZE, decide, parseHits, parseUser, spamText } from '../../src/plugins/spamassassin.js';
import { configure } from '../helpers/configure.js';

test('user=rcpt (default), global, or a fixed name; bad names refused', () => {
  assert.deepEqual(parseUser(undefined), { kind: 'rcpt' });
  assert.deepEqual(parseUser('rcpt'), { kind: 'rcpt' });
  assert.deepEqual(parseUser('global'), { kind: 'global' });
  assert.deepEqual(parseUser('spam-team'), { kind: 'name', name: 'spam-team' });
  for (const bad of ['', 'two words', 'tab\there', 'x'.repeat(300)]) assert.throws(() => parseUser(bad), PluginConfigError);
});

test('hits= is a number', () => {
  assert.equal(parseHits(undefined), undefined);
  assert.equal(parseHits('6'), 6);
  assert.equal(parseHits('4.5'), 4.5);
  assert.equal(parseHits('-1'), -1);
  for (const bad of ['', 'five', '5e3', '1,5']) assert.throws(() => parseHits(bad), PluginConfigError);
});

test('the line\'s threshold decides when it has one, spamd\'s otherwise (score >= threshold is spam)', () => {
  const scan = { isSpam: true, score: 5, threshold: 3 };
  assert.deepEqual(decide(scan, undefined), { spam: true, threshold: 3 });
  assert.deepEqual(decide(scan, 6), { spam: false, threshold: 6 });
  assert.deepEqual(decide(scan, 5), { spam: true, threshold: 5 });
  assert.deepEqual(decide({ isSpam: false, score: 5, threshold: 8 }, 4), { spam: true, threshold: 4 });
  assert.equal(spamText(1000, 5), 'message rejected as spam (score 1000.0, required 5.0) (#5.7.1)');
});

test('scope: per recipient only when the spamd user is the recipient', () => {
  assert.equal(spamassassin.scope!(configure(spamassassin, ''), 'a@example.com'), 'a@example.com');
  assert.equal(spamassassin.scope!(configure(spamassassin, 'user=global,hits=3'), 'a@example.com'), undefined);
  assert.equal(spamassassin.scope!(configure(spamassassin, 'user=team'), 'a@example.com'), undefined);
});

test('defaults: spamd on 127.0.0.1:783, a 512K size limit (spamc\'s) applied by the pipeline', () => {
  assert.deepEqual(configure(spamassassin, '').client.endpoints.map((e) => e.text), [DEFAULT_HOST]);
  assert.equal(spamassassin.defaults?.maxsize, DEFAULT_MAXSIZE);
  assert.equal(DEFAULT_MAXSIZE, 512 * 1024);
  assert.deepEqual(configure(spamassassin, '', '[spamassassin]\nhost = 10.0.0.3:783\nhost = 10.0.0.4:783\n').client.endpoints.map((e) => e.text), ['10.0.0.3:783', '10.0.0.4:783']);
  assert.deepEqual(spamassassin.stages, ['per-user']);
});
