// dspam through bin/nqqueue against a stand-in that behaves as dspam(1) documents for
// `--stdout --deliver=innocent,spam --user USER` (dspam is not packaged here): the exact arguments,
// X-DSPAM-* headers kept, Spam refused unless pass, and dspam failing or hanging → the failure policy.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { baseHeaders, ham, message } from '../fixtures/messages.js';
import { makeDspamStandIn, SPAM_MARKER } from '../helpers/dspam.js';
import { LIMIT, make, SMTPD_RECEIVED, viaSmtpd } from '../helpers/e2e.js';
import { rcptsOf, withoutTrace } from '../helpers/nqq.js';

const spam = () => viaSmtpd(message(baseHeaders('cheap pills'), `Buy now: ${SPAM_MARKER}\n`));

/** The X-DSPAM-* fields NQqueue put in front of a copy, and the rest. */
function tagged(copy: Buffer): { fields: Record<string, string>; rest: Buffer } {
  const body = withoutTrace(copy).toString('latin1');
  const fields: Record<string, string> = {};
  let pos = 0;
  for (let m; (m = /^(X-DSPAM-[A-Za-z]+): ([^\n]*)\n/.exec(body.slice(pos))); pos += m[0].length) fields[m[1]!] = m[2]!;
  return { fields, rest: Buffer.from(body.slice(pos), 'latin1') };
}

