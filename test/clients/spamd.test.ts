// spamd client against a real spamd (-L, no learning, per-user prefs for alice and bob).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { parseSpamLine, spamHeaders, SpamdClient } from '../../src/clients/spamd.js';
import { BackendError } from '../../src/plugin-api/define.js';
import { freePort, requireDaemon, startSpamd } from '../helpers/daemons.js';
import { baseHeaders, bufferView, fixture, GTUBE, ham, message } from '../fixtures/messages.js';

/** No test may hang the suite. */
const LIMIT = { timeout: 60_000 };
const call = (user?: string) => ({ signal: AbortSignal.timeout(30_000), ...(user === undefined ? {} : { user }) });

describe('parsing', LIMIT, () => {
  test('Spam: lines', () => {
    assert.deepEqual(parseSpamLine('True ; 1000.0 / 5.0'), { isSpam: true, score: 1000, threshold: 5 });
    assert.deepEqual(parseSpamLine('False ; -0.1 / 8.0'), { isSpam: false, score: -0.1, threshold: 8 });
    assert.deepEqual(parseSpamLine('Yes ; 6 / 5'), { isSpam: true, score: 6, threshold: 5 });
    assert.equal(parseSpamLine('Maybe ; 1 / 5'), undefined);
  });

  test('X-Spam-* fields, folds kept as \\n\\t', () => {
    const block = Buffer.from(
      'Received: from x\r\n\tby y\r\nX-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=5.0 required=3.0 tests=A,\r\n    B autolearn=disabled\r\nSubject: hi\r\n\r\n',
    );
    assert.deepEqual(spamHeaders(block), [
      { name: 'X-Spam-Flag', value: 'YES' },
      { name: 'X-Spam-Status', value: 'Yes, score=5.0 required=3.0 tests=A,\n\tB autolearn=disabled' },
    ]);
  });
});

describe('spamd', LIMIT, () => {
  test('PING', async (t) => {
    const address = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!address) return;
    const r = await new SpamdClient({ addresses: [address] }).ping(call());
    assert.equal(r.address, address);
  });

  test('GTUBE is spam (HEADERS and CHECK)', async (t) => {
    const address = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!address) return;
    const client = new SpamdClient({ addresses: [address] });
    const msg = bufferView(message(baseHeaders('offer', { 'Content-Type': 'text/plain' }), `Buy now.\n\n${GTUBE}\n`));
    const h = await client.headers(msg, call('alice@example.com'));
    assert.equal(h.isSpam, true);
    assert.ok(h.score >= 1000, `score ${h.score}`);
    const flag = h.headers.find((f) => f.name === 'X-Spam-Flag');
    assert.equal(flag?.value, 'YES');
    assert.match(h.headers.find((f) => f.name === 'X-Spam-Status')?.value ?? '', /^Yes, score=10\d\d\.\d/);
    const c = await client.check(msg, call());
    assert.deepEqual({ isSpam: c.isSpam, threshold: c.threshold }, { isSpam: true, threshold: 5 });
    assert.ok(c.score >= 1000);
  });

  test('a clean 10 KB message is ham and gets its X-Spam-* headers', async (t) => {
    const address = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!address) return;
    const client = new SpamdClient({ addresses: [address] });
    const r = await client.headers(bufferView(ham(10 * 1024)), call('carol@example.net'));
    assert.equal(r.isSpam, false);
    assert.ok(r.score < 5, `score ${r.score}`);
    assert.equal(r.threshold, 5);
    const names = r.headers.map((f) => f.name);
    assert.ok(names.includes('X-Spam-Checker-Version') && names.includes('X-Spam-Status'), names.join(','));
    assert.ok(names.every((n) => /^X-Spam-/i.test(n)));
    const status = r.headers.find((f) => f.name === 'X-Spam-Status')!.value;
    assert.match(status, /^No, score=-?\d+\.\d required=5\.0 tests=/);
    // spamd folds the status line; the fold is kept as "\n\t", nothing else breaks a line.
    assert.match(status, /\n\t/);
    assert.doesNotMatch(status.replace(/\n\t/g, ''), /[\r\n]/);
    // raw is the header block spamd rewrote: it still has the message's own headers.
    assert.match(r.raw.toString('utf8'), /^Subject: Project notes$/m);
  });

  test('per-user thresholds: the same 5-point message is spam for alice (3), not for bob (8)', async (t) => {
    const address = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!address) return;
    const client = new SpamdClient({ addresses: [address] });
    const msg = bufferView(fixture('spamd-five-points.eml'));
    const alice = await client.headers(msg, call('alice@example.com'));
    const bob = await client.headers(msg, call('bob@example.org'));
    assert.deepEqual(
      { alice: [alice.isSpam, alice.threshold], bob: [bob.isSpam, bob.threshold] },
      { alice: [true, 3], bob: [false, 8] },
    );
    assert.equal(alice.score, bob.score);
    assert.ok(alice.score > 3 && alice.score < 8, `score ${alice.score}`);
    assert.match(alice.headers.find((f) => f.name === 'X-Spam-Status')!.value, /NQQ_TEST_FIVE/);
    assert.equal(alice.headers.find((f) => f.name === 'X-Spam-Flag')?.value, 'YES');
    assert.equal(bob.headers.find((f) => f.name === 'X-Spam-Flag'), undefined);
    const checked = await client.check(msg, call('bob@example.org'));
    assert.equal(checked.isSpam, false);
  });

  test('fail-over from a refused address to the live one', async (t) => {
    const address = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!address) return;
    const dead = `127.0.0.1:${await freePort()}`;
    const r = await new SpamdClient({ addresses: [dead, address] }).check(bufferView(ham(2048)), call());
    assert.equal(r.address, address);
  });

  test('a stopped spamd gives a BackendError at once', async (t) => {
    if (!requireDaemon('NQQ_TEST_SPAMD', t)) return;
    const spamd = await startSpamd();
    const client = new SpamdClient({ addresses: [spamd.address] });
    assert.equal((await client.ping(call())).address, spamd.address);
    await spamd.stop();
    const started = performance.now();
    await assert.rejects(client.headers(bufferView(ham(2048)), call('alice@example.com')), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.ok(err.message.includes(spamd.address), err.message);
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
    assert.ok(performance.now() - started < 1_000);
  });
});
