// rspamd: the action mapping, and what run() does with a reply a real rspamd gives only with other
// configurations (no milter headers, fields to remove, a Subject to write) — served by a fake rspamd.

import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { MemoryMessage } from '../../src/intake/message.js';
import { BackendError, PluginConfigError, type PluginContext } from '../../src/plugin-api/define.js';
import rspamd, { fallbackHeaders, mapAction, removalPicks, type RspamdConfig } from '../../src/plugins/rspamd.js';
import type { Outcome } from '../../src/pipeline/types.js';
import { toEnvelope } from '../../src/qmail/envelope.js';
import { configure } from '../helpers/configure.js';

const reply = (action: string, extra: object = {}) => ({ action, score: 7.5, requiredScore: 15, smtpMessage: undefined, addHeaders: [], ...extra });

test('actions: reject, soft reject and greylist act unless pass; add header and rewrite subject tag; no action accepts', () => {
  assert.deepEqual(mapAction(reply('reject', { smtpMessage: 'Spam message rejected' }), false), { kind: 'reject', text: 'Spam message rejected' });
  assert.deepEqual(mapAction(reply('reject'), false), { kind: 'reject', text: 'message rejected as spam (rspamd score 7.50) (#5.7.1)' });
  assert.deepEqual(mapAction(reply('soft reject', { smtpMessage: 'Try again later' }), false), { kind: 'tempfail', text: 'Try again later' });
  assert.equal(mapAction(reply('greylist'), false).kind, 'tempfail');
  const tagged = mapAction(reply('add header', { addHeaders: [{ name: 'X-Spam', value: 'Yes' }] }), false);
  assert.deepEqual(tagged, { kind: 'accept', headers: [{ name: 'X-Spam', value: 'Yes' }], flagged: true, subject: false });
  assert.deepEqual(mapAction(reply('rewrite subject'), false), { kind: 'accept', headers: fallbackHeaders(reply('rewrite subject')), flagged: true, subject: true });
  assert.deepEqual(mapAction(reply('no action'), false), { kind: 'accept', headers: [], flagged: false, subject: false });
  for (const action of ['reject', 'soft reject', 'greylist']) {
    const m = mapAction(reply(action), true);
    assert.equal(m.kind, 'accept', action);
    assert.equal(m.kind === 'accept' && m.flagged, true);
  }
  assert.throws(() => mapAction(reply('discard'), false), BackendError);
});

test('headers for a tagged message when rspamd sent none', () => {
  assert.deepEqual(fallbackHeaders(reply('add header')), [
    { name: 'X-Spam-Flag', value: 'YES' },
    { name: 'X-Rspamd-Result', value: 'action="add header"; score=7.50; required=15.00' },
  ]);
});

test('milter remove_headers: 0 every instance, n the nth, -n the nth from the end', () => {
  const r = [
    { name: 'X-Spam', index: 0 },
    { name: 'X-Two', index: 2 },
    { name: 'X-Last', index: -1 },
  ];
  assert.deepEqual([1, 2, 3].map((n) => removalPicks(r, 'x-spam', n, 3)), [true, true, true]);
  assert.deepEqual([1, 2, 3].map((n) => removalPicks(r, 'X-Two', n, 3)), [false, true, false]);
  assert.deepEqual([1, 2, 3].map((n) => removalPicks(r, 'X-Last', n, 3)), [false, false, true]);
  assert.equal(removalPicks(r, 'Subject', 1, 1), false);
});

test('settings=ID: recipients share; without it each recipient is asked alone; ids are checked', () => {
  assert.equal(rspamd.scope!(configure(rspamd, ''), 'a@x'), 'a@x');
  assert.equal(rspamd.scope!(configure(rspamd, 'settings=nqq_strict'), 'a@x'), undefined);
  assert.throws(() => configure(rspamd, 'settings=a b'), PluginConfigError);
  assert.throws(() => configure(rspamd, 'url=ftp://x'), PluginConfigError);
  assert.deepEqual(configure(rspamd, '').client.urls, ['http://127.0.0.1:11333']);
  assert.deepEqual(configure(rspamd, 'url=http://a:1,url=http://b:2').client.urls, ['http://a:1', 'http://b:2']);
});

