// The README's screenshots of the console (docs/screenshots/), taken in the browser with mail held the
// way an installation holds it: clamd (general stage, `clamav=...,pass`) and spamd and rspamd (per-user,
// `=pass`) are the real ones the suite starts, and the quarantine keeps what spamassassin or clamav
// flagged. Written only with NQQ_SCREENSHOTS=1 (`NQQ_SCREENSHOTS=1 node scripts/run-tests.js
// test/browser/`); otherwise skipped, saying so, so a normal run and CI leave the committed pictures
// alone. What each picture must show is checked before it is taken.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import type { Page } from 'playwright-core';

import { HOSTILE_PAGE } from '../fixtures/hostile-html.js';
import { fixture, GTUBE } from '../fixtures/messages.js';
import { browserTest, startBrowser, type RecordedPage } from '../helpers/browser.js';
import { eicar, requireDaemon } from '../helpers/daemons.js';
import { viaSmtpd } from '../helpers/e2e.js';
import { REPO, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { installConsole, listIds, startWeb, USERS } from '../helpers/web.js';

const newSetup = setupsForThisFile();
const SHOTS = join(REPO, 'docs', 'screenshots');
const NAME = 'the README screenshots: the list, the hostile preview and the why page (user and admin), of mail held by real clamd and spamd';

/** The routing an administrator would write: the virus scan for everyone, the spam checks for local mail. */
function install(s: Setup, scanners: { clamd: string; spamd: string; rspamd: string }): void {
  installConsole(s, { tcp: true, global: `[spamassassin]\nhost = ${scanners.spamd}\n[rspamd]\nurl = ${scanners.rspamd}\n` });
  s.write('general.cfb', `# Every message: viruses are recorded, and held below for local recipients.\n:clamav=socket=${scanners.clamd},pass\n`);
  s.write('nqqueue.cfb', '# Local recipients: spam is recorded, not refused, and held with the viruses.\n:spamassassin=pass;rspamd=pass;quarantine=spamassassin,clamav\n');
}

/** Sends one message through bin/nqqueue as qmail-smtpd would; returns the new quarantine id. */
async function send(s: Setup, from: string, to: string, message: Buffer | string): Promise<string> {
  const before = new Set(listIds(s));
  const r = await s.run({ from, to: [to], message: viaSmtpd(Buffer.from(message)) });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 0, 'held, not delivered');
  const added = listIds(s).filter((id) => !before.has(id));
  assert.equal(added.length, 1, `one item held: ${r.logLines.join('\n')}`);
  return added[0]!;
}

function headers(from: string, to: string, subject: string, date: string, extra = ''): string {
  return `From: ${from}\nTo: ${to}\nSubject: ${subject}\nDate: ${date}\nMessage-ID: <${Math.random().toString(36).slice(2)}@${from.replace(/.*@|>$/g, '')}>\nMIME-Version: 1.0\n${extra}`;
}

function invoiceWithVirus(): string {
  const b = '=_invoice_7f3a';
  const data = eicar().toString('base64');
  return (
    headers('Billing <billing@supplier.example>', 'alice@example.com', 'Invoice 2026-1142 for November', 'Tue, 1 Dec 2026 09:12:44 +0000', `Content-Type: multipart/mixed; boundary="${b}"\n`) +
    `\n--${b}\nContent-Type: text/plain; charset=us-ascii\n\nDear customer,\n\nplease find your invoice attached.\n\n--${b}\n` +
    `Content-Type: application/octet-stream; name="invoice-2026-1142.com"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="invoice-2026-1142.com"\n\n${data}\n--${b}--\n`
  );
}

async function logIn(p: RecordedPage, origin: string, login: keyof typeof USERS): Promise<void> {
  await p.page.goto(`${origin}/login`);
  await p.page.fill('#login', login);
  await p.page.fill('#password', USERS[login]);
  await Promise.all([p.page.waitForURL(`${origin}/`), p.page.click('form[action="/login"] button[type=submit]')]);
}

