// The verdict a delivered copy carries (NQqueue's first trace header, then the headers of the scanners
// it names), and the digest a message is remembered by — both read from bytes that came from the
// internet: a sender's forged trace or scanner headers must not decide what a filter learns.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { learningDigest } from '../../src/learn/digest.js';
import { dspamArgs } from '../../src/learn/dspam.js';
import { flagsOf, inFolders, vpopmailUser } from '../../src/learn/maildir.js';
import { deliveredVerdict } from '../../src/learn/verdict.js';

const trace = (perUser: string) => `Received: by mx.example.com (NQqueue 0.1.0; general: none;\n\tper-user: ${perUser}) id mabc; Tue, 01 Dec 2026 10:00:00 +0000\n`;
const original = 'From: a@b.example\nTo: c@example.com\nSubject: hi\nMessage-ID: <1@b.example>\nDate: Tue, 01 Dec 2026 09:59:00 +0000\n\nHello there.\n';
const local = 'Return-Path: <a@b.example>\nDelivered-To: c@example.com\n';

test('spamd, rspamd and dspam verdicts, each read only when the trace names its plugin', () => {
  const spamd = deliveredVerdict(Buffer.from(`${local}${trace('spamassassin=accept/7.2')}X-Spam-Flag: YES\nX-Spam-Status: Yes, score=7.2\n${original}`));
  assert.deepEqual(spamd, { spam: true, ran: ['spamassassin'], votedSpam: ['spamassassin'] });
  const ham = deliveredVerdict(Buffer.from(`${trace('spamassassin=accept/1.0, dspam=accept')}X-Spam-Status: No, score=1.0\nX-DSPAM-Result: Innocent\nX-DSPAM-Signature: 0123abcd\n${original}`));
  assert.deepEqual(ham, { spam: false, ran: ['spamassassin', 'dspam'], votedSpam: [], dspamSignature: '0123abcd', dspamResult: 'Innocent' });
  const rspamd = deliveredVerdict(Buffer.from(`${trace('rspamd=accept/7.35')}X-Spam-Flag: YES\nX-Rspamd-Result: action="add header"; score=7.35; required=15.00\n${original}`));
  assert.deepEqual(rspamd, { spam: true, ran: ['rspamd'], votedSpam: ['rspamd'] });
  // dspam ran, but the sender wrote X-Spam-Flag: spamd did not run to strip it: it says nothing.
  const forged = deliveredVerdict(Buffer.from(`${trace('dspam=accept')}X-DSPAM-Result: Innocent\nX-Spam-Flag: YES\n${original}`));
  assert.deepEqual(forged, { spam: false, ran: ['dspam'], votedSpam: [], dspamResult: 'Innocent' });
});

test('no verdict: no trace, no learner in it, a failed learner; a forged trace below ours is not read', () => {
  assert.equal(deliveredVerdict(Buffer.from(`${local}X-Spam-Flag: YES\n${original}`)), undefined);
  assert.equal(deliveredVerdict(Buffer.from(`${trace('black=accept')}${original}`)), undefined);
  assert.equal(deliveredVerdict(Buffer.from(`${trace('spamassassin=accept/failed')}X-Spam-Flag: YES\n${original}`)), undefined);
  assert.equal(deliveredVerdict(Buffer.from(`${trace('spamassassin=skipped')}X-Spam-Flag: YES\n${original}`)), undefined);
  // Only the first trace (ours, at the top) counts: the sender's own "trace" claiming dspam is ignored.
  const v = deliveredVerdict(Buffer.from(`${trace('spamassassin=accept/0.5')}X-Spam-Status: No, score=0.5\n${trace('dspam=accept')}X-DSPAM-Result: Spam\n${original}`));
  assert.deepEqual(v, { spam: false, ran: ['spamassassin'], votedSpam: [] });
});

test('the digest is the same wherever the message is found, and differs for another message', () => {
  const bare = learningDigest(Buffer.from(original));
  assert.match(bare, /^[0-9a-f]{64}$/);
  assert.equal(learningDigest(Buffer.from(`${local}${trace('spamassassin=accept')}X-Spam-Flag: YES\n${original}`)), bare);
  assert.equal(learningDigest(Buffer.from(original.replace(/\n/g, '\r\n'))), bare);
  assert.equal(learningDigest(Buffer.from(original.replace('Subject: hi', 'Subject: ***SPAM*** hi'))), bare);
  assert.notEqual(learningDigest(Buffer.from(original.replace('Hello there.', 'Hello there!'))), bare);
  assert.notEqual(learningDigest(Buffer.from(original.replace('<1@b.example>', '<2@b.example>'))), bare);
});

test('dspam retraining: an error by its signature, a corpus message without one, nothing when dspam was right', () => {
  assert.deepEqual(dspamArgs('spam', 'a@example.com', { dspamSignature: 'abc', dspamResult: 'Innocent' }), ['--user', 'a@example.com', '--class=spam', '--source=error', '--signature=abc']);
  assert.deepEqual(dspamArgs('ham', 'a@example.com', { dspamSignature: 'abc', dspamResult: 'Spam' }), ['--user', 'a@example.com', '--class=innocent', '--source=error', '--signature=abc']);
  assert.deepEqual(dspamArgs('ham', 'a@example.com', {}), ['--user', 'a@example.com', '--class=innocent', '--source=corpus']);
  assert.equal(dspamArgs('spam', 'a@example.com', { dspamSignature: 'abc', dspamResult: 'Spam' }), undefined);
});

test('Maildir names: flags, Junk folders and their subfolders, the user of a vpopmail path', () => {
  assert.equal(flagsOf('1764000000.M1P2.mx,S=12:2,RS'), 'RS');
  assert.equal(flagsOf('1764000000.M1P2.mx,S=12'), '');
  assert.ok(inFolders('.Junk', ['.Junk', '.Spam']));
  assert.ok(inFolders('.junk.2026', ['.Junk']));
  assert.ok(!inFolders('.JunkFood', ['.Junk']));
  assert.equal(vpopmailUser('/home/vpopmail/domains/Example.COM/Alice/Maildir/.Junk/cur/x'), 'alice@example.com');
  assert.equal(vpopmailUser('/home/alice/Maildir/.Junk'), undefined);
});
