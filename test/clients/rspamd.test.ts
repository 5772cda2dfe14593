// rspamd client against a real rspamd (DNS modules off, settings for alice and bob).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { parseCheckReply, RspamdClient, type RspamdCallOptions } from '../../src/clients/rspamd.js';
import { BackendError } from '../../src/plugin-api/define.js';
import { requireDaemon, startRspamd } from '../helpers/daemons.js';
import { baseHeaders, bufferView, eicarPlain, fixture, GTUBE, ham, message } from '../fixtures/messages.js';

/** No test may hang the suite. */
const LIMIT = { timeout: 60_000 };
const envelope = (rcpt: string[], extra: Partial<RspamdCallOptions> = {}): RspamdCallOptions => ({
  signal: AbortSignal.timeout(20_000),
  from: 'deals@example.net',
  rcpt,
  ip: '192.0.2.10',
  helo: 'mail.example.net',
  queueId: 'NQQTEST1',
  ...extra,
});

describe('parseCheckReply', LIMIT, () => {
  test('add_headers as strings, {value, order} objects and arrays of both', () => {
    const r = parseCheckReply({
      action: 'add header',
      score: 6.5,
      required_score: 15,
      symbols: { R_ONE: { score: 1 }, R_TWO: { score: 2 } },
      messages: { smtp_message: 'Spam message rejected' },
      subject: '*** SPAM *** hi',
      milter: {
        add_headers: {
          'X-Spam': 'Yes',
          'X-Spamd-Result': { value: 'default: True [6.50 / 15.00];\r\n R_ONE(1.00)[]', order: 0 },
          'X-Two': [{ value: 'a', order: 1 }, 'b', { value: 'c' }],
          'X-Ignored': 42,
        },
        remove_headers: { 'X-Spam': 0, 'X-Old': 2 },
      },
    });
    assert.equal(r.action, 'add header');
    assert.equal(r.requiredScore, 15);
    assert.deepEqual(r.symbols, ['R_ONE', 'R_TWO']);
    assert.equal(r.smtpMessage, 'Spam message rejected');
    assert.equal(r.subject, '*** SPAM *** hi');
    assert.deepEqual(r.addHeaders, [
      { name: 'X-Spam', value: 'Yes' },
      { name: 'X-Spamd-Result', value: 'default: True [6.50 / 15.00];\n\tR_ONE(1.00)[]', order: 0 },
      { name: 'X-Two', value: 'a', order: 1 },
      { name: 'X-Two', value: 'b' },
      { name: 'X-Two', value: 'c' },
    ]);
    assert.deepEqual(r.removeHeaders, [
      { name: 'X-Spam', index: 0 },
      { name: 'X-Old', index: 2 },
    ]);
  });

  test('a reply without action or score is refused', () => {
    assert.throws(() => parseCheckReply({ error: 'x' }), /no action/);
    assert.throws(() => parseCheckReply([]), /not a JSON object/);
  });
});