async function shot(page: Page, name: string): Promise<void> {
  // Legible in the README: the page fits the 1100 px window, nothing runs off to the right.
  const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
  assert.ok(width <= 1100, `${name}: the page is ${width} px wide`);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

if (process.env.NQQ_SCREENSHOTS !== '1') {
  test(NAME, { skip: 'screenshots are taken only with NQQ_SCREENSHOTS=1 (they rewrite docs/screenshots/)' }, () => {});
} else {
  browserTest(NAME, async (t) => {
    const clamd = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
    const spamd = clamd && requireDaemon('NQQ_TEST_SPAMD', t);
    const rspamd = spamd && requireDaemon('NQQ_TEST_RSPAMD_URL', t);
    if (!clamd || !spamd || !rspamd) return;
    const s = newSetup();
    install(s, { clamd, spamd, rspamd });

    const alice = 'alice@example.com';
    const figures = await send(s, 'carol@example.net', alice, fixture('spamd-five-points.eml'));
    const virus = await send(s, 'billing@supplier.example', alice, invoiceWithVirus());
    const offers = await send(
      s,
      'newsletter@shop.example',
      alice,
      headers('Shop <newsletter@shop.example>', alice, 'Weekly offers: 40% off everything', 'Tue, 1 Dec 2026 14:30:02 +0000', 'Content-Type: text/plain; charset=us-ascii\n') +
        `\nOur best offers this week.\n\n${GTUBE}\n`,
    );
    // The hostile page, made spam by GTUBE (in a paragraph of its own: scanners read the text).
    const hostile = await send(
      s,
      'support@attacker.example',
      alice,
      headers('Mailbox team <support@attacker.example>', alice, 'Your mailbox is almost full', 'Tue, 1 Dec 2026 22:47:10 +0000', 'Content-Type: text/html; charset=utf-8\n') +
        `\n${HOSTILE_PAGE.replace('</body>', `<p>${GTUBE}</p>\n</body>`)}`,
    );

    const web = await startWeb(s);
    t.after(() => web.stop());
    const where = web.target as { host: string; port: number };
    const origin = `http://${where.host}:${where.port}`;
    const browser = await startBrowser();
    t.after(() => browser.stop());

    // The list, as alice sees it: each item says what caught it, in the scanner's words.
    const p = await browser.newPage(origin);
    await logIn(p, origin, alice);
    const list = await p.page.locator('table').innerText();
    assert.match(list, /SpamAssassin scored it 1\d\d\d\.\d \(your limit is 3\.0\)/);
    assert.match(list, /Quarterly figures\tSpamAssassin scored it \d\.\d \(your limit is 3\.0\): spam/);
    assert.match(list, /ClamAV found the virus Eicar-/);
    assert.doesNotMatch(list, /found something/);
    await shot(p.page, 'list');

    // The preview of the hostile page: made harmless, nothing fetched.
    await p.page.goto(`${origin}/item/${hostile}?html=1`);
    const frame = await (await p.page.waitForSelector('iframe.preview')).contentFrame();
    assert.ok(frame);
    await frame.waitForLoadState('load');
    assert.match(await frame.locator('body').innerText(), /\[remote image: https:\/\/remote-image\.attacker\.example\/pixel\.png/);
    assert.deepEqual(p.requestsOutside(origin), []);
    assert.deepEqual(p.dialogs, []);
    await shot(p.page, 'preview');

    // Why the offers are held, as alice sees it: every check, no routing.
    await p.page.goto(`${origin}/item/${offers}/why`);
    const why = await p.page.locator('table').innerText();
    assert.match(why, /ClamAV found no virus/);
    assert.match(why, /SpamAssassin scored it 1\d\d\d\.\d \(your limit is 3\.0\): spam \(why it is held\)/);
    assert.match(why, /Rspamd scored it/);
    assert.doesNotMatch(await p.page.content(), /nqqueue\.cfb|general\.cfb|socket=/);
    await shot(p.page, 'why');

    // The same page for an administrator: the stage, the routing line (file:line) and what was recorded.
    // (A fresh page in the same browser shares alice's session cookie: it is dropped first.)
    await p.page.context().clearCookies();
    const admin = await browser.newPage(origin);
    await logIn(admin, origin, 'admin@example.com');
    await admin.page.goto(`${origin}/item/${offers}/why`);
    const adminWhy = await admin.page.locator('main').innerText();
    assert.match(adminWhy, /general\.cfb:2/);
    assert.match(adminWhy, /nqqueue\.cfb:2/);
    await shot(admin.page, 'why-admin');
    assert.ok(figures && virus);
  });
}
