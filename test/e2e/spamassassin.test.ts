// spamassassin through bin/nqqueue against a real spamd (-L, no learning; per-user prefs: alice@example.com
// required 3, bob@example.org 8): X-Spam-* tagging, GTUBE to three recipients with different lines,
// per-user and per-line thresholds, one scan shared by lines that differ only in hits=, the size limit,
// and spamd stopped or silent → the failure policy.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { baseHeaders, fixture, GTUBE, ham, message } from '../fixtures/messages.js';
import { requireDaemon, startSpamd } from '../helpers/daemons.js';
import { LIMIT, make, SMTPD_RECEIVED, viaSmtpd } from '../helpers/e2e.js';
import { rcptsOf, traceOf, withoutTrace, type Setup } from '../helpers/nqq.js';
import { startProxy, startSilentServer } from '../helpers/proxy.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Split a delivered copy into the X-Spam-* block NQqueue put in front and the rest. */
function tagged(copy: Buffer): { fields: string[]; rest: Buffer } {
  const body = withoutTrace(copy);
  const text = body.toString('latin1');
  const fields: string[] = [];
  let pos = 0;
  for (;;) {
    const m = /^X-Spam-[A-Za-z-]+: [^\n]*\n(?:[ \t][^\n]*\n)*/.exec(text.slice(pos));
    if (!m) break;
    fields.push(m[0]);
    pos += m[0].length;
  }
  return { fields, rest: body.subarray(pos) };
}

function spamdSettings(s: Setup, address: string, extra = ''): void {
  s.write('nqqueue.conf', `[spamassassin]\nhost = ${address}\n${extra}`);
}

const gtube = () => viaSmtpd(message(baseHeaders('special offer', { 'Content-Type': 'text/plain' }), `Buy now.\n\n${GTUBE}\n`));