async function fakeRspamd(body: object): Promise<{ url: string; seen: IncomingHttpHeaders[]; close(): void }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, close: () => server.close() };
}

function context(config: RspamdConfig, message: Buffer): PluginContext<RspamdConfig> {
  const memo = new Map<string, Promise<unknown>>();
  const envelope = toEnvelope({ sender: Buffer.from('s@x.example'), recipients: [Buffer.from('a@example.com')] });
  return {
    config,
    stage: 'per-user',
    message: new MemoryMessage(message),
    envelope,
    sender: 's@x.example',
    recipients: ['a@example.com'],
    recipient: 'a@example.com',
    group: ['a@example.com'],
    rules: {},
    client: { env: {} },
    results: [],
    signal: AbortSignal.timeout(10_000),
    settings: defaultSettings(),
    home: '/nonexistent',
    messageId: 'TESTID',
    shared: (key, work) => {
      if (!memo.has(key)) memo.set(key, work());
      return memo.get(key) as never;
    },
    onSettled: () => undefined,
    onCommit: () => undefined,
    debug: () => undefined,
  };
}

test('run: a Subject rewritten in place (line breaks in rspamd\'s subject made spaces), fields rspamd removes taken out, fallback headers added', async (t) => {
  const fake = await fakeRspamd({
    action: 'rewrite subject',
    score: 9,
    required_score: 15,
    subject: '*** SPAM ***\r\nBcc: victim@example.com hello',
    milter: { remove_headers: { 'X-Spam': 0 } },
  });
  t.after(() => fake.close());
  const msg = Buffer.from('Received: from a\nX-Spam: Yes (forged)\nSubject: hello\n\tfolded\nTo: b\nX-Spam: again\n\nbody X-Spam: stays\nSubject: in the body\n');
  const config = configure(rspamd, `url=${fake.url}`);
  const out = (await rspamd.run(context(config, msg))) as Extract<Outcome, { verdict: 'accept' }>;
  assert.equal(out.verdict, 'accept');
  assert.equal(out.flagged, true);
  assert.deepEqual(out.headers, fallbackHeaders({ action: 'rewrite subject', score: 9, requiredScore: 15 }));
  // The edit is a new header block over the body of the message it came from (a view, not a copy).
  assert.ok(out.replace !== undefined && !Buffer.isBuffer(out.replace));
  assert.equal((await out.replace.buffer()).toString(), 'Received: from a\nSubject: *** SPAM *** Bcc: victim@example.com hello\nTo: b\n\nbody X-Spam: stays\nSubject: in the body\n');
  // What was sent: one Rcpt, Hostname "unknown" when the client's is not known, the queue id.
  assert.equal(fake.seen[0]!.rcpt, 'a@example.com');
  assert.equal(fake.seen[0]!.hostname, 'unknown');
  assert.equal(fake.seen[0]!['queue-id'], 'TESTID');
  assert.equal(fake.seen[0]!.from, 's@x.example');
});

test('run: nothing to edit, nothing copied', async (t) => {
  const fake = await fakeRspamd({ action: 'no action', score: 1, required_score: 15, milter: { remove_headers: { 'X-Spam': 0 }, add_headers: { 'X-Spamd-Result': 'default: False [1.00 / 15.00]' } } });
  t.after(() => fake.close());
  const out = (await rspamd.run(context(configure(rspamd, `url=${fake.url}`), Buffer.from('Subject: hi\n\nbody\n')))) as Extract<Outcome, { verdict: 'accept' }>;
  assert.deepEqual(out.headers, [{ name: 'X-Spamd-Result', value: 'default: False [1.00 / 15.00]' }]);
  assert.equal(out.replace, undefined);
  assert.equal(out.flagged, false);
});
