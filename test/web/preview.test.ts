import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseDocument } from 'htmlparser2';

import { MemoryMessage } from '../../src/intake/message.js';
import { HOSTILE } from '../fixtures/hostile-html.js';
import { escapeHtml } from '../../src/web/html.js';
import {
  PREVIEW_CSP,
  PREVIEW_CSP_REMOTE,
  PREVIEW_FRAME_CSP,
  previewFrameHeaders,
  previewMessage,
  type Preview,
  type PreviewOptions,
} from '../../src/web/preview.js';

const preview = (msg: string | Buffer, options: PreviewOptions = {}): Promise<Preview> =>
  previewMessage(new MemoryMessage(Buffer.isBuffer(msg) ? msg : Buffer.from(msg, 'utf8')), options);

/** A message with one HTML body (and optional further parts after it in a multipart/related). */
function htmlMessage(html: string, opts: { charset?: string; encoding?: string; extra?: string } = {}): string {
  const head = `Content-Type: text/html; charset=${opts.charset ?? 'utf-8'}\n${opts.encoding ? `Content-Transfer-Encoding: ${opts.encoding}\n` : ''}`;
  if (!opts.extra) return `From: a@example.net\nTo: u@example.com\nSubject: t\n${head}\n${html}\n`;
  return `From: a@example.net\nTo: u@example.com\nSubject: t\nContent-Type: multipart/related; boundary=rel\n\n--rel\n${head}\n${html}\n${opts.extra}--rel--\n`;
}

interface Node {
  type: string;
  name?: string;
  attribs?: Record<string, string>;
  data?: string;
  children?: Node[];
}

/** Every element and text node of a document (iteratively: hostile nesting must not need a deep stack here either). */
function nodes(html: string): { elements: Node[]; texts: string[] } {
  const elements: Node[] = [];
  const texts: string[] = [];
  const stack: Node[] = [parseDocument(html) as unknown as Node];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.type === 'tag' || n.type === 'script' || n.type === 'style') elements.push(n);
    if (n.type === 'text') texts.push(n.data ?? '');
    const children = n.children ?? [];
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return { elements, texts };
}

const OUR_META = 3; // charset, the policy, the referrer policy
const ALLOWED_ELEMENTS = new Set([
  'html', 'head', 'body', 'meta', 'style', // the document's own frame
  'a', 'abbr', 'address', 'article', 'aside', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption', 'center', 'cite', 'code', 'col',
  'colgroup', 'dd', 'del', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font', 'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'header', 'hr', 'i', 'img', 'ins', 'kbd', 'li', 'main', 'mark', 'nav', 'ol', 'p', 'pre', 'q', 's', 'samp', 'section', 'small', 'span',
  'strike', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'time', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
]);
const URLISH = /(?:[a-z][a-z0-9+.-]*:|\/\/)/i;

/**
 * The document is safe: only allowed elements; only our three meta and one style element; no event
 * handler, style or URL-bearing attribute; an img src only a data: image (or, with remote, http(s));
 * and no remote address anywhere but in text.
 */
