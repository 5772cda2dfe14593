// quarantine through bin/nqqueue: the global store (layout, modes, the raw envelope), `nqqueue
// quarantine list | show | release | delete`, the Maildir folder store, and nothing kept when the
// message is deferred or only tested. The flagging results come from the dspam stand-in (no daemon
// needed) and, for the general stage, from a real clamd.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { baseHeaders, eicarPlain, ham, message } from '../fixtures/messages.js';
import { requireDaemon } from '../helpers/daemons.js';
import { makeDspamStandIn, SPAM_MARKER } from '../helpers/dspam.js';
import { LIMIT, make, pluginDir, viaSmtpd } from '../helpers/e2e.js';
import { envelopeOf, rcptsOf, SAMPLE, type Setup } from '../helpers/nqq.js';

const spam = () => viaSmtpd(message(baseHeaders('cheap pills'), `Buy now: ${SPAM_MARKER}\n`));
const mode = (p: string) => statSync(p).mode & 0o777;

function withDspam(s: Setup): void {
  const dspam = makeDspamStandIn(s.dir);
  s.write('nqqueue.conf', `[dspam]\nbin = ${dspam.path}\n`);
}

function ids(s: Setup): string[] {
  const dir = join(s.home, 'quarantine');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n !== 'tmp').sort() : [];
}

