// clamav through bin/nqqueue (run as qmail-smtpd runs it) against a real clamd: EICAR refused with the
// virus named, pass, StreamMaxLength, fail-over, and clamd stopped or silent → the failure policy.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { eicarAttachment, eicarPlain, eicarZipAttachment, ham } from '../fixtures/messages.js';
import { freePort, requireDaemon, startClamd } from '../helpers/daemons.js';
import { LIMIT, make, pluginDir, RESULTS_PLUGIN, viaSmtpd } from '../helpers/e2e.js';
import { traceOf, withoutTrace } from '../helpers/nqq.js';
import { startProxy, startSilentServer } from '../helpers/proxy.js';

const EICAR_NAME = 'Eicar-Test-NDB.UNOFFICIAL';
const VIRUS_TEXT = `DMessage rejected because it contains a virus: ${EICAR_NAME} (#5.7.1)`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('clamav', LIMIT, () => {
  const carriers: [string, () => Buffer, 'NQQ_TEST_CLAMD_SOCKET' | 'NQQ_TEST_CLAMD_TCP'][] = [
    ['EICAR in a plain body (Unix socket)', eicarPlain, 'NQQ_TEST_CLAMD_SOCKET'],
    ['EICAR in a base64 attachment (Unix socket)', eicarAttachment, 'NQQ_TEST_CLAMD_SOCKET'],
    ['EICAR inside a zip attachment (Unix socket)', eicarZipAttachment, 'NQQ_TEST_CLAMD_SOCKET'],
    ['EICAR in a plain body (TCP)', eicarPlain, 'NQQ_TEST_CLAMD_TCP'],
    ['EICAR inside a zip attachment (TCP)', eicarZipAttachment, 'NQQ_TEST_CLAMD_TCP'],
  ];
  for (const [name, message, variable] of carriers) {
    test(`${name} is refused with the virus named in the fd 6 text; nothing is queued`, async (t) => {
      const address = requireDaemon(variable, t);
      if (!address) return;
      const s = make({ rcpthosts: ['example.com'] });
      s.write('general.cfb', `:clamav=${variable === 'NQQ_TEST_CLAMD_SOCKET' ? 'socket' : 'host'}=${address}\n`);
      const r = await s.run({ message: viaSmtpd(message()), to: ['a@example.com', 'far@remote.example'] });
      assert.equal(r.code, 82, r.stderr);
      assert.equal(r.errorText.toString(), VIRUS_TEXT);
      assert.equal(s.standIn.calls().length, 0);
      assert.equal(r.logLines.length, 1);
      assert.match(r.logLines[0]!, /result=reject /);
      assert.match(r.logLines[0]!, /general=clamav:reject:[\d.]+ms/);
      // The log names the virus and the clamd that found it.
      assert.match(r.logLines[0]!, new RegExp(`clamav flagged virus=${esc(EICAR_NAME)} backend=${esc(address)} ms=[\\d.]+`));
    });
  }

  test('a clean message is delivered byte for byte, the scan in the trace header', async (t) => {
    const sock = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
    if (!sock) return;
    const s = make();
    s.write('general.cfb', `:clamav=socket=${sock}\n`);
    const message = viaSmtpd(ham(10 * 1024));
    const r = await s.run({ message, to: ['a@example.com', 'b@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.deliveries.length, 1);
    assert.deepEqual(withoutTrace(r.deliveries[0]!.message), message);
    assert.match(traceOf(r.deliveries[0]!.message), /general: clamav=accept\)/);
    assert.match(r.logLines[0]!, /general=clamav:accept:[\d.]+ms/);
    assert.doesNotMatch(r.logLines[0]!, /notes=/);
  });

  test('pass: the virus is only recorded; later plugins see its name, the clamd and the scan time', async (t) => {
    const sock = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
    if (!sock) return;
    const s = make();
    const dir = pluginDir(s, { results: RESULTS_PLUGIN });
    s.write('nqqueue.conf', `plugin_dir = ${dir}\n[clamav]\nsocket = ${sock}\n`);
    s.write('general.cfb', ':clamav=pass;results\n');
    const message = viaSmtpd(eicarPlain());
    const r = await s.run({ message });
    assert.equal(r.code, 0, r.stderr);
    const got = withoutTrace(r.deliveries[0]!.message).toString('latin1');
    const m = /^X-Results: (.*)\n/.exec(got);
    assert.ok(m, got.slice(0, 300));
    const [clamav] = JSON.parse(m[1]!) as { plugin: string; verdict: string; flagged: boolean; details: { virus: string; backend: string; ms: number; via: string } }[];
    assert.deepEqual({ ...clamav!, details: { ...clamav!.details, ms: 0 } }, {
      plugin: 'clamav',
      verdict: 'accept',
      flagged: true,
      details: { virus: EICAR_NAME, backend: sock, ms: 0, via: 'instream' },
    });
    assert.ok(clamav!.details.ms > 0 && clamav!.details.ms < 10_000, `ms=${clamav!.details.ms}`);
    assert.equal(got.slice(got.indexOf('\n') + 1), message.toString('latin1'), 'the message itself is unchanged');
    assert.match(r.logLines[0]!, new RegExp(`notes="clamav flagged virus=${esc(EICAR_NAME)} backend=${esc(sock)} ms=`));
  });

  test("over clamd's StreamMaxLength: the failure policy, and the log says to set maxsize; with maxsize below it the message is skipped and logged", async (t) => {
    if (!requireDaemon('NQQ_TEST_CLAMD_SOCKET', t)) return;
    const clamd = await startClamd(undefined, { streamMaxLength: '100K' });
    t.after(() => clamd.stop());
    const s = make();
    s.write('general.cfb', `:clamav=socket=${clamd.socket}\n`);
    const big = viaSmtpd(ham(300 * 1024));
    const r = await s.run({ message: big });
    assert.equal(r.code, 82, r.stderr);
    assert.match(r.errorText.toString(), /^Z/);
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines[0]!, /clamav failed: clamd .*size limit.*set maxsize= for clamav below clamd's StreamMaxLength/);
    s.write('general.cfb', `:clamav=socket=${clamd.socket},maxsize=90K\n`);
    const skipped = await s.run({ message: big });
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.deepEqual(withoutTrace(skipped.deliveries[0]!.message), big);
    assert.match(skipped.logLines[0]!, new RegExp(`notes="clamav skipped: message of ${big.length} bytes is over maxsize 92160: not scanned"`));
    const small = viaSmtpd(eicarPlain());
    const found = await s.run({ message: small });
    assert.equal(found.errorText.toString(), VIRUS_TEXT, 'messages under maxsize are still scanned');
  });

  test('addresses are tried in turn: a missing socket and a refused port, then the live clamd', async (t) => {
    const tcp = requireDaemon('NQQ_TEST_CLAMD_TCP', t);
    if (!tcp) return;
    const s = make();
    const dead = `127.0.0.1:${await freePort()}`;
    s.write('general.cfb', `:clamav=socket=${join(s.dir, 'no-such.sock')},host=${dead},host=${tcp}\n`);
    const r = await s.run({ message: viaSmtpd(eicarPlain()) });
    assert.equal(r.errorText.toString(), VIRUS_TEXT);
    assert.match(r.logLines[0]!, new RegExp(`backend=${esc(tcp)}`));
    // The settings file's addresses, when the line gives none.
    s.write('nqqueue.conf', `[clamav]\nsocket = ${join(s.dir, 'no-such.sock')}\nhost = ${tcp}\n`);
    s.write('general.cfb', ':clamav\n');
    const r2 = await s.run({ message: viaSmtpd(eicarPlain()) });
    assert.equal(r2.errorText.toString(), VIRUS_TEXT);
  });

  test('clamd stopped before the message: deferred by default (nothing delivered unscanned); onerror=accept and onerror=reject as configured', async (t) => {
    if (!requireDaemon('NQQ_TEST_CLAMD_SOCKET', t)) return;
    const clamd = await startClamd();
    const s = make();
    s.write('general.cfb', `:clamav=socket=${clamd.socket},host=${clamd.tcp}\n`);
    const before = await s.run({ message: viaSmtpd(ham(2048)) });
    assert.equal(before.code, 0, before.stderr);
    await clamd.stop();
    const deferred = await s.run({ message: viaSmtpd(ham(2048)) });
    assert.equal(deferred.code, 82);
    assert.equal(deferred.errorText.toString(), 'Zmail scanner unavailable, try again later (#4.3.0)');
    assert.equal(s.standIn.deliveries().length, 1, 'only the message scanned before the stop');
    assert.match(deferred.logLines[0]!, /result=defer/);
    assert.match(deferred.logLines[0]!, new RegExp(`clamav failed: clamd: cannot connect to any address \\(${esc(clamd.socket)}: .*ENOENT.*; ${esc(clamd.tcp)}: .*ECONNREFUSED`));
    s.write('general.cfb', `:clamav=socket=${clamd.socket},onerror=reject\n`);
    const rejected = await s.run({ message: viaSmtpd(ham(2048)) });
    assert.equal(rejected.errorText.toString(), 'Dmessage refused: clamav check failed (#5.3.0)');
    s.write('general.cfb', `:clamav=socket=${clamd.socket},onerror=accept\n`);
    const accepted = await s.run({ message: viaSmtpd(ham(2048)) });
    assert.equal(accepted.code, 0);
    assert.equal(s.standIn.deliveries().length, 2);
    assert.match(traceOf(s.standIn.deliveries()[1]!.message), /clamav=accept\/failed/);
    assert.match(accepted.logLines[0]!, /notes="clamav failed: clamd: cannot connect/);
  });

  test('clamd stopped while the message is in flight: deferred, nothing delivered', async (t) => {
    if (!requireDaemon('NQQ_TEST_CLAMD_SOCKET', t)) return;
    const clamd = await startClamd();
    t.after(() => clamd.stop());
    // clamd goes away once the scan's request is in: the session's opening and the INSTREAM after it.
    const inFlight = (b: Buffer) => b.includes('zINSTREAM\0');
    const proxy = await startProxy(clamd.tcp, { hold: true, requestWhen: inFlight, onRequest: () => clamd.stop() });
    t.after(() => proxy.close());
    const s = make();
    s.write('general.cfb', `:clamav=host=${proxy.address}\n`);
    const r = await s.run({ message: viaSmtpd(eicarPlain()) });
    assert.equal(proxy.connections(), 1);
    // The plugin keeps IDSESSION sessions: a session is opened, then the scan streamed in it.
    assert.match(proxy.requests()[0]!.toString('latin1'), /^zIDSESSION\0zINSTREAM\0/);
    assert.equal(clamd.running(), false);
    assert.equal(r.code, 82);
    assert.match(r.errorText.toString(), /^Z/);
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines[0]!, new RegExp(`clamav failed: clamd ${esc(proxy.address)}: connection closed`));
  });

  test('a clamd that accepts the connection and never answers: the timeout defers the message', async (t) => {
    const silent = await startSilentServer();
    t.after(() => silent.close());
    const s = make();
    s.write('general.cfb', `:clamav=host=${silent.address},timeout=1s\n`);
    const started = performance.now();
    const r = await s.run({ message: viaSmtpd(ham(2048)) });
    assert.ok(performance.now() - started < 10_000);
    assert.equal(silent.connections(), 1);
    assert.equal(r.code, 82);
    assert.equal(r.errorText.toString(), 'Zmail scanner timed out, try again later (#4.3.0)');
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines[0]!, /notes="clamav failed: timed out after 1000 ms"/);
    // A read timeout shorter than the plugin's: the log names the clamd that did not answer.
    s.write('general.cfb', `:clamav=host=${silent.address},read_timeout=500ms\n`);
    const r2 = await s.run({ message: viaSmtpd(ham(2048)) });
    assert.equal(r2.code, 82);
    assert.match(r2.logLines[0]!, new RegExp(`clamav failed: clamd ${esc(silent.address)}: no progress for 500 ms`));
  });
});