describe('dspam', LIMIT, () => {
  test('innocent mail is delivered with dspam\'s X-DSPAM-* headers, the message unchanged; dspam is run with exactly --stdout --deliver=innocent,spam --user <recipient>', async () => {
    const s = make();
    const dspam = makeDspamStandIn(s.dir);
    s.write('nqqueue.cfb', `:dspam=bin=${dspam.path}\n`);
    const msg = viaSmtpd(ham(4096));
    const r = await s.run({ message: msg, to: ['Alice@Example.com', 'bob@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    const calls = dspam.calls().sort((a, b) => (a.user! < b.user! ? -1 : 1));
    assert.deepEqual(
      calls.map((c) => c.argv),
      [
        ['--stdout', '--deliver=innocent,spam', '--user', 'alice@example.com'],
        ['--stdout', '--deliver=innocent,spam', '--user', 'bob@example.com'],
      ],
    );
    for (const c of calls) {
      assert.deepEqual(c.env, { PATH: '/usr/local/bin:/usr/bin:/bin' }, 'no environment from the SMTP session');
      assert.equal(c.cwd, '/');
    }
    // Each recipient has its own signature: two copies.
    assert.equal(r.deliveries.length, 2);
    for (const d of r.deliveries) {
      const { fields, rest } = tagged(d.message);
      assert.deepEqual(rest, msg);
      assert.deepEqual(Object.keys(fields), ['X-DSPAM-Result', 'X-DSPAM-Processed', 'X-DSPAM-Confidence', 'X-DSPAM-Probability', 'X-DSPAM-Signature']);
      assert.equal(fields['X-DSPAM-Result'], 'Innocent');
      assert.match(fields['X-DSPAM-Signature']!, /^[0-9a-f]{24}$/);
    }
    assert.deepEqual(r.deliveries.map(rcptsOf).flat().sort(), ['Alice@Example.com', 'bob@example.com']);
  });

  test('X-DSPAM-Result: Spam is refused unless pass; with pass it is delivered tagged, and quarantine=dspam keeps it', async () => {
    const s = make();
    const dspam = makeDspamStandIn(s.dir);
    s.write('nqqueue.conf', `[dspam]\nbin = ${dspam.path}\n`);
    s.write('nqqueue.cfb', 'refuse@example.com:dspam\ntag@example.com:dspam=pass\nkeep@example.com:dspam=pass;quarantine=dspam\n');
    const msg = spam();
    const r = await s.run({ message: msg, to: ['refuse@example.com', 'tag@example.com', 'keep@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.deliveries.map(rcptsOf), [['tag@example.com']]);
    const { fields, rest } = tagged(r.deliveries[0]!.message);
    assert.deepEqual(rest, msg);
    assert.equal(fields['X-DSPAM-Result'], 'Spam');
    assert.equal(fields['X-DSPAM-Probability'], '1.0000');
    assert.match(r.logLines[0]!, /refuse@example\.com=reject\[dspam:reject:/);
    assert.match(r.logLines[0]!, /keep@example\.com=drop\[dspam:accept:[\d.]+ms,quarantine:drop:/);
    assert.match(r.logLines[0]!, /dspam flagged result=Spam confidence=0\.99 probability=1 signature=[0-9a-f]{24} user=tag@example\.com/);
    const list = s.command(['quarantine', 'list']);
    assert.match(list.stdout, /^[0-9a-z]+\t\S+\t<sender@client\.example>\t<keep@example\.com>\tdspam: Spam\n$/);

    s.write('nqqueue.cfb', ':dspam\n');
    const refused = await s.run({ message: msg, to: ['refuse@example.com'] });
    assert.equal(refused.code, 82);
    assert.equal(refused.errorText.toString(), 'Dmessage rejected as spam by dspam (#5.7.1)');
  });

  test('X-DSPAM-* fields the message came with are not taken for dspam\'s, nor delivered', async () => {
    const s = make();
    const dspam = makeDspamStandIn(s.dir);
    s.write('nqqueue.cfb', `:dspam=bin=${dspam.path}\n`);
    const body = message(baseHeaders('hello'), `Buy now: ${SPAM_MARKER}\n`);
    const forged = Buffer.concat([Buffer.from(SMTPD_RECEIVED), Buffer.from('X-DSPAM-Result: Innocent\n'), body]);
    const r = await s.run({ message: forged, to: ['a@example.com'] });
    assert.equal(r.code, 82, 'the forged Innocent is not believed');
    assert.equal(r.errorText.toString(), 'Dmessage rejected as spam by dspam (#5.7.1)');
    s.write('nqqueue.cfb', `:dspam=bin=${dspam.path},pass\n`);
    const r2 = await s.run({ message: forged, to: ['a@example.com'] });
    assert.equal(r2.code, 0, r2.stderr);
    const { fields, rest } = tagged(r2.deliveries[0]!.message);
    assert.equal(fields['X-DSPAM-Result'], 'Spam');
    assert.deepEqual(rest, viaSmtpd(body), 'delivered without the forged field');
  });

  test('dspam failing, answering without a result, or hanging: the failure policy, the reason in the log', async () => {
    const s = make();
    const failing = makeDspamStandIn(s.dir, 'fail', 'dspam-fail');
    const silent = makeDspamStandIn(s.dir, 'noresult', 'dspam-noresult');
    const hanging = makeDspamStandIn(s.dir, 'hang', 'dspam-hang');
    s.write('nqqueue.cfb', `:dspam=bin=${failing.path}\n`);
    const r = await s.run({ message: spam(), to: ['a@example.com'] });
    assert.equal(r.code, 82);
    assert.equal(r.errorText.toString(), 'Zmail scanner unavailable, try again later (#4.3.0)');
    assert.match(r.logLines[0]!, new RegExp(`dspam failed: ${failing.path} exited 1: dspam: Unable to initialize storage driver`));
    s.write('nqqueue.cfb', `:dspam=bin=${silent.path}\n`);
    const r2 = await s.run({ message: spam(), to: ['a@example.com'] });
    assert.equal(r2.code, 82);
    assert.match(r2.logLines[0]!, /dspam failed: dspam output has no X-DSPAM-Result field/);
    s.write('nqqueue.cfb', `:dspam=bin=${hanging.path},timeout=1s\n`);
    const r3 = await s.run({ message: spam(), to: ['a@example.com'] });
    assert.equal(r3.code, 82);
    assert.equal(r3.errorText.toString(), 'Zmail scanner timed out, try again later (#4.3.0)');
    s.write('nqqueue.cfb', `:dspam=bin=${failing.path},onerror=accept\n`);
    const r4 = await s.run({ message: spam(), to: ['a@example.com'] });
    assert.equal(r4.code, 0);
    assert.equal(s.standIn.calls().length, 1, 'only the onerror=accept run delivered');
  });

  test('an address that is not plain is never handed to dspam as a user name', async () => {
    const s = make();
    const dspam = makeDspamStandIn(s.dir);
    s.write('nqqueue.cfb', `:dspam=bin=${dspam.path}\n`);
    const r = await s.run({ message: spam(), to: ['../../etc/passwd@example.com'] });
    assert.equal(r.code, 82);
    assert.match(r.errorText.toString(), /^Z/);
    assert.deepEqual(dspam.calls(), []);
    assert.match(r.logLines[0]!, /dspam failed: recipient \\"\.\.\/\.\.\/etc\/passwd@example\.com\\" is not a plain address/);
  });

  test('a bin= that is not there is a configuration error: deferred, and check-config says which line', async () => {
    const s = make();
    s.write('nqqueue.cfb', `:dspam=bin=${s.dir}/no-dspam\n`);
    const r = await s.run({ message: spam(), to: ['a@example.com'] });
    assert.equal(r.code, 82);
    assert.match(r.logLines[0]!, /code=NQQ_ERR_CONFIG/);
    const c = s.command(['check-config']);
    assert.equal(c.code, 1);
    assert.match(c.stdout + c.stderr, /nqqueue\.cfb:1: .*dspam.*no-dspam: ENOENT/);
  });
});
