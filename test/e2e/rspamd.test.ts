// rspamd through bin/nqqueue against a real rspamd (DNS modules off; settings rules for alice and bob,
// and rules picked by Settings-ID that make it answer each action): per-recipient verdicts, what is
// sent in each request, every action mapped, one request for recipients sharing settings=ID, and
// rspamd stopped or silent → the failure policy.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { fixture, ham } from '../fixtures/messages.js';
import { requireDaemon, startRspamd } from '../helpers/daemons.js';
import { LIMIT, make, SMTPD_RECEIVED, viaSmtpd } from '../helpers/e2e.js';
import { rcptsOf, traceOf, withoutTrace } from '../helpers/nqq.js';
import { startProxy, startSilentServer, type Proxy } from '../helpers/proxy.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The header fields of every /checkv2 request that went through the proxy (names lower-cased, repeats kept). */
function checkRequests(proxy: Proxy): [string, string][][] {
  const out: [string, string][][] = [];
  for (const bytes of proxy.requests()) {
    const text = bytes.toString('latin1');
    for (const part of text.split('POST /checkv2 HTTP/1.1\r\n').slice(1)) {
      const head = part.slice(0, part.indexOf('\r\n\r\n'));
      out.push(head.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
    }
  }
  return out;
}

const values = (req: [string, string][], name: string) => req.filter(([n]) => n === name).map(([, v]) => v);

/** A delivered copy without the trace header: the fields NQqueue put in front, and the rest. */
function split(copy: Buffer, original: Buffer): { added: string; rest: Buffer } {
  const body = withoutTrace(copy);
  const at = body.indexOf(original.subarray(0, 40));
  assert.ok(at >= 0, 'the original message follows the added fields');
  return { added: body.subarray(0, at).toString('utf8'), rest: body.subarray(at) };
}

const moderate = () => viaSmtpd(fixture('rspamd-moderate.eml'));

describe('rspamd', LIMIT, () => {
  test('per-recipient settings give different verdicts for two recipients of one message: one request each, one Rcpt each', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const proxy = await startProxy(new URL(url).host);
    t.after(() => proxy.close());
    const s = make({ rcpthosts: ['example.com', 'example.org'] });
    s.write('nqqueue.conf', `[rspamd]\nurl = http://${proxy.address}\n`);
    s.write('nqqueue.cfb', ':rspamd\n');
    const msg = moderate();
    const r = await s.run({ message: msg, to: ['alice@example.com', 'bob@example.org'] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.deliveries.map(rcptsOf), [['bob@example.org']]);
    assert.match(r.logLines[0]!, /alice@example\.com=reject\[rspamd:reject:/);
    assert.match(r.logLines[0]!, /bob@example\.org=deliver\[rspamd:accept:/);
    // bob's copy: rspamd's milter headers in front of the unchanged message.
    const bob = split(r.deliveries[0]!.message, msg);
    assert.deepEqual(bob.rest, msg);
    assert.match(bob.added, /^X-Spamd-Result: default: False \[\d+\.\d\d \/ 30\.00\];\n\t/m);
    assert.match(bob.added, /^X-Spam-Status: Yes, score=\d+\.\d\d\n/m);
    const id = /\bid=([0-9a-z]+)/.exec(r.logLines[0]!)![1]!;
    assert.match(bob.added, new RegExp(`^X-Rspamd-Queue-Id: ${id}\\n`, 'm'));
    assert.match(traceOf(r.deliveries[0]!.message).replace(/\n\t/g, ' '), /per-user: rspamd=accept\/\d/);

    const requests = checkRequests(proxy);
    assert.equal(requests.length, 2);
    const byRcpt = new Map(requests.map((req) => [values(req, 'rcpt').join(','), req]));
    assert.deepEqual([...byRcpt.keys()].sort(), ['alice@example.com', 'bob@example.org']);
    for (const [rcpt, req] of byRcpt) {
      assert.deepEqual(values(req, 'from'), ['sender@client.example']);
      assert.deepEqual(values(req, 'ip'), ['192.0.2.7']);
      // qmail-smtpd's Received line is the only place the HELO name is seen.
      assert.deepEqual(values(req, 'helo'), ['helo.client.example']);
      assert.deepEqual(values(req, 'hostname'), ['client.example']);
      assert.deepEqual(values(req, 'queue-id'), [id]);
      assert.deepEqual(values(req, 'deliver-to'), [rcpt]);
      assert.deepEqual(values(req, 'user'), []);
      assert.deepEqual(values(req, 'settings-id'), []);
    }

    // An authenticated client without a resolved host name: User is sent, Hostname is "unknown".
    await s.run({ message: msg, to: ['bob@example.org'], extraEnv: { SMTPAUTHUSER: 'carol', TCPREMOTEHOST: '' } });
    const last = checkRequests(proxy).at(-1)!;
    assert.deepEqual(values(last, 'user'), ['carol']);
    assert.deepEqual(values(last, 'hostname'), ['unknown']);
  });

  test('settings=ID: recipients using that rule share one request, and get its verdict', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const proxy = await startProxy(new URL(url).host);
    t.after(() => proxy.close());
    const s = make();
    s.write('nqqueue.cfb', `:rspamd=url=http://${proxy.address},settings=nqq_strict\n`);
    const r = await s.run({ message: moderate(), to: ['carol@example.com', 'dave@example.com', 'erin@example.com'] });
    const requests = checkRequests(proxy);
    assert.equal(requests.length, 1);
    assert.deepEqual(values(requests[0]!, 'settings-id'), ['nqq_strict']);
    assert.deepEqual(values(requests[0]!, 'rcpt').sort(), ['carol@example.com', 'dave@example.com', 'erin@example.com']);
    // Every recipient refused: the message is refused with rspamd's text.
    assert.equal(r.code, 82);
    assert.match(r.errorText.toString(), /^D/);
    assert.equal(s.standIn.calls().length, 0);
  });

  test('every action: rewrite subject, greylist, soft reject, reject with pass, no action', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const s = make();
    s.write('nqqueue.conf', `[rspamd]\nurl = ${url}\n`);

    // rewrite subject: the Subject line replaced in place, rspamd's headers in front, nothing else changed.
    s.write('nqqueue.cfb', ':rspamd=settings=nqq_rewrite\n');
    const msg = moderate();
    const rw = await s.run({ message: msg, to: ['carol@example.com'] });
    assert.equal(rw.code, 0, rw.stderr);
    const expected = Buffer.from(msg.toString('latin1').replace('Subject: FREE MONEY FOR YOU NOW\n', 'Subject: *** SPAM *** FREE MONEY FOR YOU NOW\n'), 'latin1');
    const got = withoutTrace(rw.deliveries[0]!.message);
    const added = got.subarray(0, got.length - expected.length);
    assert.deepEqual(got.subarray(added.length), expected);
    assert.match(added.toString(), /^X-Spamd-Result: default: False \[\d+\.\d\d \/ \d+\.\d\d\];\n\t/m);
    assert.match(rw.logLines[0]!, /rspamd flagged action=rewrite subject score=\d[\d.]* required=[\d.]+ settings=nqq_rewrite /);

    // greylist and soft reject: deferred (the whole message: nothing is delivered before every chain is done).
    s.write('nqqueue.cfb', 'grey@example.com:rspamd=settings=nqq_greylist\n:rspamd\n');
    const gl = await s.run({ message: msg, to: ['grey@example.com', 'fine@example.com'] });
    assert.equal(gl.code, 82);
    assert.equal(gl.errorText.toString(), 'Zmessage deferred by rspamd (greylist), try again later (#4.7.1)');
    s.write('nqqueue.cfb', ':rspamd\n');
    const soft = await s.run({ message: Buffer.concat([Buffer.from(SMTPD_RECEIVED), Buffer.from('X-NQQ-Test: soft-reject\n'), ham(2048)]), to: ['carol@example.com'] });
    assert.equal(soft.code, 82);
    assert.equal(soft.errorText.toString(), 'ZTry again later (NQqueue test)');
    assert.equal(s.standIn.deliveries().length, 1, 'only the rewritten copy so far');

    // reject with pass: only recorded (flagged), delivered tagged.
    s.write('nqqueue.cfb', ':rspamd=settings=nqq_strict,pass\n');
    const passed = await s.run({ message: msg, to: ['carol@example.com'] });
    assert.equal(passed.code, 0, passed.stderr);
    assert.deepEqual(split(passed.deliveries.at(-1)!.message, msg).rest, msg);
    assert.match(passed.logLines[0]!, /rspamd flagged action=reject score=/);

    // no action: accepted, rspamd's headers (this rspamd always sends X-Spamd-Result), not flagged.
    s.write('nqqueue.cfb', ':rspamd\n');
    const clean = viaSmtpd(ham(10 * 1024));
    const ok = await s.run({ message: clean, to: ['carol@example.com'] });
    assert.equal(ok.code, 0, ok.stderr);
    const okCopy = split(ok.deliveries.at(-1)!.message, clean);
    assert.deepEqual(okCopy.rest, clean);
    assert.match(okCopy.added, /^X-Spamd-Result: default: False/m);
    assert.doesNotMatch(ok.logLines[0]!, /flagged/);
  });

  test('rspamd stopped before the message, and while it is in flight: deferred, nothing delivered', async (t) => {
    if (!requireDaemon('NQQ_TEST_RSPAMD_URL', t)) return;
    const [before, during] = await Promise.all([startRspamd(), startRspamd()]);
    t.after(() => Promise.all([before.stop(), during.stop()]));
    const s = make();
    s.write('nqqueue.cfb', `:rspamd=url=${before.url}\n`);
    const ok = await s.run({ message: viaSmtpd(ham(2048)), to: ['carol@example.com'] });
    assert.equal(ok.code, 0, ok.stderr);
    await before.stop();
    const r = await s.run({ message: viaSmtpd(ham(2048)), to: ['carol@example.com'] });
    assert.equal(r.code, 82);
    assert.equal(r.errorText.toString(), 'Zmail scanner unavailable, try again later (#4.3.0)');
    assert.equal(s.standIn.calls().length, 1);
    assert.match(r.logLines[0]!, new RegExp(`rspamd failed: rspamd: cannot connect to any address \\(${esc(before.url)}: ECONNREFUSED`));

    const proxy = await startProxy(new URL(during.url).host, { hold: true, onRequest: () => during.stop() });
    t.after(() => proxy.close());
    s.write('nqqueue.cfb', `:rspamd=url=http://${proxy.address}\n`);
    const r2 = await s.run({ message: moderate(), to: ['carol@example.com'] });
    assert.equal(during.running(), false);
    assert.equal(r2.code, 82);
    assert.match(r2.errorText.toString(), /^Z/);
    assert.equal(s.standIn.calls().length, 1);
    assert.match(r2.logLines[0]!, new RegExp(`rspamd failed: rspamd http://${esc(proxy.address)}: `));
  });

  test('url= repeated: tried in turn', async (t) => {
    const url = requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!url) return;
    const silent = await startSilentServer();
    await silent.close(); // a port nobody listens on any more
    const s = make();
    s.write('nqqueue.cfb', `:rspamd=url=http://${silent.address},url=${url}\n`);
    const msg = moderate();
    const r = await s.run({ message: msg, to: ['carol@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    // The live rspamd answered: add header (rspamd's defaults for carol), its headers in front.
    assert.match(split(r.deliveries[0]!.message, msg).added, /^X-Spamd-Result: default: False \[\d+\.\d\d \/ 15\.00\];/m);
    assert.match(r.logLines[0]!, new RegExp(`rspamd flagged action=add header score=[\\d.]+ required=15 backend=${esc(url)} `));
  });

  test('an rspamd that accepts the connection and never answers: the timeout defers the message', async (t) => {
    const silent = await startSilentServer();
    t.after(() => silent.close());
    const s = make();
    s.write('nqqueue.cfb', `:rspamd=url=http://${silent.address},timeout=1s\n`);
    const r = await s.run({ message: moderate(), to: ['carol@example.com'] });
    assert.equal(silent.connections(), 1);
    assert.equal(r.code, 82);
    assert.equal(r.errorText.toString(), 'Zmail scanner timed out, try again later (#4.3.0)');
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines[0]!, /rspamd failed: timed out after 1000 ms/);
  });
});
