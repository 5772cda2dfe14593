// The sanitizer's output as a real browser parses it: each hostile vector (and all of them in one
// document) is sanitized, then served as a top-level page with NO policy and NO sandbox — the
// sanitizer alone must hold. Chromium's own parser then builds the DOM (mutation XSS happens there, not
// in the sanitizer's parser), and the test walks that DOM and watches for dialogs and requests.
// A control page of the raw vectors shows the watchers see what a hostile page does.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { sanitizeMailHtml } from '../../src/web/html-sanitize.js';
import { browserTest, startBrowser } from '../helpers/browser.js';
import { HOSTILE } from '../fixtures/hostile-html.js';

const ALLOWED = new Set([
  'HTML', 'HEAD', 'META', 'BODY', 'A', 'ABBR', 'ADDRESS', 'ARTICLE', 'ASIDE', 'B', 'BDI', 'BDO', 'BIG', 'BLOCKQUOTE', 'BR', 'CAPTION', 'CENTER',
  'CITE', 'CODE', 'COL', 'COLGROUP', 'DD', 'DEL', 'DFN', 'DIV', 'DL', 'DT', 'EM', 'FIGCAPTION', 'FIGURE', 'FONT', 'FOOTER', 'H1', 'H2', 'H3', 'H4',
  'H5', 'H6', 'HEADER', 'HR', 'I', 'IMG', 'INS', 'KBD', 'LI', 'MAIN', 'MARK', 'NAV', 'OL', 'P', 'PRE', 'Q', 'S', 'SAMP', 'SECTION', 'SMALL', 'SPAN',
  'STRIKE', 'STRONG', 'SUB', 'SUP', 'TABLE', 'TBODY', 'TD', 'TFOOT', 'TH', 'THEAD', 'TIME', 'TR', 'TT', 'U', 'UL', 'VAR', 'WBR',
]);

interface DomWalk {
  out: { name: string; attrs: [string, string][] }[];
  title: string;
  scripts: number;
  forms: number;
}

const DOM_WALK = `(() => {
  const out = [];
  for (const el of Array.from(document.querySelectorAll('*'))) {
    out.push({ name: el.tagName, attrs: Array.from(el.attributes).map((a) => [a.name, a.value]) });
  }
  return { out, title: document.title, scripts: document.scripts.length, forms: document.forms.length };
})()`;

function bare(body: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>${body}</body></html>`;
}

browserTest('sanitized hostile HTML, parsed by Chromium without any policy or sandbox: nothing runs, nothing loads, only allowed elements and attributes', async () => {
  const pages = new Map<string, string>();
  HOSTILE.forEach((v, i) => pages.set(`/one/${i}`, bare(sanitizeMailHtml(v).body)));
  pages.set('/all', bare(sanitizeMailHtml(HOSTILE.join('\n')).body));
  pages.set('/all-remote', bare(sanitizeMailHtml(HOSTILE.join('\n'), { remote: true }).body));
  pages.set('/control', bare(HOSTILE.join('\n')));
  const server = createServer((req, res) => {
    const page = pages.get(req.url ?? '');
    res.statusCode = page === undefined ? 404 : 200;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(page ?? '');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await startBrowser();
  try {
    // The control: the same vectors unsanitized do run and do load, and the watchers see it.
    const control = await browser.newPage(origin);
    await control.page.goto(`${origin}/control`);
    await control.page.waitForTimeout(500);
    assert.ok(control.dialogs.length > 0, 'the raw vectors run');
    assert.ok(control.requestsOutside(origin).length > 0, 'the raw vectors load');

    for (const path of [...pages.keys()].filter((k) => k !== '/control')) {
      const p = await browser.newPage(origin);
      await p.page.goto(`${origin}${path}`);
      await p.page.waitForTimeout(path.startsWith('/all') ? 400 : 50);
      // As a string: the tests compile without the DOM's types.
      const dom = (await p.page.evaluate(DOM_WALK)) as DomWalk;
      assert.deepEqual(p.dialogs, [], `${path}: ${JSON.stringify(p.dialogs)}`);
      assert.deepEqual(p.errors, [], path);
      assert.equal(dom.scripts, 0, path);
      assert.equal(dom.forms, 0, path);
      assert.equal(dom.title, '', path);
      for (const el of dom.out) {
        assert.ok(ALLOWED.has(el.name), `${path}: <${el.name}> in the browser's DOM`);
        for (const [k, v] of el.attrs) {
          assert.ok(!/^on/i.test(k) && !['style', 'href', 'srcset', 'background', 'action', 'formaction', 'target', 'ping', 'srcdoc', 'data'].includes(k), `${path}: ${el.name} ${k}="${v}"`);
          if (el.name === 'IMG' && k === 'src' && path === '/all-remote') assert.match(v, /^(?:data:image\/|https?:\/\/|\/\/)/);
          else if (el.name === 'IMG' && k === 'src') assert.match(v, /^data:image\/(?:png|gif|jpeg|webp);base64,/, `${path}: img src ${v}`);
        }
      }
      const outside = p.requestsOutside(origin).map((r) => r.url);
      if (path === '/all-remote') {
        // Remote content asked for: images only, the ones the preview listed.
        const listed = new Set(sanitizeMailHtml(HOSTILE.join('\n'), { remote: true }).remoteImages.map((u) => (u.startsWith('//') ? `http:${u}` : u)));
        for (const u of outside) assert.ok(listed.has(u), `${u} was not a listed remote image`);
        assert.ok(p.requests.filter((r) => outside.includes(r.url)).every((r) => r.resourceType === 'image'));
      } else {
        assert.deepEqual(outside, [], path);
      }
    }
  } finally {
    await browser.stop();
    server.close();
  }
});
