// "Not spam" on a held item, over real HTTP against `bin/nqqueue web`: the message is released to its
// recipient (once, audited) and taught as ham, for that recipient, to exactly the learners that voted
// spam on it — rspamd (its Redis then counts one ham for that user), dspam retrained as an error by the
// signature it gave that copy — and not to a learner that did not (spamd, which may learn here: its
// Bayes database for that user stays empty). Another user's item is a 404; no CSRF token, nothing happens.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { requireDaemon, startSpamd, type SpamdDaemon } from '../helpers/daemons.js';
import { makeDspamStandIn, SPAM_MARKER } from '../helpers/dspam.js';
import { learnMessage, learnSettings, redisCounts, saCounts } from '../helpers/learn.js';
import { setupsForThisFile } from '../helpers/nqq.js';
import { auditOf, Browser, csrfOf, hold, installConsole, listIds, startWeb } from '../helpers/web.js';

const make = setupsForThisFile();
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

test('not spam: released, and taught as ham for that recipient to the learners that voted spam only', { timeout: 180_000 }, async (t) => {
  if (!spamd) {
    if (process.env.CI === 'true') assert.fail(`spamd did not start: ${String(spamdError)}`);
    return t.skip(`spamd did not start: ${String(spamdError)}`);
  }
  const controller = requireDaemon('NQQ_TEST_RSPAMD_CONTROLLER', t);
  if (!controller) return;
  const s = make();
  const dspam = makeDspamStandIn(s.dir);
  installConsole(s, { sections: learnSettings({ spamd: spamd.address, controller, password: process.env.NQQ_TEST_RSPAMD_PASSWORD!, dspam: dspam.path }) });
  s.write(
    'nqqueue.cfb',
    // spamd's own threshold is set out of reach: it never votes spam here.
    `:spamassassin=pass,hits=5000,host=${spamd.address};rspamd=pass,url=${process.env.NQQ_TEST_RSPAMD_URL};dspam=pass,bin=${dspam.path};quarantine=all\n`,
  );
  const [id] = await hold(s, { to: ['alice@example.com'], subject: 'Quarterly figures', from: 'carol@partner.example', headers: 'X-NQQ-Test: add-header\n', body: `${learnMessage('ham').toString().split('\n\n')[1]}\n${SPAM_MARKER}\n` });
  assert.ok(id);
  const [bobs] = await hold(s, { to: ['bob@example.com'], subject: 'For Bob', body: `nqqueue-test-five-points ${SPAM_MARKER}\n` });
  const signature = dspam.calls().find((c) => c.user === 'alice@example.com')!;
  assert.equal(signature.result, 'Spam');
  const web = await startWeb(s);
  const alice = new Browser(web, {});
  assert.equal((await alice.login('alice@example.com', 'alice-secret')).status, 303);
  const page = await alice.get(`/item/${id}`);
  assert.match(page.body, new RegExp(`action="/item/${id}/not-spam"`));

  // Someone else's item, and a form without the page's token: nothing happens.
  assert.equal((await alice.post(`/item/${bobs}/not-spam`, { csrf: csrfOf(page.body) })).status, 404);
  assert.equal((await alice.post(`/item/${id}/not-spam`, { csrf: 'wrong' })).status, 403);
  assert.equal(s.standIn.deliveries().length, 0);
  assert.deepEqual(saCounts(spamd.dir, 'alice@example.com'), { spam: 0, ham: 0 });

  const done = await alice.post(`/item/${id}/not-spam`, { csrf: csrfOf(page.body) });
  assert.equal(done.status, 200, done.body);
  assert.match(done.body, /Released as not spam/);
  assert.match(done.body, /the filter was taught \(1 message; rspamd: 1 learned, 0 known, 0 already taught, 0 failed; dspam: 1 learned, 0 known, 0 already taught, 0 failed\)/);
  // Released to alice only, once.
  assert.equal(s.standIn.deliveries().length, 1);
  assert.deepEqual(listIds(s), [bobs]);
  // spamd did not vote spam: it is not taught.
  assert.deepEqual(saCounts(spamd.dir, 'alice@example.com'), { spam: 0, ham: 0 });
  // rspamd did (its "add header", asked for by the test header): it learned one ham for alice, nothing for bob.
  assert.deepEqual(redisCounts(process.env.NQQ_TEST_REDIS_SOCKET!, 'alice@example.com'), { spam: 0, ham: 1 });
  assert.deepEqual(redisCounts(process.env.NQQ_TEST_REDIS_SOCKET!, 'bob@example.com'), { spam: 0, ham: 0 });
  const sig = /signature=([0-9a-f]+)/.exec(JSON.stringify(s.command(['quarantine', 'show', id!]).stdout))?.[1];
  const retrain = dspam.calls().filter((c) => c.retrain);
  assert.equal(retrain.length, 1);
  assert.deepEqual(retrain[0]!.argv.slice(0, 4), ['--user', 'alice@example.com', '--class=innocent', '--source=error']);
  assert.match(retrain[0]!.argv[4]!, /^--signature=[0-9a-f]{24}$/);
  if (sig) assert.equal(retrain[0]!.argv[4], `--signature=${sig}`);
  const audit = auditOf(s, id!).map((e) => e[3]);
  assert.ok(audit.includes('release') && audit.includes('not-spam'), JSON.stringify(audit));

  // Once released, it cannot be taught or released again through the button.
  assert.equal((await alice.post(`/item/${id}/not-spam`, { csrf: csrfOf(page.body) })).status, 409);
  assert.equal(s.standIn.deliveries().length, 1);
  await web.stop();
});