describe('rspamd', LIMIT, () => {
  test('ping', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const client = new RspamdClient({ urls: [url] });
    t.after(() => client.close());
    assert.equal((await client.ping({ signal: AbortSignal.timeout(5_000) })).address, url);
  });

  test('GTUBE is rejected', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const client = new RspamdClient({ urls: [url] });
    t.after(() => client.close());
    const msg = bufferView(message(baseHeaders('offer', { 'Content-Type': 'text/plain' }), `Buy now.\n\n${GTUBE}\n`));
    // GTUBE wins before any settings: even bob's lenient rule does not save it.
    const r = await client.check(msg, envelope(['bob@example.org']));
    assert.equal(r.action, 'reject');
    assert.ok(r.symbols.includes('GTUBE'), r.symbols.join(','));
    assert.equal(r.address, url);
  });

  test('a clean 10 KB message gets no action', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const client = new RspamdClient({ urls: [url] });
    t.after(() => client.close());
    const r = await client.check(bufferView(ham(10 * 1024)), envelope(['dave@example.net'], { from: 'carol@example.net' }));
    assert.equal(r.action, 'no action');
    assert.ok(r.score < 4, `score ${r.score}`);
  });

  test('per-recipient settings: the same message is rejected for alice, tagged for bob', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const client = new RspamdClient({ urls: [url] });
    t.after(() => client.close());
    const msg = bufferView(fixture('rspamd-moderate.eml'));
    const alice = await client.check(msg, envelope(['alice@example.com']));
    const bob = await client.check(msg, envelope(['bob@example.org']));
    assert.deepEqual(
      { alice: [alice.action, alice.requiredScore], bob: [bob.action, bob.requiredScore] },
      { alice: ['reject', 5], bob: ['add header', 30] },
    );
    // Same content, same score: only the settings differ.
    assert.equal(alice.score, bob.score);
    assert.ok(alice.score > 5 && alice.score < 15, `score ${alice.score}`);
    // milter_headers (test config) asks for headers; the long one comes folded with "\n\t".
    const result = bob.addHeaders.find((h) => h.name === 'X-Spamd-Result');
    assert.ok(result, JSON.stringify(bob.addHeaders));
    assert.match(result.value, /^default: False \[\d+\.\d+ \/ 30\.00\];\n\t/);
    assert.doesNotMatch(result.value.replace(/\n\t/g, ''), /[\r\n]/);
    assert.deepEqual(bob.addHeaders.find((h) => h.name === 'X-Rspamd-Queue-Id')?.value, 'NQQTEST1');
    assert.ok(bob.removeHeaders.some((h) => h.name === 'X-Spam'));
  });

  test('Settings-ID picks a named rule, also over a rule matched by recipient', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const client = new RspamdClient({ urls: [url] });
    t.after(() => client.close());
    const msg = bufferView(fixture('rspamd-moderate.eml'));
    const carol = await client.check(msg, envelope(['carol@example.net']));
    assert.notEqual(carol.action, 'reject');
    const carolStrict = await client.check(msg, envelope(['carol@example.net'], { settingsId: 'nqq_strict' }));
    assert.equal(carolStrict.action, 'reject');
    const bobStrict = await client.check(msg, envelope(['bob@example.org'], { settingsId: 'nqq_strict' }));
    assert.equal(bobStrict.action, 'reject');
  });

  test('a 3 MB message is streamed (no virus scanning here: EICAR is just bytes to rspamd)', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const client = new RspamdClient({ urls: [url] });
    t.after(() => client.close());
    const big = Buffer.concat([ham(3 * 1024 * 1024), eicarPlain()]);
    const r = await client.check(bufferView(big, 64 * 1024), envelope(['dave@example.net']));
    assert.equal(typeof r.score, 'number');
    assert.ok(r.symbols.length > 0);
  });

  test('a URL path rspamd does not serve is a BackendError (rspamd answers 500 "invalid command")', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const client = new RspamdClient({ urls: [`${url}/no/such/place`] });
    t.after(() => client.close());
    await assert.rejects(client.check(bufferView(ham(1024)), envelope(['dave@example.net'])), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.match(err.message, /HTTP 500 invalid command/);
      return true;
    });
  });

  test('a stopped rspamd gives a BackendError at once', async (t) => {
    if (!requireDaemon('NQQ_TEST_RSPAMD_URL', t)) return;
    const rspamd = await startRspamd();
    const client = new RspamdClient({ urls: [rspamd.url] });
    t.after(() => client.close());
    assert.equal((await client.check(bufferView(ham(2048)), envelope(['dave@example.net']))).address, rspamd.url);
    await rspamd.stop();
    const started = performance.now();
    await assert.rejects(client.check(bufferView(ham(2048)), envelope(['dave@example.net'])), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.ok(err.message.includes(rspamd.url), err.message);
      assert.match(err.message, /ECONNREFUSED|ECONNRESET|closed/);
      return true;
    });
    assert.ok(performance.now() - started < 1_000);
  });
});