describe('quarantine', LIMIT, () => {
  test('the global store: one private item per recipient with the raw envelope bytes; list, show and delete', async () => {
    const s = make();
    withDspam(s);
    s.write('nqqueue.cfb', ':dspam=pass;quarantine=dspam\n');
    const msg = spam();
    // qmail-smtpd appended RELAYCLIENT to each recipient: kept byte for byte for the release.
    const r = await s.run({ message: msg, envelope: envelopeOf('sender@client.example', ['keep@example.com!x', 'also@example.com!x']), extraEnv: { RELAYCLIENT: '!x' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.standIn.calls().length, 0, 'both copies kept, nothing delivered');
    const items = ids(s);
    assert.equal(items.length, 2);
    const q = join(s.home, 'quarantine');
    assert.equal(mode(q), 0o700);
    assert.deepEqual(readdirSync(join(q, 'tmp')), [], 'nothing left pending');
    const recipients: string[] = [];
    for (const id of items) {
      assert.match(id, /^[0-9a-z]{16,40}$/);
      assert.equal(mode(join(q, id)), 0o700);
      assert.deepEqual(readdirSync(join(q, id)).sort(), ['message', 'meta.json']);
      for (const f of ['message', 'meta.json']) assert.equal(mode(join(q, id, f)), 0o600);
      const meta = JSON.parse(readFileSync(join(q, id, 'meta.json'), 'utf8'));
      assert.equal(meta.id, id);
      assert.equal(Buffer.from(meta.sender.base64, 'base64').toString(), 'sender@client.example');
      recipients.push(Buffer.from(meta.recipient.base64, 'base64').toString());
      assert.equal(meta.caughtBy.length, 1);
      assert.equal(meta.caughtBy[0].plugin, 'dspam');
      assert.equal(meta.caughtBy[0].details.result, 'Spam');
      assert.equal(meta.size, statSync(join(q, id, 'message')).size);
      // What the recipient would have got: dspam's fields in front of the message.
      const kept = readFileSync(join(q, id, 'message'));
      assert.match(kept.toString('latin1'), /^X-DSPAM-Result: Spam\n/);
      assert.ok(kept.subarray(kept.length - msg.length).equals(msg));
    }
    assert.deepEqual(recipients.sort(), ['also@example.com!x', 'keep@example.com!x']);

    const list = s.command(['quarantine', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.trim().split('\n').length, 2);
    const show = s.command(['quarantine', 'show', items[0]!]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^id: ${items[0]}\\n`));
    assert.match(show.stdout, /^sender: <sender@client\.example>$/m);
    assert.match(show.stdout, /^recipient: <(keep|also)@example\.com!x>$/m);
    assert.match(show.stdout, /^caught by: dspam=pass -> accept \{"result":"Spam"/m);
    assert.match(show.stdout, /\n\nX-DSPAM-Result: Spam\n[^]*\nSubject: cheap pills\n/);

    const del = s.command(['quarantine', 'delete', items[0]!]);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(ids(s), [items[1]]);
    const again = s.command(['quarantine', 'delete', items[0]!]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no quarantined message/);
    for (const bad of ['../tmp', 'tmp', '..', items[1]!.toUpperCase(), `${items[1]}/../x`]) {
      const b = s.command(['quarantine', 'show', bad]);
      assert.equal(b.code, 2, bad);
      assert.match(b.stderr, /not a quarantine id/);
    }
    assert.equal(s.command(['quarantine', 'frob']).code, 2);
  });

  test('release hands the message to qmail-queue for the original recipient only; when qmail-queue fails the item stays', async () => {
    const s = make({ standIn: { failOn: [{ call: 1, code: 53 }] } });
    withDspam(s);
    s.write('nqqueue.cfb', 'keep@example.com:dspam=pass;quarantine=dspam\n');
    const msg = spam();
    const r = await s.run({ message: msg, envelope: envelopeOf('sender@client.example', ['keep@example.com!x', 'other@example.com!x']), extraEnv: { RELAYCLIENT: '!x' } });
    assert.equal(r.code, 53, 'the copy for other@ met the failing qmail-queue: its code, nothing kept either');
    assert.deepEqual(ids(s), [], 'a deferred message keeps nothing: the retry will');
    const r2 = await s.run({ message: msg, envelope: envelopeOf('sender@client.example', ['keep@example.com!x', 'other@example.com!x']), extraEnv: { RELAYCLIENT: '!x' } });
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(r2.deliveries.map(rcptsOf), [['other@example.com!x']]);
    const [id] = ids(s);
    assert.ok(id);
    const stored = readFileSync(join(s.home, 'quarantine', id, 'message'));

    s.standIn.setOptions({ failOn: [{ call: 3, code: 71 }] });
    const failed = s.command(['quarantine', 'release', id]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /exited 71; the message stays in the quarantine/);
    assert.deepEqual(ids(s), [id]);
    assert.deepEqual(readdirSync(join(s.home, 'quarantine', 'tmp')), []);

    const ok = s.command(['quarantine', 'release', id]);
    assert.equal(ok.code, 0, ok.stderr);
    const last = s.standIn.deliveries().at(-1)!;
    assert.deepEqual(rcptsOf(last), ['keep@example.com!x']);
    assert.equal(last.sender.toString(), 'sender@client.example');
    assert.deepEqual(last.message, stored);
    assert.deepEqual(ids(s), []);
    assert.equal(s.command(['quarantine', 'release', id]).code, 1, 'released once');
  });

  test('nothing is kept when the message is deferred, nor by a dry run; the retry keeps it once', async () => {
    const s = make();
    withDspam(s);
    const later = s.script('later.sh', '#!/bin/sh\ncat >/dev/null\necho "try later"\nexit 111\n');
    s.write('nqqueue.cfb', `keep@example.com:dspam=pass;quarantine=dspam\nslow@example.com:exec=${later}\n`);
    const msg = spam();
    const r = await s.run({ message: msg, to: ['keep@example.com', 'slow@example.com'] });
    assert.equal(r.code, 82);
    assert.equal(r.errorText.toString(), 'Ztry later');
    assert.deepEqual(ids(s), []);
    const pendingDir = join(s.home, 'quarantine', 'tmp');
    assert.deepEqual(existsSync(pendingDir) ? readdirSync(pendingDir) : [], [], 'no pending copy is left');

    const dry = s.command(['test', '--from', 'sender@client.example', '--to', 'keep@example.com'], msg);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /quarantine=dspam -> drop: quarantined as [0-9a-z]+/);
    assert.match(dry.stdout, /nothing was stored/);
    assert.deepEqual(ids(s), []);

    s.write('nqqueue.cfb', 'keep@example.com:dspam=pass;quarantine=dspam\n');
    const retry = await s.run({ message: msg, to: ['keep@example.com', 'slow@example.com'] });
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(ids(s).length, 1);
  });

  test('only the named results count: a clean message, or one flagged by another plugin, goes through', async () => {
    const s = make();
    withDspam(s);
    s.write('nqqueue.cfb', 'a@example.com:dspam=pass;quarantine=spamassassin,rspamd\nb@example.com:dspam=pass;quarantine=all\nc@example.com:dspam=pass;quarantine=dspam\n');
    const clean = viaSmtpd(ham(2048));
    const r = await s.run({ message: clean, to: ['a@example.com', 'b@example.com', 'c@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.deliveries.flatMap(rcptsOf).sort(), ['a@example.com', 'b@example.com', 'c@example.com']);
    assert.deepEqual(ids(s), []);
    const before = r.deliveries.length;
    const r2 = await s.run({ message: spam(), to: ['a@example.com', 'b@example.com', 'c@example.com'] });
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(r2.deliveries.slice(before).flatMap(rcptsOf), ['a@example.com']);
    assert.equal(ids(s).length, 2);
  });

  test('general-stage results count: clamav=pass then quarantine=clamav keeps the local copies; remote recipients get the general stage only', async (t) => {
    const sock = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
    if (!sock) return;
    const s = make();
    s.write('general.cfb', `:clamav=socket=${sock},pass\n`);
    s.write('nqqueue.cfb', ':quarantine=clamav\n');
    const r = await s.run({ message: viaSmtpd(eicarPlain()), to: ['a@example.com', 'far@remote.example'] });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.deliveries.map(rcptsOf), [['far@remote.example']]);
    const list = s.command(['quarantine', 'list']);
    assert.match(list.stdout, /\t<a@example\.com>\tclamav: Eicar-Test-NDB\.UNOFFICIAL\n$/);
  });

  test('q=maildir: the recipient\'s folder, written tmp/ then new/, the envelope and the reason in front; an address that is not plain goes to the global store, and says so', async () => {
    const s = make();
    withDspam(s);
    const mail = join(s.dir, 'mail');
    mkdirSync(join(mail, 'example.com', 'keep'), { recursive: true });
    // A flagging plugin of our own for the address dspam would not take as a user name.
    const dir = pluginDir(s, {
      flagger: "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', flagged: true, details: { result: 'flagged by test' } }; } };\n",
    });
    s.write('nqqueue.conf', `plugin_dir = ${dir}\n${readFileSync(join(s.control, 'nqqueue.conf'), 'utf8')}[quarantine]\nmaildir = ${mail}/%d/%u/.Quarantine\n`);
    s.write('nqqueue.cfb', '-weird@example.com:flagger;quarantine=all,q=maildir\n:dspam=pass;quarantine=dspam,q=maildir\n');
    const msg = spam();
    const r = await s.run({ message: msg, to: ['Keep@Example.com', '-weird@example.com'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.standIn.calls().length, 0);
    const folder = join(mail, 'example.com', 'keep', '.Quarantine');
    assert.deepEqual(readdirSync(folder).sort(), ['cur', 'new', 'tmp']);
    for (const d of ['cur', 'new', 'tmp']) assert.equal(mode(join(folder, d)), 0o700);
    assert.deepEqual(readdirSync(join(folder, 'tmp')), []);
    const files = readdirSync(join(folder, 'new'));
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^\d+\.M\d+P\d+Q\d+R[0-9a-f]+\.[^/:]+$/);
    assert.equal(mode(join(folder, 'new', files[0]!)), 0o600);
    const kept = readFileSync(join(folder, 'new', files[0]!)).toString('latin1');
    assert.match(kept, /^Return-Path: <sender@client\.example>\nX-NQqueue-Quarantine: for <Keep@Example\.com> by dspam: Spam;\n\tid [0-9a-z]+; .*\nX-DSPAM-Result: Spam\n/);
    assert.ok(kept.endsWith(msg.toString('latin1')));
    // -weird@ does not name a folder: the global store, with a note.
    const list = s.command(['quarantine', 'list']);
    assert.match(list.stdout, /\t<-weird@example\.com>\tflagger: flagged by test\n$/);
    const id = list.stdout.split('\t')[0]!;
    assert.match(s.command(['quarantine', 'show', id]).stdout, /^note: recipient "-weird@example\.com" is not a plain address, so it does not name a Maildir folder: kept in the global quarantine instead$/m);

    // A folder whose parent (the recipient's Maildir) does not exist is not created: that copy goes to
    // the global store, with the reason in the log and in the item.
    const r2 = await s.run({ message: msg, to: ['nobody@example.com'] });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(s.standIn.calls().length, 0);
    assert.equal(existsSync(join(mail, 'example.com', 'nobody')), false);
    assert.match(r2.logLines[0]!, new RegExp(`quarantine <nobody@example\\.com>: quarantined as [0-9a-z]+ \\(the Maildir ${mail}/example\\.com/nobody is missing \\(ENOENT\\): kept in the global quarantine instead\\)`));
    assert.match(s.command(['quarantine', 'list']).stdout, /\t<nobody@example\.com>\tdspam: Spam\n$/);
  });

  test('configuration mistakes are found by check-config and defer mail', async () => {
    const s = make();
    s.write('nqqueue.cfb', 'a@example.com:quarantine\nb@example.com:quarantine=spamasassin\nc@example.com:quarantine=all,q=maildir\nd@example.com:quarantine=all,q=maildir,maildir=relative/%u\n');
    const c = s.command(['check-config']);
    assert.equal(c.code, 1);
    const out = c.stdout + c.stderr;
    assert.match(out, /nqqueue\.cfb:1: .*name the results that count/);
    assert.match(out, /nqqueue\.cfb:2: .*unknown word "spamasassin" \(did you mean "spamassassin"\?\)/);
    assert.match(out, /nqqueue\.cfb:3: .*q=maildir needs a folder template/);
    assert.match(out, /nqqueue\.cfb:4: .*must be an absolute path/);
    const r = await s.run({ message: SAMPLE, to: ['b@example.com'] });
    assert.equal(r.code, 82);
    assert.match(r.logLines[0]!, /code=NQQ_ERR_CONFIG/);
  });
});