describe('spamassassin', LIMIT, () => {
  test('a clean message is delivered with spamd\'s own X-Spam-* headers in front, the message itself unchanged', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const s = make();
    spamdSettings(s, spamd);
    s.write('nqqueue.cfb', ':spamassassin\n');
    const msg = viaSmtpd(ham(10 * 1024));
    const r = await s.run({ message: msg, to: ['carol@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    const { fields, rest } = tagged(r.deliveries[0]!.message);
    assert.deepEqual(rest, msg);
    const names = fields.map((f) => f.slice(0, f.indexOf(':')));
    assert.ok(names.includes('X-Spam-Checker-Version') && names.includes('X-Spam-Status'), names.join(','));
    assert.ok(!names.includes('X-Spam-Flag'));
    assert.match(fields.find((f) => f.startsWith('X-Spam-Status:'))!, /^X-Spam-Status: No, score=-?\d+\.\d required=5\.0 tests=/);
    assert.match(traceOf(r.deliveries[0]!.message).replace(/\n\t/g, ' '), /per-user: spamassassin=accept\/-?[\d.]+\)/);
  });

  test('X-Spam-* fields the message came with are not delivered (spamd drops them too)', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const s = make();
    spamdSettings(s, spamd);
    s.write('nqqueue.cfb', ':spamassassin\n');
    const clean = ham(4 * 1024);
    const forged = Buffer.concat([Buffer.from(SMTPD_RECEIVED), Buffer.from('X-Spam-Flag: NO\nX-Spam-Status: No, score=-100\n\tforged=yes\n'), clean]);
    const r = await s.run({ message: forged, to: ['carol@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    const { fields, rest } = tagged(r.deliveries[0]!.message);
    assert.deepEqual(rest, viaSmtpd(clean), 'the message without the forged fields');
    assert.equal(fields.filter((f) => f.startsWith('X-Spam-Status:')).length, 1);
    assert.doesNotMatch(fields.join(''), /forged|score=-100/);
  });

  test('GTUBE to three local recipients: spamassassin rejects, =pass delivers tagged, =pass;quarantine keeps it — exact bytes to the right recipient, the kept copy releasable', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const s = make();
    spamdSettings(s, spamd);
    s.write('nqqueue.cfb', 'refuse@example.com:spamassassin\ntag@example.com:spamassassin=pass\nkeep@example.com:spamassassin=pass;quarantine=spamassassin\n');
    const msg = gtube();
    const r = await s.run({ message: msg, to: ['refuse@example.com', 'tag@example.com', 'keep@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    // Exactly one copy, to tag@ only: spamd's headers (spam) in front of the unchanged message.
    assert.equal(r.deliveries.length, 1);
    assert.deepEqual(rcptsOf(r.deliveries[0]!), ['tag@example.com']);
    const { fields, rest } = tagged(r.deliveries[0]!.message);
    assert.deepEqual(rest, msg);
    assert.ok(fields.includes('X-Spam-Flag: YES\n'), fields.join(''));
    assert.match(fields.find((f) => f.startsWith('X-Spam-Status:'))!, /^X-Spam-Status: Yes, score=1\d\d\d\.\d required=5\.0/);
    assert.match(r.logLines[0]!, /refuse@example\.com=reject\[spamassassin:reject:/);
    assert.match(r.logLines[0]!, /tag@example\.com=deliver\[spamassassin:accept:/);
    assert.match(r.logLines[0]!, /keep@example\.com=drop\[spamassassin:accept:[\d.]+ms,quarantine:drop:/);
    assert.match(r.logLines[0]!, /removed=2/);

    // The kept copy: one item, for keep@ only, holding what keep@ would have received.
    const list = s.command(['quarantine', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.equal(lines.length, 1, list.stdout);
    const [id, date, sender, recipient, why] = lines[0]!.split('\t');
    assert.match(id!, /^[0-9a-z]{16,40}$/);
    assert.match(r.logLines[0]!, new RegExp(`quarantine <keep@example\\.com>: quarantined as ${id}`), 'the log says where the copy went');
    assert.ok(Math.abs(Date.parse(date!) - Date.now()) < 60_000);
    assert.deepEqual([sender, recipient], ['<sender@client.example>', '<keep@example.com>']);
    assert.match(why!, /^spamassassin: score 1\d\d\d\.\d$/);
    const stored = readFileSync(join(s.home, 'quarantine', id!, 'message'));
    const kept = tagged(Buffer.concat([Buffer.from('Received: by x (NQqueue x) id y; z\n'), stored]));
    assert.deepEqual(kept.rest, msg);
    assert.ok(kept.fields.includes('X-Spam-Flag: YES\n'));
    const meta = JSON.parse(readFileSync(join(s.home, 'quarantine', id!, 'meta.json'), 'utf8'));
    assert.deepEqual(
      meta.caughtBy.map((c: { plugin: string; verdict: string }) => `${c.plugin}:${c.verdict}`),
      ['spamassassin:accept'],
    );
    assert.equal(meta.caughtBy[0].details.user, 'keep@example.com');

    const rel = s.command(['quarantine', 'release', id!]);
    assert.equal(rel.code, 0, rel.stderr);
    assert.equal(rel.stdout, `released ${id} to <keep@example.com>\n`);
    const all = s.standIn.deliveries();
    assert.equal(all.length, 2);
    assert.deepEqual(rcptsOf(all[1]!), ['keep@example.com']);
    assert.equal(all[1]!.sender.toString(), 'sender@client.example');
    assert.deepEqual(all[1]!.message, stored);
    assert.equal(s.command(['quarantine', 'list']).stdout, '');
  });

  test('per-user thresholds from spamd user prefs (alice 3, bob 8), and hits= on the line instead', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const s = make({ rcpthosts: ['example.com', 'example.org'] });
    spamdSettings(s, spamd);
    s.write('nqqueue.cfb', ':spamassassin\n');
    const msg = fixture('spamd-five-points.eml');
    const r = await s.run({ message: msg, to: ['alice@example.com', 'bob@example.org'] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.deliveries.map(rcptsOf), [['bob@example.org']]);
    const bob = tagged(r.deliveries[0]!.message);
    assert.deepEqual(bob.rest, msg);
    assert.match(bob.fields.join(''), /X-Spam-Status: No, score=5\.0 required=8\.0 tests=.*NQQ_TEST_FIVE/s);
    assert.match(r.logLines[0]!, /alice@example\.com=reject\[spamassassin:reject/);

    // hits= decides instead of the user's required score: now alice gets it and bob does not.
    s.write('nqqueue.cfb', 'alice@example.com:spamassassin=hits=6\nbob@example.org:spamassassin=hits=4\n');
    const r2 = await s.run({ message: msg, to: ['alice@example.com', 'bob@example.org'] });
    assert.equal(r2.code, 0, r2.stderr);
    const delivered = s.standIn.deliveries().slice(1);
    assert.deepEqual(delivered.map(rcptsOf), [['alice@example.com']]);
    // spamd's own headers still show alice's required score; the line decided with 6.
    assert.match(tagged(delivered[0]!.message).fields.join(''), /X-Spam-Status: Yes, score=5\.0 required=3\.0/);

    // Both refuse: the message is refused with the first text.
    s.write('nqqueue.cfb', 'alice@example.com:spamassassin=hits=4.5\nbob@example.org:spamassassin=hits=4\n');
    const r3 = await s.run({ message: msg, to: ['alice@example.com', 'bob@example.org'] });
    assert.equal(r3.code, 82);
    assert.equal(r3.errorText.toString(), 'Dmessage rejected as spam (score 5.0, required 4.5) (#5.7.1)');
  });

  test('lines that need the same spamd user and differ only in hits= share one scan, each deciding for itself', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const proxy = await startProxy(spamd);
    t.after(() => proxy.close());
    const s = make();
    spamdSettings(s, proxy.address);
    s.write('nqqueue.cfb', 'strict@example.com:spamassassin=user=global,hits=3\nlenient@example.com:spamassassin=user=global,hits=8\nplain@example.com:spamassassin=user=global,hits=8\n');
    const msg = fixture('spamd-five-points.eml');
    const r = await s.run({ message: msg, to: ['strict@example.com', 'lenient@example.com', 'plain@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.connections(), 1, 'one scan for the three recipients');
    assert.doesNotMatch(proxy.requests()[0]!.toString('latin1'), /\r\nUser:/, 'user=global: spamd\'s default user');
    assert.deepEqual(r.deliveries.map((d) => rcptsOf(d).sort()), [['lenient@example.com', 'plain@example.com']]);
    assert.match(r.logLines[0]!, /strict@example\.com=reject/);
    // user=NAME: that user's preferences (alice: required 3) for every recipient, still one scan.
    s.write('nqqueue.cfb', ':spamassassin=user=alice@example.com\nx@example.com:spamassassin=user=alice@example.com,hits=9\n');
    const r2 = await s.run({ message: msg, to: ['x@example.com', 'y@example.com', 'z@example.com'] });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(proxy.connections(), 2);
    assert.match(proxy.requests()[1]!.toString('latin1'), /\r\nUser: alice@example\.com\r\n/);
    assert.deepEqual(s.standIn.deliveries().slice(1).map(rcptsOf), [['x@example.com']]);
  });

  test('over the size limit (512K by default, maxsize= on the line) the message is not sent to spamd, and the log says so', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const proxy = await startProxy(spamd);
    t.after(() => proxy.close());
    const s = make();
    spamdSettings(s, proxy.address);
    s.write('nqqueue.cfb', ':spamassassin\n');
    const big = viaSmtpd(ham(600 * 1024));
    const r = await s.run({ message: big, to: ['carol@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.connections(), 0);
    assert.deepEqual(withoutTrace(r.deliveries[0]!.message), big, 'delivered as it came, no X-Spam-* headers');
    assert.match(r.logLines[0]!, new RegExp(`notes="spamassassin skipped: message of ${big.length} bytes is over maxsize 524288: not scanned"`));
    s.write('nqqueue.cfb', ':spamassassin=maxsize=1K\n');
    const r2 = await s.run({ message: viaSmtpd(ham(2048)), to: ['carol@example.com'] });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(proxy.connections(), 0);
    assert.match(r2.logLines[0]!, /spamassassin skipped: message of \d+ bytes is over maxsize 1024/);
  });

  test('spamd stopped before the message, and while it is in flight: deferred, nothing delivered; onerror= as configured', async (t) => {
    if (!requireDaemon('NQQ_TEST_SPAMD', t)) return;
    const [before, during] = await Promise.all([startSpamd(), startSpamd()]);
    t.after(() => Promise.all([before.stop(), during.stop()]));
    const s = make();
    s.write('nqqueue.cfb', `:spamassassin=host=${before.address}\n`);
    await before.stop();
    const r = await s.run({ message: gtube(), to: ['carol@example.com'] });
    assert.equal(r.code, 82);
    assert.equal(r.errorText.toString(), 'Zmail scanner unavailable, try again later (#4.3.0)');
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines[0]!, new RegExp(`spamassassin failed: spamd: cannot connect to any address \\(${esc(before.address)}: .*ECONNREFUSED`));
    s.write('nqqueue.cfb', `:spamassassin=host=${before.address},onerror=accept\n`);
    const accepted = await s.run({ message: gtube(), to: ['carol@example.com'] });
    assert.equal(accepted.code, 0);
    assert.match(traceOf(accepted.deliveries[0]!.message), /spamassassin=accept\/failed/);

    const proxy = await startProxy(during.address, { hold: true, onRequest: () => during.stop() });
    t.after(() => proxy.close());
    s.write('nqqueue.cfb', `:spamassassin=host=${proxy.address}\n`);
    const r2 = await s.run({ message: gtube(), to: ['carol@example.com', 'dave@example.com'] });
    assert.equal(during.running(), false);
    assert.equal(r2.code, 82);
    assert.match(r2.errorText.toString(), /^Z/);
    assert.equal(s.standIn.calls().length, 1, 'nothing more than the onerror=accept copy');
    assert.match(r2.logLines[0]!, new RegExp(`spamassassin failed: spamd ${esc(proxy.address)}: connection closed without a reply`));
  });

  test('host= repeated: a spamd that refuses the connection is skipped for the next', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const gone = await startSilentServer();
    await gone.close(); // nobody listens there any more
    const s = make();
    s.write('nqqueue.cfb', `:spamassassin=host=${gone.address},host=${spamd}\n`);
    const r = await s.run({ message: gtube(), to: ['carol@example.com'] });
    assert.equal(r.code, 82);
    assert.match(r.errorText.toString(), /^Dmessage rejected as spam \(score 1\d\d\d\.\d, required 5\.0\) \(#5\.7\.1\)$/);
    assert.match(r.logLines[0]!, new RegExp(`spamassassin flagged spam=true threshold=5 required=5 user=carol@example\\.com backend=${esc(spamd)} `));
  });

  test('a spamd that accepts the connection and never answers: the timeout defers the message', async (t) => {
    const silent = await startSilentServer();
    t.after(() => silent.close());
    const s = make();
    s.write('nqqueue.cfb', `:spamassassin=host=${silent.address},timeout=1s\n`);
    const r = await s.run({ message: gtube(), to: ['a@example.com', 'b@example.com'] });
    assert.equal(silent.connections(), 2);
    assert.equal(r.code, 82);
    assert.equal(r.errorText.toString(), 'Zmail scanner timed out, try again later (#4.3.0)');
    assert.equal(s.standIn.calls().length, 0);
    assert.match(r.logLines[0]!, /spamassassin failed: timed out after 1000 ms/);
  });
});
