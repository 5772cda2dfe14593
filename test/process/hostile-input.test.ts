// What a sender on the internet controls (the envelope, the message bytes) must not make a scanner
// unusable: an address a backend cannot be told about would be deferred for ever by default, and with
// onerror=accept it would be delivered unscanned — a bypass the sender chooses.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { requireDaemon } from '../helpers/daemons.js';
import { makeDspamStandIn } from '../helpers/dspam.js';
import { envelopeOf, setupsForThisFile } from '../helpers/nqq.js';
import { startProxy } from '../helpers/proxy.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 120_000 };

// An internationalised (SMTPUTF8) sender, and one with a byte that is not UTF-8 at all.
const SENDERS: [string, Buffer][] = [
  ['a UTF-8 sender', Buffer.from('日本@example.jp', 'utf8')],
  ['a sender with a byte that is not UTF-8', Buffer.concat([Buffer.from('a'), Buffer.from([0xff]), Buffer.from('@client.example')])],
];

for (const [what, sender] of SENDERS) {
  test(`rspamd: ${what} is scanned, not a plugin failure (onerror=accept would deliver it unscanned)`, LIMIT, async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const proxy = await startProxy(new URL(url).host);
    t.after(() => proxy.close());
    const s = make();
    s.write('nqqueue.cfb', `:rspamd=url=http://${proxy.address},onerror=accept\n`);
    const r = await s.run({ envelope: envelopeOf(sender, ['rcpt@example.com', 'other@example.com']) });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /rspamd failed/);
    assert.match(r.logLines[0]!, /rcpt@example\.com=deliver\[rspamd:accept:[\d.]+ms\]/);
    // rspamd was asked, once per recipient, with the sender as UTF-8 bytes.
    const requests = proxy.requests();
    assert.equal(requests.length, 2);
    const expected = Buffer.from(`\r\nFrom: ${sender.toString('utf8')}\r\n`, 'utf8');
    for (const req of requests) assert.ok(req.includes(expected), req.subarray(0, 400).toString('latin1'));
  });
}

test('rspamd: a UTF-8 recipient is scanned too, and rspamd gets its UTF-8 bytes', LIMIT, async (t) => {
  const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
  if (!url) return;
  const proxy = await startProxy(new URL(url).host);
  t.after(() => proxy.close());
  const s = make();
  s.write('nqqueue.cfb', `:rspamd=url=http://${proxy.address},onerror=accept\n`);
  const r = await s.run({ envelope: envelopeOf('sender@client.example', [Buffer.from('юзер@example.com', 'utf8'), Buffer.from('jürgen@example.com', 'utf8')]) });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /rspamd failed/);
  assert.match(r.logLines[0]!, /юзер@example\.com=deliver\[rspamd:accept:[\d.]+ms\]/);
  const sent = Buffer.concat(proxy.requests());
  for (const rcpt of ['юзер@example.com', 'jürgen@example.com']) assert.ok(sent.includes(Buffer.from(`\r\nRcpt: ${rcpt}\r\n`, 'utf8')), rcpt);
});

test('log line: the bidi marks (LRM, RLM, ALM) in a sender are escaped like the overrides', async () => {
  const s = make();
  s.write('general.cfb', ':black=nobody@example.org\n');
  const sender = 'evil\u200f\u061c\u200e\u202e@client.example';
  const r = await s.run({ envelope: envelopeOf(Buffer.from(sender, 'utf8'), ['rcpt@example.com']) });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /[\u200e\u200f\u061c\u202e]/u);
  assert.match(r.logLines[0]!, /evil\\u200f\\u061c\\u200e\\u202e@client\.example/);
});

test('spamassassin: a UTF-8 recipient is sent to spamd as its UTF-8 bytes (two recipients never collapse into one spamd user)', LIMIT, async (t) => {
  const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
  if (!spamd) return;
  const proxy = await startProxy(spamd);
  t.after(() => proxy.close());
  const s = make();
  s.write('nqqueue.cfb', `:spamassassin=host=${proxy.address}\n`);
  // U+65E5 and U+00E5 have the same low byte: written as latin1 they were one user, 0xE5.
  const rcpts = ['\u65e5@example.com', '\u00e5@example.com'];
  const r = await s.run({ envelope: envelopeOf('sender@client.example', rcpts.map((a) => Buffer.from(a, 'utf8'))) });
  assert.equal(r.code, 0, r.stderr);
  const sent = Buffer.concat(proxy.requests());
  for (const rcpt of rcpts) assert.ok(sent.includes(Buffer.from(`\r\nUser: ${rcpt}\r\n`, 'utf8')), `User: ${rcpt}: ${sent.toString('latin1').slice(0, 300)}`);
});

test('black: a listed sender written with capitals or a trailing dot (evil.com. is evil.com) is still refused', async () => {
  const s = make();
  s.write('general.cfb', ':black=spammer@evil.example,@worse.example\n');
  for (const from of ['Spammer@Evil.EXAMPLE.', 'spammer@evil.example..', 'anyone@Worse.Example.']) {
    const r = await s.run({ from, extraEnv: { NQQUEUE_REJECT: 'plain' } });
    assert.equal(r.code, 31, `${from}: ${r.stderr}`);
  }
  assert.equal(s.standIn.calls().length, 0);
  const ok = await s.run({ from: 'friend@evil.example.' });
  assert.equal(ok.code, 0, ok.stderr);
});

test("dspam: o'brien@ and other atext local parts are real mailboxes: they are scanned, not a failure (deferred for ever by default)", LIMIT, async () => {
  const s = make();
  const dspam = makeDspamStandIn(s.dir);
  s.write('nqqueue.cfb', `:dspam=bin=${dspam.path}\n`);
  const rcpts = ["o'brien@example.com", 'sales&support@example.com', 'user#1@example.com'];
  const r = await s.run({ to: rcpts });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /dspam failed/);
  assert.deepEqual(dspam.calls().map((c) => c.user).sort(), [...rcpts].sort());
  // What could climb out of a path or pass for an option is still never given to dspam.
  for (const bad of ['-x@example.com', '../x@example.com', 'a/b@example.com']) {
    const refused = await s.run({ to: [bad], extraEnv: { NQQUEUE_REJECT: 'plain' } });
    assert.equal(refused.code, 71, `${bad}: ${refused.stderr}`);
    assert.match(refused.stderr, /not a plain address: not given to dspam/);
  }
  assert.equal(dspam.calls().length, rcpts.length);
});
