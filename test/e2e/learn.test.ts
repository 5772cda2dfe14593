// `nqqueue learn --spam|--ham PATH...` against the real learners: a spamd of its own that may learn
// (--allow-tell, Bayes on), the suite's rspamd with its Redis (the controller password required), and
// the dspam stand-in retraining as dspam(1) documents. What each learner learned is read from its own
// database: sa-learn --dump magic, rspamd's Redis hash, the stand-in's record; a rescan then carries
// the BAYES symbols. A second run teaches nothing, and the counts say so exactly.

import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';

import { requireDaemon, startSpamd, type SpamdDaemon } from '../helpers/daemons.js';
import { makeDspamStandIn, SPAM_MARKER } from '../helpers/dspam.js';
import { LIMIT, make } from '../helpers/e2e.js';
import { learnMessage, learnSettings, learnUser, makeMaildir, putMessage, redisCounts, saCounts, snapshot } from '../helpers/learn.js';

let spamd: SpamdDaemon | undefined;
let spamdError: unknown;
before(async () => {
  try {
    spamd = await startSpamd(undefined, { learn: true });
  } catch (err) {
    spamdError = err;
  }
});
after(async () => {
  await spamd?.stop();
});

function needSpamd(t: TestContext): SpamdDaemon | undefined {
  if (spamd) return spamd;
  if (process.env.CI === 'true') assert.fail(`spamd did not start: ${String(spamdError)}`);
  t.skip(`spamd did not start: ${String(spamdError)}`);
  return undefined;
}

function files(dir: string, list: readonly Buffer[]): string[] {
  mkdirSync(dir, { recursive: true });
  return list.map((m, i) => {
    const p = join(dir, `m${i}.eml`);
    writeFileSync(p, m);
    return p;
  });
}

/** spamd's verdict and rule names for a message scanned as `user` (SYMBOLS). */
async function spamdSymbols(address: string, user: string, message: Buffer): Promise<string[]> {
  const { connect } = await import('node:net');
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const s = connect({ host: host!, port: Number(port) });
    const chunks: Buffer[] = [];
    s.on('connect', () => s.end(Buffer.concat([Buffer.from(`SYMBOLS SPAMC/1.5\r\nContent-length: ${message.length}\r\nUser: ${user}\r\n\r\n`), message])));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve(text.slice(text.indexOf('\r\n\r\n') + 4).trim().split(','));
    });
  });
}

async function rspamdSymbols(url: string, user: string, message: Buffer): Promise<string[]> {
  const res = await fetch(`${url}/checkv2`, { method: 'POST', headers: { 'Deliver-To': user, Hostname: 'unknown', From: 'offers@bulk.example' }, body: message });
  const json = (await res.json()) as { symbols?: Record<string, unknown> };
  return Object.keys(json.symbols ?? {});
}

describe('nqqueue learn PATH...', LIMIT, () => {
  test('spam and ham files are taught to spamd (TELL), rspamd (controller, password) and dspam (corpus retrain) for the user; a second run teaches nothing', async (t) => {
    const sd = needSpamd(t);
    if (!sd) return;
    const controller = requireDaemon('NQQ_TEST_RSPAMD_CONTROLLER', t);
    if (!controller) return;
    const redis = process.env.NQQ_TEST_REDIS_SOCKET!;
    const s = make();
    const dspam = makeDspamStandIn(s.dir);
    s.write('nqqueue.conf', learnSettings({ spamd: sd.address, controller, password: process.env.NQQ_TEST_RSPAMD_PASSWORD!, dspam: dspam.path }));
    const user = learnUser('files');
    // Each of another vocabulary than the one before: rspamd declines (204) to learn what its Bayes is
    // already sure of, and after one message of a kind it would be sure of the next.
    const spam = files(join(s.dir, 'spam'), [learnMessage('spam'), learnMessage('spam', '', 2), learnMessage('spam')]);
    const ham = files(join(s.dir, 'ham'), [learnMessage('ham'), learnMessage('ham', '', 2)]);

    const first = s.command(['learn', '--spam', '--user', user, ...spam]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout,
      '3 messages; spamassassin: 3 learned, 0 known, 0 already taught, 0 failed; rspamd: 3 learned, 0 known, 0 already taught, 0 failed; dspam: 3 learned, 0 known, 0 already taught, 0 failed\n',
    );
    assert.deepEqual(saCounts(sd.dir, user), { spam: 3, ham: 0 });
    assert.deepEqual(redisCounts(redis, user), { spam: 3, ham: 0 });
    assert.deepEqual(
      dspam.calls().map((c) => c.argv),
      Array.from({ length: 3 }, () => ['--user', user, '--class=spam', '--source=corpus']),
    );

    // Again: the store remembers every one; no learner is asked.
    const again = s.command(['learn', '--spam', '--user', user, ...spam]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stdout,
      '3 messages; spamassassin: 0 learned, 0 known, 3 already taught, 0 failed; rspamd: 0 learned, 0 known, 3 already taught, 0 failed; dspam: 0 learned, 0 known, 3 already taught, 0 failed\n',
    );
    assert.deepEqual(saCounts(sd.dir, user), { spam: 3, ham: 0 });
    assert.deepEqual(redisCounts(redis, user), { spam: 3, ham: 0 });
    assert.equal(dspam.calls().length, 3);

    const hamRun = s.command(['learn', '--ham', '--user', user, ...ham]);
    assert.equal(hamRun.code, 0, hamRun.stderr);
    assert.equal(
      hamRun.stdout,
      '2 messages; spamassassin: 2 learned, 0 known, 0 already taught, 0 failed; rspamd: 2 learned, 0 known, 0 already taught, 0 failed; dspam: 2 learned, 0 known, 0 already taught, 0 failed\n',
    );
    assert.deepEqual(saCounts(sd.dir, user), { spam: 3, ham: 2 });
    assert.deepEqual(redisCounts(redis, user), { spam: 3, ham: 2 });
    assert.deepEqual(dspam.calls().slice(3).map((c) => c.retrain), [
      { class: 'innocent', source: 'corpus', signature: null },
      { class: 'innocent', source: 'corpus', signature: null },
    ]);

    // What they learned is what they now say, for that user only.
    const similar = learnMessage('spam');
    const saSymbols = await spamdSymbols(sd.address, user, similar);
    assert.ok(saSymbols.some((x) => /^BAYES_(9\d|99\d)$/.test(x)), saSymbols.join(','));
    const other = await spamdSymbols(sd.address, learnUser('untrained'), similar);
    assert.ok(!other.some((x) => x.startsWith('BAYES_')), other.join(','));
    const rs = await rspamdSymbols(process.env.NQQ_TEST_RSPAMD_URL!, user, similar);
    assert.ok(rs.includes('BAYES_SPAM'), rs.join(','));
    const rsOther = await rspamdSymbols(process.env.NQQ_TEST_RSPAMD_URL!, learnUser('untrained'), similar);
    assert.ok(!rsOther.some((x) => x.startsWith('BAYES_')), rsOther.join(','));
  });
});