function assertSafe(doc: string, remote = false): void {
  const { elements } = nodes(doc);
  let metas = 0;
  let styles = 0;
  for (const el of elements) {
    assert.ok(ALLOWED_ELEMENTS.has(el.name!), `element <${el.name}> in ${doc}`);
    if (el.name === 'meta') metas++;
    if (el.name === 'style') styles++;
    for (const [k, v] of Object.entries(el.attribs ?? {})) {
      assert.ok(!/^on/i.test(k), `event handler ${k}`);
      assert.ok(!['style', 'href', 'srcset', 'background', 'action', 'formaction', 'poster', 'xlink:href', 'ping', 'lowsrc', 'dynsrc'].includes(k), `attribute ${k}="${v}"`);
      if (el.name === 'meta') continue;
      if (el.name === 'img' && k === 'src') {
        if (remote && /^(?:https?:)?\/\//.test(v)) continue;
        assert.match(v, /^data:image\/(?:png|gif|jpeg|webp);base64,[A-Za-z0-9+/]+={0,2}$/, `img src ${v.slice(0, 80)}`);
        continue;
      }
      assert.doesNotMatch(v, URLISH, `a URL in attribute ${k}="${v}" of <${el.name}>`);
    }
  }
  assert.equal(metas, OUR_META, 'only the document’s own meta elements');
  assert.equal(styles, 1, 'only the document’s own stylesheet');
  assert.doesNotMatch(doc, /url\s*\(|@import|expression\s*\(/i, 'no CSS that loads');
  assert.ok(doc.includes(`content="${escapeHtml(remote ? PREVIEW_CSP_REMOTE : PREVIEW_CSP)}"`), 'the policy is in the document');
}

test('the policies: nothing but data: images and the preview’s own style; https images only when remote was asked; header adds sandbox', () => {
  assert.match(PREVIEW_CSP, /^default-src 'none'; img-src data:; style-src 'sha256-[A-Za-z0-9+/]+=*'; form-action 'none'; base-uri 'none'$/);
  assert.equal(PREVIEW_CSP_REMOTE, PREVIEW_CSP.replace('img-src data:', 'img-src data: https:'));
  assert.equal(PREVIEW_FRAME_CSP, `${PREVIEW_CSP}; frame-ancestors 'self'; sandbox`);
  const h = previewFrameHeaders(true);
  assert.equal(h['content-type'], 'text/html; charset=utf-8');
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.match(h['content-security-policy']!, /img-src data: https:;.*sandbox$/);
});

test('text/plain preferred over HTML; quoted-printable and the charset decoded; header summary decoded', async () => {
  const msg = [
    'From: =?iso-8859-1?q?Ren=E9?= <rene@example.net>',
    'To: =?utf-8?b?SsO8cmdlbg==?= <j@example.com>',
    'Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and\n more\u0007',
    'Date: Tue, 1 Dec 2026 10:00:00 +0000',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Caf=E9 cr=\n=E8me\r',
    'line two\u0000',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p>html version</p>',
    '--alt--',
    '',
  ].join('\n');
  const p = await preview(msg, { html: true });
  assert.equal(p.textFrom, 'plain');
  assert.equal(p.text, 'Café crème\nline two');
  assert.equal(p.hasHtml, true);
  assert.match(p.html!, /<p>html version<\/p>/);
  assert.deepEqual(p.headers, {
    from: 'René <rene@example.net>',
    to: 'Jürgen <j@example.com>',
    cc: '',
    subject: 'Grüße and more',
    date: 'Tue, 1 Dec 2026 10:00:00 +0000',
  });
  assert.deepEqual(p.attachments, []);
  assert.deepEqual(p.truncated, []);
});

test('HTML-only mail: a text rendering (links as text <address>, no script or style text); no HTML unless asked', async () => {
  const html =
    '<html><head><title>T</title><style>p{color:red}</style><script>var x="<b>s</b>"</script></head><body><h1>Offer</h1><p>Click <a href="https://evil.example/x">here</a></p><ul><li>one</li><li>two</li></ul><img alt="logo" src="https://evil.example/l.png"></body></html>';
  const p = await preview(htmlMessage(html));
  assert.equal(p.textFrom, 'html');
  assert.equal(p.text, 'Offer\n\nClick here <https://evil.example/x>\n\n- one\n- two\n[image: logo]');
  assert.equal(p.html, undefined);
  assert.deepEqual(p.remoteImages, []);
  assert.deepEqual((await preview(htmlMessage(html), { html: true })).remoteImages, ['https://evil.example/l.png']);
});


test('hostile HTML: nothing that runs, loads, submits or styles survives; every address only as text', async () => {
  const html = HOSTILE.join('\n');
  const p = await preview(htmlMessage(html), { html: true });
  assert.ok(p.html);
  assertSafe(p.html);
  // Each vector alone as well: one must not hide behind another.
  for (const v of HOSTILE) {
    const one = await preview(htmlMessage(v), { html: true });
    assertSafe(one.html!);
  }
  const { texts } = nodes(p.html);
  const text = texts.join('');
  // The links are inert and their addresses shown beside them.
  assert.ok(text.includes('https://bank.example/ [https://evil.example/phish]'), text);
  assert.ok(text.includes('js link [javascript:alert(5)]'));
  assert.ok(text.includes('data link [data:text/html;base64,'));
  assert.ok(text.includes('[remote image: https://evil.example/t.gif]'));
  const relative = await preview(htmlMessage(HOSTILE.find((v) => v.includes('protocol-relative'))!), { html: true });
  assert.ok(relative.html!.includes('[remote image: //evil.example/protocol-relative.png]'));
  // Remote images are listed, so that the console can offer to load them.
  assert.ok(p.remoteImages.includes('https://evil.example/t.gif'));
  assert.deepEqual(relative.remoteImages, ['//evil.example/protocol-relative.png']);
  // No script text leaks into the page as markup, and the alert calls are not in any attribute.
  assert.doesNotMatch(p.html, /<script|<svg|<math|<iframe|<object|<embed|<form|<input|<button|<base|<link|<video|<audio|<source|<picture|<template|<noscript/i);
  assert.doesNotMatch(p.html, /\son[a-z]+\s*=/i);
});

test('presentational attributes keep presentational values only (no address in a width or a colour)', async () => {
  const p = await preview(htmlMessage('<table width="https://evil.example/w" bgcolor="#ffeedd" border="1"><tr><td align="center" height="javascript:x" valign="top">c</td></tr></table><font face="Arial, sans-serif" color="url(https://evil.example/c)">f</font>'), { html: true });
  assertSafe(p.html!);
  assert.match(p.html!, /<table bgcolor="#ffeedd" border="1"><tr><td align="center" valign="top">c<\/td><\/tr><\/table><font face="Arial, sans-serif">f<\/font>/);
});

test('remote: true keeps remote images (http, https, protocol-relative) and nothing else remote; the policy allows https images', async () => {
  const p = await preview(htmlMessage(HOSTILE.join('\n')), { html: true, remote: true });
  assertSafe(p.html!, true);
  const { elements } = nodes(p.html!);
  const srcs = elements.filter((e) => e.name === 'img').map((e) => e.attribs!.src!);
  assert.ok(srcs.includes('https://evil.example/t.gif'));
  const relative = await preview(htmlMessage('<div id="x"><img src="//evil.example/protocol-relative.png"></div>'), { html: true, remote: true });
  assert.match(relative.html!, /<img src="\/\/evil.example\/protocol-relative.png" \/>/);
  assert.ok(!srcs.some((s) => s.includes('1x.png') || s.includes('pic.webp') || s.includes('ftp:')));
  assert.ok(p.html!.includes("img-src data: https:"));
});

test('cid: images: a small image part as a data: URI; a large one, one of another type or a missing one as a placeholder', async () => {
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201ee5a4b7a0000000049454e44ae426082', 'hex');
  const big = Buffer.alloc(600 * 1024, 1);
  const part = (cid: string, type: string, bytes: Buffer) =>
    `--rel\nContent-Type: ${type}\nContent-ID: <${cid}>\nContent-Transfer-Encoding: base64\n\n${bytes.toString('base64').replace(/.{76}/g, '$&\n')}\n`;
  const p = await preview(
    htmlMessage('<img src="cid:small@x" alt="s"><img src="cid:big@x"><img src="cid:html@x"><img src="cid:none@x">', {
      extra: part('small@x', 'image/png', png) + part('big@x', 'image/png', big) + part('html@x', 'text/html', Buffer.from('<script>x</script>')),
    }),
    { html: true },
  );
  assertSafe(p.html!);
  const imgs = nodes(p.html!).elements.filter((e) => e.name === 'img');
  assert.equal(imgs.length, 1);
  assert.equal(imgs[0]!.attribs!.src, `data:image/png;base64,${png.toString('base64')}`);
  assert.equal(p.html!.match(/inline image not shown/g)?.length, 3);
  // The image parts are still listed: what a message carries is all shown.
  assert.deepEqual(
    p.attachments.map((a) => [a.type, a.size]),
    [
      ['image/png', png.length],
      ['image/png', big.length],
      ['text/html', 18],
    ],
  );
});

test('charset tricks: UTF-7 and ISO-2022-JP are decoded before the sanitizer sees them; the document is always UTF-8', async () => {
  const utf7 = await preview(htmlMessage('+ADw-script+AD4-alert(1)+ADw-/script+AD4-+ADw-img src+AD0-x onerror+AD0-alert(2)+AD4-hi', { charset: 'utf-7' }), { html: true });
  assertSafe(utf7.html!);
  assert.doesNotMatch(utf7.html!, /alert/);
  assert.match(utf7.html!, /hi/);
  // The mail's charset is not declared to the browser: a UTF-7 reading there would be the mail's choice.
  assert.doesNotMatch(utf7.html!, /utf-7/i);

  // ISO-2022-JP: "日本語" with its escape sequences; an HTML part whose escapes hide markup.
  const jp = Buffer.from('\x1b$BF|K\\8l\x1b(B', 'latin1');
  const text = await preview(Buffer.concat([Buffer.from('Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\nContent-Type: text/plain; charset=ISO-2022-JP\n\n'), jp, Buffer.from('\n')]));
  assert.equal(text.text, '日本語\n');
  assert.equal(text.headers.subject, '日本語');
  const html = await preview(
    Buffer.concat([
      Buffer.from('Content-Type: text/html; charset=iso-2022-jp\n\n'),
      Buffer.from('\x1b$B<\x1b(Bscript\x1b(J>alert(1)</script><img src=x \x1b$@onerror\x1b(B=alert(2)>', 'latin1'),
      jp,
    ]),
    { html: true },
  );
  assertSafe(html.html!);
  assert.ok(!html.html!.includes('\x1b'), 'no escape sequence reaches the browser');
  assert.match(html.html!, /<meta charset="utf-8">/);
  assert.ok(html.html!.includes('日本語'));

  // A charset this runtime does not know: read as Latin-1, never an error.
  const odd = await preview(Buffer.from('Content-Type: text/plain; charset="x-no-such-charset"\n\nab\xe9\n', 'latin1'));
  assert.equal(odd.text, 'abé\n');
});

test('attachments listed by name (RFC 2231 and 2047), type and decoded size; odd names made visible; attached messages and what is inside them', async () => {
  const msg = [
    'Subject: files',
    'Content-Type: multipart/mixed; boundary=m',
    '',
    '--m',
    'Content-Type: text/plain',
    '',
    'see attached',
    '--m',
    'Content-Type: application/pdf',
    "Content-Disposition: attachment; filename*=utf-8''R%C3%A9sum%C3%A9%20final.pdf",
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.alloc(1000, 7).toString('base64').replace(/.{76}/g, '$&\n'),
    '--m',
    'Content-Type: application/octet-stream; name="=?utf-8?q?invoice=E2=80=AEfdp.exe?="',
    '',
    'MZ',
    '--m',
    'Content-Type: text/plain; name="notes.txt"',
    'Content-Disposition: inline',
    '',
    'an inline text with a name is a file',
    '--m',
    'Content-Type: message/rfc822',
    '',
    'Subject: inner',
    'Content-Type: multipart/mixed; boundary=i',
    '',
    '--i',
    'Content-Type: text/plain',
    '',
    'inner text',
    '--i',
    'Content-Type: application/zip',
    'Content-Disposition: attachment; filename="inner.zip"',
    '',
    'PK',
    '--i--',
    '--m--',
    '',
  ].join('\n');
  const p = await preview(msg);
  assert.equal(p.text, 'see attached');
  assert.deepEqual(p.attachments, [
    { name: 'Résumé final.pdf', type: 'application/pdf', size: 1000, partial: false },
    { name: 'invoice\uFFFDfdp.exe', type: 'application/octet-stream', size: 2, partial: false },
    { name: 'notes.txt', type: 'text/plain', size: 36, partial: false },
    { name: '', type: 'message/rfc822', size: p.attachments[3]!.size, partial: false },
    { name: '', type: 'text/plain', size: 10, partial: false, within: 'inner.eml' },
    { name: 'inner.zip', type: 'application/zip', size: 2, partial: false, within: 'inner.eml' },
  ]);
});

test('a message with 10000 parts: bounded time and output, and it says so', async () => {
  const parts: string[] = ['Subject: many', 'Content-Type: multipart/mixed; boundary=x', '', '--x', 'Content-Type: text/plain', '', 'body'];
  for (let i = 0; i < 10_000; i++) parts.push('--x', 'Content-Type: application/octet-stream', `Content-Disposition: attachment; filename="f${i}.bin"`, '', 'data');
  parts.push('--x--', '');
  const started = performance.now();
  const p = await preview(parts.join('\n'), { html: true });
  const ms = performance.now() - started;
  assert.equal(p.text, 'body');
  assert.ok(p.attachments.length <= 500, `${p.attachments.length} listed`);
  assert.ok(p.truncated.some((t) => /more than 1000 parts/.test(t)), p.truncated.join('; '));
  assert.ok(p.truncated.some((t) => /more than 500 attachments/.test(t)), p.truncated.join('; '));
  assert.ok(ms < 3000, `${ms} ms`);
});

test('deep nesting: multiparts 5000 deep and HTML elements 100000 deep are bounded, not a crash', async () => {
  let msg = 'Subject: deep\n';
  for (let i = 0; i < 5000; i++) msg += `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n`;
  msg += 'Content-Type: text/plain\n\nbottom\n';
  const p = await preview(msg);
  assert.ok(p.truncated.some((t) => /nested more than 32 levels/.test(t)));
  const html = `${'<div>'.repeat(100_000)}deep text<script>alert(1)</script>${'</div>'.repeat(100_000)}`;
  const started = performance.now();
  const h = await preview(htmlMessage(html), { html: true });
  assert.ok(performance.now() - started < 5000);
  assert.doesNotMatch(h.html!, /script|alert/);
  assert.ok(h.html!.split('<div>').length - 1 <= 210, 'the HTML is not read past the nesting bound');
  assert.ok(h.truncated.some((t) => /nests elements more than 200 deep/.test(t)), h.truncated.join('; '));
  assert.ok(h.text.length < 100);
});

test('huge messages: only the first readBytes are read, the text and the HTML are capped, and each cut is said', async () => {
  const body = 'x'.repeat(1000) + '\n';
  const msg = `Subject: big\nContent-Type: text/plain\n\n${body.repeat(3000)}`;
  const p = await preview(msg, { limits: { readBytes: 1024 * 1024, textChars: 50_000 } });
  assert.equal(p.text.length, 50_000);
  assert.ok(p.truncated.some((t) => /only the first 1\.0 MB/.test(t)), p.truncated.join('; '));
  assert.ok(p.truncated.some((t) => /longer than 50000 characters/.test(t)));
  const whole = await preview(`Subject: small\n\nshort\n`);
  assert.deepEqual(whole.truncated, []);
  const h = await preview(htmlMessage(`<p>${'y'.repeat(3 * 1024 * 1024)}</p><script>alert(1)</script>`), { html: true });
  assert.ok(h.truncated.some((t) => /the HTML part is over 1024 KB/.test(t)));
  assertSafe(h.html!);
  // An attachment cut by the read bound says its size is a lower bound.
  const att = await preview(
    `Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nt\n--z\nContent-Type: application/zip\nContent-Disposition: attachment; filename=a.zip\n\n${'z'.repeat(200_000)}`,
    { limits: { readBytes: 100_000 } },
  );
  assert.equal(att.attachments[0]!.partial, true);
  assert.ok(att.attachments[0]!.size < 100_000);
});

test('a message that is not text at all, and one without a body, preview as nothing to show', async () => {
  const bin = await preview('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=x.exe\n\nMZ\n');
  assert.equal(bin.textFrom, 'none');
  assert.equal(bin.text, '');
  assert.deepEqual(bin.attachments.map((a) => a.name), ['x.exe']);
  const empty = await preview('Subject: only headers');
  assert.equal(empty.headers.subject, 'only headers');
  assert.equal(empty.text, '');
});
