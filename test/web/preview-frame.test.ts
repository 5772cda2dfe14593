// The preview over HTTP, against `bin/nqqueue web` as its own process: the item page (plain text by
// default, the frame only when asked, the page's policy allowing that one frame), the frame's document
// and its headers, and who may see it.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PAGE_CSP } from '../../src/web/headers.js';
import { PAGE_CSP_WITH_PREVIEW } from '../../src/web/item-preview.js';
import { previewFrameHeaders } from '../../src/web/preview-csp.js';
import { setupsForThisFile } from '../helpers/nqq.js';
import { Browser, hold, installConsole, startWeb } from '../helpers/web.js';

const newSetup = setupsForThisFile();

const HTML = [
  '<html><head><script>alert(1)</script></head><body>',
  '<p>Hello <a href="https://evil.example/go">there</a></p>',
  '<img src="https://evil.example/pixel.gif" alt="pixel">',
  '</body></html>',
].join('\n');

test('the item page, the preview frame and its headers; another user’s item is not found', async () => {
  const s = newSetup();
  installConsole(s, { tcp: true });
  const [id] = await hold(s, { to: ['alice@example.com'], subject: 'html one', headers: 'MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n', body: HTML });
  const [plainId] = await hold(s, { to: ['alice@example.com'], subject: 'plain one', body: 'Just text <b>not bold</b>\n' });
  const [named] = await hold(s, {
    from: 'x@client.example',
    to: ['alice@example.com'],
    subject: '=?utf-8?q?<script>alert(1)</script>?=',
    headers: 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n',
    body: '--b\nContent-Type: text/plain\n\n<b>text</b>\n--b\nContent-Type: application/x-msdownload; name="<img src=x onerror=alert(2)>.exe"\nContent-Disposition: attachment\n\nMZ\n--b--\n',
  });
  const [bobs] = await hold(s, { to: ['bob@example.com'], subject: 'bob html', headers: 'Content-Type: text/html\n', body: HTML });
  assert.ok(id && plainId && named && bobs);
  const web = await startWeb(s);
  try {
    const alice = new Browser(web);
    assert.equal((await alice.login('alice@example.com', 'alice-secret')).status, 303);

    // Plain text by default: the text made from the HTML, escaped; no frame, the console's own policy.
    const item = await alice.get(`/item/${id}`);
    assert.equal(item.status, 200);
    assert.equal(item.headers['content-security-policy'], PAGE_CSP);
    assert.ok(!item.body.includes('<iframe'));
    assert.match(item.body, /<pre class="message">Hello there &lt;https:\/\/evil\.example\/go&gt;/);
    assert.match(item.body, /href="\/item\/[^"]+\?html=1" class="show-html"/);

    // Asked for the HTML: one sandboxed frame from the console itself, and a policy that allows just that.
    const withFrame = await alice.get(`/item/${id}?html=1`);
    assert.equal(withFrame.headers['content-security-policy'], PAGE_CSP_WITH_PREVIEW);
    assert.match(withFrame.body, new RegExp(`<iframe class="preview" sandbox="" src="/item/${id}/preview" [^>]*referrerpolicy="no-referrer"`));
    assert.match(withFrame.body, /1 remote image is blocked/);
    assert.match(withFrame.body, new RegExp(`href="/item/${id}\\?html=1&amp;remote=1" class="load-remote"`));

    // The frame's document and headers.
    const frame = await alice.get(`/item/${id}/preview`);
    assert.equal(frame.status, 200);
    for (const [k, v] of Object.entries(previewFrameHeaders(false))) assert.equal(frame.headers[k], v, k);
    assert.match(frame.body, /^<!DOCTYPE html>/);
    assert.ok(!/<script|alert/.test(frame.body));
    assert.ok(frame.body.includes('<span class="nqq-blocked">[remote image: https://evil.example/pixel.gif “pixel”]</span>'));
    assert.ok(!/(?:src|href)="https:/.test(frame.body));
    const remote = await alice.get(`/item/${id}/preview?remote=1`);
    assert.equal(remote.headers['content-security-policy'], previewFrameHeaders(true)['content-security-policy']);
    assert.ok(remote.body.includes('<img src="https://evil.example/pixel.gif" alt="pixel" />'));

    // A text/plain message has no HTML to show: no frame even when asked.
    const plain = await alice.get(`/item/${plainId}?html=1`);
    assert.ok(!plain.body.includes('<iframe'));
    assert.match(plain.body, /Just text &lt;b&gt;not bold&lt;\/b&gt;/);

    // Names and header fields from the mail are text on the page, never markup.
    const files = await alice.get(`/item/${named}`);
    assert.match(files.body, /<td>&lt;img src=x onerror=alert\(2\)&gt;\.exe<\/td><td>application\/x-msdownload<\/td><td class="nowrap">2 bytes<\/td>/);
    assert.match(files.body, /<dt>Subject<\/dt><dd>&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/dd>/);
    assert.match(files.body, /<pre class="message">&lt;b&gt;text&lt;\/b&gt;<\/pre>/);
    assert.ok(!/<script|<img src=x/.test(files.body));

    // Bob's item: answered like one that does not exist, page and frame alike.
    const missing = await alice.get(`/item/${'0'.repeat(bobs.length)}/preview`);
    const other = await alice.get(`/item/${bobs}/preview`);
    assert.equal(other.status, 404);
    assert.equal(missing.status, 404);
    assert.ok(!other.body.includes('bob html'));
    assert.equal((await alice.get(`/item/${bobs}?html=1`)).status, 404);

    // Without a login: to the login page.
    const anon = await new Browser(web).get(`/item/${id}/preview`);
    assert.equal(anon.status, 303);
    assert.equal(anon.headers.location, '/login');
  } finally {
    await web.stop();
  }
});