describe('nqqueue learn --maildirs', LIMIT, () => {
  test('moves into Junk teach spam, read mail moved out of it teaches ham; the rest teaches nothing; nothing in the Maildirs changes; again: nothing; moved back: undone', async (t) => {
    const sd = needSpamd(t);
    if (!sd) return;
    const controller = requireDaemon('NQQ_TEST_RSPAMD_CONTROLLER', t);
    if (!controller) return;
    const redis = process.env.NQQ_TEST_REDIS_SOCKET!;
    const s = make();
    const dspam = makeDspamStandIn(s.dir);
    s.write('nqqueue.conf', learnSettings({ spamd: sd.address, controller, password: process.env.NQQ_TEST_RSPAMD_PASSWORD!, dspam: dspam.path }));
    s.write('nqqueue.cfb', `:spamassassin=pass,host=${sd.address};rspamd=pass,url=${process.env.NQQ_TEST_RSPAMD_URL};dspam=pass,bin=${dspam.path}\n`);
    const user = learnUser('walk');
    const local = user.split('@')[0]!;
    /** The copy NQqueue delivered to `to`. */
    const deliver = async (m: Buffer, to = user): Promise<Buffer> => {
      const before = s.standIn.deliveries().length;
      const r = await s.run({ message: m, to: [to] });
      assert.equal(r.code, 0, r.stderr);
      const d = s.standIn.deliveries().slice(before);
      assert.equal(d.length, 1);
      return d[0]!.message;
    };
    // Spam to spamd (a rule worth 5 points, the default threshold) and to dspam (its stand-in's marker).
    const spamText = `nqqueue-test-five-points ${SPAM_MARKER}`;
    const hamA = await deliver(learnMessage('ham'));
    const spamB = await deliver(learnMessage('spam', spamText));
    const spamC = await deliver(learnMessage('spam', spamText, 2));
    const hamD = await deliver(learnMessage('ham', '', 2));
    const spamE = await deliver(learnMessage('spam', spamText));
    const spamF = await deliver(learnMessage('spam', spamText));
    const hamG = await deliver(learnMessage('ham'));
    assert.match(spamB.toString(), /^X-Spam-Flag: YES$/m);
    assert.match(spamB.toString(), /^X-DSPAM-Result: Spam$/m);
    assert.match(hamA.toString(), /^X-DSPAM-Result: Innocent$/m);
    const sigA = /^X-DSPAM-Signature: (\S+)$/m.exec(hamA.toString())![1]!;
    const sigB = /^X-DSPAM-Signature: (\S+)$/m.exec(spamB.toString())![1]!;

    const root = join(s.dir, 'vpopmail');
    const md = join(root, 'domains', 'example.com', local, 'Maildir');
    makeMaildir(md, ['.Junk', '.Spam', '.Trash', '.Work']);
    const a = putMessage(join(md, '.Junk'), 'cur', 'S', user, hamA); // moved into Junk: spam
    putMessage(join(md, '.Work'), 'cur', 'RS', user, spamB); // read, kept in a folder: ham
    putMessage(join(md, '.Junk'), 'new', '', user, spamC); // delivered to Junk as spam: agrees
    putMessage(md, 'cur', 'S', user, hamD); // ham in the inbox: agrees
    putMessage(md, 'new', '', user, spamE); // tagged spam nobody has read: says nothing
    putMessage(join(md, '.Trash'), 'cur', 'S', user, spamF); // deleted: says nothing
    putMessage(join(md, '.Spam'), 'cur', 'ST', user, hamG); // marked deleted: says nothing
    putMessage(join(md, '.Junk'), 'cur', 'S', user, learnMessage('ham')); // never through NQqueue: no verdict
    const before = snapshot(root);

    const first = s.command(['learn', '--maildirs', root]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout,
      '1 user, 5 messages looked at (2 where their verdict put them, 1 without a verdict); taught 2 messages; ' +
        'spamassassin: 2 learned, 0 known, 0 already taught, 0 failed; rspamd: 2 learned, 0 known, 0 already taught, 0 failed; dspam: 2 learned, 0 known, 0 already taught, 0 failed\n',
    );
    assert.deepEqual(snapshot(root), before, 'nothing in the Maildir changed: names, bytes, modes, mtimes');
    assert.deepEqual(saCounts(sd.dir, user), { spam: 1, ham: 1 });
    assert.deepEqual(redisCounts(redis, user), { spam: 1, ham: 1 });
    const retrains = () =>
      dspam
        .calls()
        .filter((c) => c.retrain)
        .map((c) => c.argv);
    assert.deepEqual(retrains().sort(), [
      ['--user', user, '--class=innocent', '--source=error', `--signature=${sigB}`],
      ['--user', user, '--class=spam', '--source=error', `--signature=${sigA}`],
    ]);

    const again = s.command(['learn', '--maildirs', root]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stdout,
      '1 user, 5 messages looked at (2 where their verdict put them, 1 without a verdict); taught 2 messages; ' +
        'spamassassin: 0 learned, 0 known, 2 already taught, 0 failed; rspamd: 0 learned, 0 known, 2 already taught, 0 failed; dspam: 0 learned, 0 known, 2 already taught, 0 failed\n',
    );
    assert.deepEqual(saCounts(sd.dir, user), { spam: 1, ham: 1 });
    assert.equal(retrains().length, 2);

    // The user takes the first one back out of Junk: what was taught from it is undone.
    renameSync(a, join(md, 'cur', basename(a)));
    const back = s.command(['learn', '--maildirs', root]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(
      back.stdout,
      '1 user, 5 messages looked at (2 where their verdict put them, 1 without a verdict); taught 2 messages; ' +
        'spamassassin: 1 learned, 0 known, 1 already taught, 0 failed; rspamd: 1 learned, 0 known, 1 already taught, 0 failed; dspam: 1 learned, 0 known, 1 already taught, 0 failed\n',
    );
    assert.deepEqual(saCounts(sd.dir, user), { spam: 0, ham: 2 });
    assert.deepEqual(retrains()[2], ['--user', user, '--class=innocent', '--source=error', `--signature=${sigA}`]);
  });

  test('a plain ~user/Maildir is USER@ control/defaultdomain; folder names come from [learn] junk', async (t) => {
    const sd = needSpamd(t);
    if (!sd) return;
    const s = make();
    const dspam = makeDspamStandIn(s.dir);
    s.write('nqqueue.conf', learnSettings({ spamd: sd.address, dspam: dspam.path }, 'junk = .Quarantaine\n'));
    s.write('nqqueue.cfb', `:spamassassin=pass,host=${sd.address};dspam=pass,bin=${dspam.path}\n`);
    s.write('defaultdomain', 'example.com\n');
    const user = learnUser('plain');
    const local = user.split('@')[0]!;
    const r = await s.run({ message: learnMessage('ham'), to: [user] });
    assert.equal(r.code, 0, r.stderr);
    const copy = s.standIn.deliveries()[0]!.message;
    const root = join(s.dir, 'home');
    const md = join(root, local, 'Maildir');
    makeMaildir(md, ['.Quarantaine', '.Junk']);
    putMessage(join(md, '.Quarantaine'), 'cur', 'S', user, copy);
    putMessage(join(md, '.Junk'), 'cur', 'S', user, copy); // not a Junk folder here: ham, as delivered
    const out = s.command(['learn', '--maildirs', root]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(
      out.stdout,
      '1 user, 2 messages looked at (1 where their verdict put them, 0 without a verdict); taught 1 message; ' +
        'spamassassin: 1 learned, 0 known, 0 already taught, 0 failed; dspam: 1 learned, 0 known, 0 already taught, 0 failed\n',
    );
    assert.deepEqual(saCounts(sd.dir, user), { spam: 1, ham: 0 });
    assert.equal(dspam.calls().filter((c) => c.retrain)[0]!.user, user);
  });
});
