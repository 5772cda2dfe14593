// The console in a real browser (Debian's headless Chromium): `bin/nqqueue web` started as its own
// process on 127.0.0.1, the login through the test checkpassword program, the list, the preview of a
// hostile HTML message (nothing runs, nothing loads, not one request leaves the page), remote content
// on request, the release (one qmail-queue call, to that recipient only), and a digest link (opening
// does nothing, the button acts once; used, tampered and expired links do nothing).
// The README's screenshots are taken by test/browser/screenshots.test.ts, with real scanners.

import assert from 'node:assert/strict';

import type { Frame, Page } from 'playwright-core';

import { makeLink, signingKey } from '../../src/links/links.js';
import { HOSTILE_PAGE } from '../fixtures/hostile-html.js';
import { browserTest, startBrowser, type RecordedPage, type TestBrowser } from '../helpers/browser.js';
import { setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { hold, installConsole, startWeb, USERS, type WebServer } from '../helpers/web.js';

const newSetup = setupsForThisFile();

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
      body: HOSTILE_PAGE,
    });
    await hold(s, { from: 'newsletter@shop.example', to: ['alice@example.com'], subject: 'Weekly offers: 40% off everything', body: 'Our best offers this week.\n' });
    await hold(s, { from: 'colleague@partner.example', to: ['alice@example.com'], subject: 'Minutes of the meeting', body: 'Attached are the minutes.\n' });
    const [bobs] = await hold(s, { to: ['bob@example.com'], subject: 'For Bob only', body: 'Bob.\n' });
    assert.ok(hostile && bobs);
    const before = s.standIn.deliveries().length;
    const callsBefore = s.standIn.calls().length;

    const p = await c.browser.newPage(origin);
    await logIn(p, origin, 'alice@example.com');
    // The list: alice's three, not bob's.
    const list = await p.page.content();
    assert.ok(list.includes('Your mailbox is almost full'));
    assert.ok(list.includes('Weekly offers'));
    assert.ok(!list.includes('For Bob only'));

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
    assert.equal(s.standIn.calls().length, callsBefore + 1, 'exactly one qmail-queue call');

    // The "why" view of another item.
    await p.page.goto(`${origin}/`);
    const whyPath = await p.page.locator('a[href^="/item/"]').first().getAttribute('href');
    await p.page.goto(`${origin}${whyPath}/why`);
    assert.match(await p.page.content(), /Why this message is held/);

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
    const callsBefore = s.standIn.calls().length;
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
    assert.equal(s.standIn.calls().length, callsBefore + 1, 'exactly one qmail-queue call in all');
    // Nothing in any of it left the console's origin, and nothing ran.
    assert.deepEqual(p.requestsOutside(origin), []);
    assert.deepEqual(p.dialogs, []);
  } finally {
    await stopConsole(c);
  }
});
