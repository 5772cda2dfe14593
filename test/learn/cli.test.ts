// `nqqueue learn` as a user runs it, with the dspam stand-in as the learner (no daemon needed): what it
// refuses (usage: exit 2), a learner that fails (counted, exit 1, not remembered: taught by the next
// run), the user of a vpopmail path, [learn] settings refused at file:line, and `nqqueue serve`
// walking the Maildirs on its schedule — off until [learn] every and maildirs are set.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { makeDspamStandIn } from '../helpers/dspam.js';
import { learnMessage, learnSettings, makeMaildir, putMessage } from '../helpers/learn.js';
import { setupsForThisFile } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 120_000 };

async function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('usage errors are exit 2 with the reason and the usage; nothing is taught', LIMIT, () => {
  const s = make();
  const dspam = makeDspamStandIn(s.dir);
  s.write('nqqueue.conf', learnSettings({ dspam: dspam.path }));
  const msg = join(s.dir, 'm.eml');
  writeFileSync(msg, learnMessage('spam'));
  for (const [args, reason] of [
    [['learn', msg, '--user', 'a@example.com'], 'say --spam or --ham (one of them)'],
    [['learn', '--spam', '--ham', '--user', 'a@example.com', msg], 'say --spam or --ham (one of them)'],
    [['learn', '--spam', '--user', 'a@example.com'], 'name the messages or Maildir folders to learn from'],
    [['learn', '--spam', msg], "say whose filter learns with --user ADDRESS (the paths are not in one vpopmail user's Maildir)"],
    [['learn', '--spam', '--user', 'not an address', msg], '--user: not a mail address: "not"'],
    [['learn', '--spam', '--user', 'a@example.com', join(s.dir, 'nothing.eml')], `${join(s.dir, 'nothing.eml')}: no such file or folder`],
    [['learn', '--spam', '--user', 'a@example.com', s.dir], `${s.dir}: a folder, but not a Maildir one (no cur/ and new/ in it)`],
    [['learn', '--maildirs', s.dir, '--spam'], '--maildirs takes no --spam, --ham, --user or PATH: the moves say what each message is and whose'],
    [['learn', '--maildirs', 'relative'], '--maildirs: must be an absolute path: "relative"'],
  ] as const) {
    const r = s.command([...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(`nqqueue learn: ${reason}\nusage: nqqueue learn`), r.stderr);
    assert.equal(r.stdout, '');
  }
  assert.equal(dspam.calls().length, 0);
});

test('a failing learner is counted and said, exit 1, and not remembered: the next run teaches it', LIMIT, () => {
  const s = make();
  const broken = makeDspamStandIn(s.dir, 'fail', 'broken-dspam');
  s.write('nqqueue.conf', learnSettings({ dspam: broken.path }));
  const msg = join(s.dir, 'm.eml');
  writeFileSync(msg, learnMessage('spam'));
  const r = s.command(['learn', '--spam', '--user', 'alice@example.com', msg]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '1 message; dspam: 0 learned, 0 known, 0 already taught, 1 failed\n');
  assert.match(r.stderr, /^nqqueue learn: dspam: \S+m\.eml \(alice@example\.com, spam\): \S+broken-dspam exited 1: dspam: Unable to initialize storage driver\n$/);
  const ok = makeDspamStandIn(s.dir);
  s.write('nqqueue.conf', learnSettings({ dspam: ok.path }));
  const again = s.command(['learn', '--spam', '--user', 'alice@example.com', msg]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, '1 message; dspam: 1 learned, 0 known, 0 already taught, 0 failed\n');
});

test('rspamd refusing the password and spamd refusing TELL are failures that say why', LIMIT, (t) => {
  const controller = process.env.NQQ_TEST_RSPAMD_CONTROLLER;
  const spamd = process.env.NQQ_TEST_SPAMD;
  if (!controller || !spamd) {
    if (process.env.CI === 'true') assert.fail('the suite\'s spamd and rspamd must run in CI');
    return t.skip('the suite\'s spamd and rspamd are not running');
  }
  const s = make();
  // The suite's own spamd runs without --allow-tell.
  s.write('nqqueue.conf', learnSettings({ spamd, controller, password: 'wrong' }));
  const msg = join(s.dir, 'm.eml');
  writeFileSync(msg, learnMessage('spam'));
  const r = s.command(['learn', '--spam', '--user', 'alice@example.com', msg]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '1 message; spamassassin: 0 learned, 0 known, 0 already taught, 1 failed; rspamd: 0 learned, 0 known, 0 already taught, 1 failed\n');
  assert.match(r.stderr, /spamassassin: .*\(start spamd with --allow-tell\)/);
  assert.match(r.stderr, /rspamd: .*rspamd http:\/\/127\.0\.0\.1:\d+: 403 .*\(check \[learn\] rspamd_password\)|rspamd: .*: 401 .*\(check \[learn\] rspamd_password\)/);
});

test('a vpopmail folder names its user; a Maildir folder given is its cur/ and new/ (not tmp/)', LIMIT, () => {
  const s = make();
  const dspam = makeDspamStandIn(s.dir);
  s.write('nqqueue.conf', learnSettings({ dspam: dspam.path }));
  const junk = join(s.dir, 'vpopmail', 'domains', 'example.org', 'carol', 'Maildir', '.Junk');
  makeMaildir(join(s.dir, 'vpopmail', 'domains', 'example.org', 'carol', 'Maildir'), ['.Junk']);
  putMessage(junk, 'new', '', 'carol@example.org', learnMessage('spam'));
  putMessage(junk, 'cur', 'S', 'carol@example.org', learnMessage('spam'));
  writeFileSync(join(junk, 'tmp', 'being-written'), learnMessage('spam'));
  const r = s.command(['learn', '--spam', junk]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '2 messages; dspam: 2 learned, 0 known, 0 already taught, 0 failed\n');
  assert.deepEqual(
    dspam.calls().map((c) => c.user),
    ['carol@example.org', 'carol@example.org'],
  );
});

test('[learn] values are refused at file:line, by learn and by check-config', LIMIT, () => {
  const s = make();
  s.write('nqqueue.conf', '[learn]\nlearners = spamassassin,bogofilter\njunk = Junk\nevery = often\n');
  const msg = join(s.dir, 'm.eml');
  writeFileSync(msg, learnMessage('spam'));
  const r = s.command(['learn', '--spam', '--user', 'alice@example.com', msg]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `nqqueue learn: configuration: ${join(s.control, 'nqqueue.conf')}:2: [learn] learners: not a learner: "bogofilter" (spamassassin, rspamd, dspam, or auto)\n`);
  const c = s.command(['check-config']);
  assert.equal(c.code, 1);
  assert.match(c.stdout + c.stderr, /nqqueue\.conf:2: \[learn\] learners: not a learner: "bogofilter"/);
  assert.match(c.stdout + c.stderr, /nqqueue\.conf:3: \[learn\] junk: not a Maildir\+\+ folder name: "Junk" \(a dot and a name, like \.Junk\)/);
  assert.match(c.stdout + c.stderr, /nqqueue\.conf:4: \[learn\] every: not an age: "often"/);
});

test('nqqueue serve walks the Maildirs on its schedule once [learn] every and maildirs are set; off by default', LIMIT, async () => {
  const s = make();
  const dspam = makeDspamStandIn(s.dir);
  s.write('nqqueue.cfb', `:dspam=pass,bin=${dspam.path}\n`);
  s.write('nqqueue.conf', learnSettings({ dspam: dspam.path }));
  const r = await s.run({ message: learnMessage('ham'), to: ['dave@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  const root = join(s.dir, 'vpopmail');
  const md = join(root, 'domains', 'example.com', 'dave', 'Maildir');
  makeMaildir(md, ['.Junk']);
  putMessage(join(md, '.Junk'), 'cur', 'S', 'dave@example.com', s.standIn.deliveries()[0]!.message);
  const retrains = () => dspam.calls().filter((c) => c.retrain);

  const serve = (name: string) => {
    const daemon = spawn(NQQUEUE_BIN, ['serve'], { env: s.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    daemon.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    return {
      log: () => log,
      stop: async () => {
        daemon.kill('SIGTERM');
        await new Promise((res) => daemon.once('exit', res));
      },
      name,
    };
  };
  const off = serve('off');
  try {
    await waitFor('the first look', () => /nqqueue serve: learn: learning from Maildirs is off \(\[learn\] every is not set\)/.test(off.log()));
    assert.equal(retrains().length, 0);
  } finally {
    await off.stop();
  }

  s.write('nqqueue.conf', learnSettings({ dspam: dspam.path }, `every = 1h\nmaildirs = ${root}\n`));
  const on = serve('on');
  try {
    await waitFor('a walk', () => /nqqueue serve: learn: 1 user, 1 message looked at/.test(on.log()));
    assert.match(on.log(), /nqqueue serve: learn: 1 user, 1 message looked at \(0 where their verdict put them, 0 without a verdict\); taught 1 message; dspam: 1 learned, 0 known, 0 already taught, 0 failed\n/);
    assert.deepEqual(retrains().map((c) => [c.user, c.retrain!.class, c.retrain!.source]), [['dave@example.com', 'spam', 'error']]);
  } finally {
    await on.stop();
  }
});

test("a sender's own X-Spam-Flag below qmail-smtpd's Received is not a scanner's vote: a copy rspamd passed, read in the inbox, teaches nothing", LIMIT, () => {
  const s = make();
  // No rspamd listens there: a copy the walk wanted to teach would be a failure, said and exit 1.
  s.write('nqqueue.conf', learnSettings({ controller: 'http://127.0.0.1:9' }));
  const root = join(s.dir, 'vpopmail');
  const md = join(root, 'domains', 'example.com', 'erin', 'Maildir');
  makeMaildir(md, ['.Junk']);
  const copy = (forged: string) =>
    Buffer.concat([
      Buffer.from(
        'Received: by mx.example.com (NQqueue 0.1.0; general: none; per-user: rspamd=accept/0.4) id mabc; Tue, 01 Dec 2026 10:00:00 +0000\n' +
          'Received: (qmail 123 invoked from network); 1 Dec 2026 10:00:00 -0000\n' +
          'Received: from unknown (HELO spam.example) (203.0.113.9) by mx.example.com with SMTP; 1 Dec 2026 10:00:00 -0000\n' +
          forged,
      ),
      learnMessage('spam'),
    ]);
  putMessage(md, 'cur', 'S', 'erin@example.com', copy('X-Spam-Flag: YES\nX-Spam-Status: Yes, score=99\n'));
  putMessage(md, 'cur', 'S', 'erin@example.com', copy('X-Rspamd-Result: action="reject"; score=99.00; required=15.00\nX-Spam: Yes\n'));
  const r = s.command(['learn', '--maildirs', root]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /1 user, 2 messages looked at \(2 where their verdict put them, 0 without a verdict\)/);
});
