// The dashboard over real HTTP against `bin/nqqueue web` (the browser test, test/browser/dashboard.test.ts,
// checks the graphs themselves): administrators only — an end user gets the same 404 as for a page that
// does not exist and no link to it, and a visitor is sent to the login —, the console's policy and
// headers, nothing in the page that could run or fetch, and figures from outside escaped.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { PAGE_CSP } from '../../src/web/headers.js';
import { openStore } from '../../src/store/open.js';
import { setupsForThisFile } from '../helpers/nqq.js';
import { Browser, installConsole, startWeb } from '../helpers/web.js';

const make = setupsForThisFile();

/** What the dashboard's page is made of: the layout's elements and the graphs' SVG ones. */
const ELEMENTS = new Set(['html', 'head', 'meta', 'title', 'link', 'body', 'header', 'span', 'nav', 'a', 'form', 'input', 'button', 'main', 'h1', 'h2', 'h3', 'p', 'div', 'section', 'ul', 'li', 'b', 'svg', 'g', 'rect', 'line', 'path', 'circle', 'text']);

/** The start tags of a page, with their attributes (the page is ours: attributes are double-quoted). */
function tags(body: string): { name: string; attributes: [string, string][] }[] {
  return [...body.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*\/?>/g)].map((m) => ({
    name: m[1]!.toLowerCase(),
    attributes: [...m[2]!.matchAll(/([^\s=>]+)(?:="([^"]*)")?/g)].map((x) => [x[1]!, x[2] ?? ''] as [string, string]),
  }));
}

test('nqqueue web: /dashboard is for administrators only; its page runs and fetches nothing; outside text is escaped', { timeout: 120_000 }, async (t) => {
  const s = make();
  installConsole(s);
  const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 5 * 60_000).toISOString();
  const store = await openStore(s.home, defaultSettings());
  await store.addRollups([
    { minute, host: 'mx1.example.com', series: 'messages', key: 'accept', count: 3, sum: 0 },
    { minute, host: 'mx1.example.com', series: 'sender', key: '"><script>alert(1)</script>@x.example', count: 2, sum: 0 },
    { minute, host: 'mx1.example.com', series: 'refusal', key: '<img src="https://remote.example/p.png">', count: 1, sum: 0 },
    { minute, host: '<b>evil</b>', series: 'messages', key: '<svg onload=alert(1)>', count: 1, sum: 0 },
  ]);
  await store.close();
  const web = await startWeb(s);
  t.after(() => web.stop());

  const visitor = new Browser(web);
  const away = await visitor.get('/dashboard');
  assert.equal(away.status, 303);
  assert.equal(away.headers.location, '/login');

  const alice = new Browser(web);
  assert.equal((await alice.login('alice@example.com', 'alice-secret')).status, 303);
  const list = await alice.get('/');
  assert.equal(list.status, 200);
  assert.doesNotMatch(list.body, /dashboard/i, 'no link for an end user');
  const refused = await alice.get('/dashboard?range=hour');
  const missing = await alice.get('/no-such-page');
  assert.equal(refused.status, 404);
  assert.equal(refused.body, missing.body, 'answered exactly as a page that does not exist');
  assert.doesNotMatch(refused.body, /<svg/);

  const admin = new Browser(web);
  assert.equal((await admin.login('admin@example.com', 'admin-pw')).status, 303);
  assert.match((await admin.get('/')).body, /<a href="\/dashboard">Dashboard<\/a>/, 'the link, for an administrator');
  for (const range of ['hour', 'day', 'week', 'month']) {
    const a = await admin.get(`/dashboard?range=${range}`);
    assert.equal(a.status, 200, range);
    assert.equal(a.headers['content-security-policy'], PAGE_CSP);
    assert.equal(a.headers['cache-control'], 'no-store');
    // Nothing that could run or fetch: only these elements, no handler, no inline style, and every
    // address one of the console's own.
    const all = tags(a.body);
    assert.ok(all.filter((x) => x.name === 'rect').length >= 3 && all.some((x) => x.name === 'svg'), `${range}: the graphs are in the page`);
    for (const tag of all) {
      assert.ok(ELEMENTS.has(tag.name), `${range}: <${tag.name}>`);
      for (const [name, value] of tag.attributes) {
        assert.ok(!/^on|^style$|^srcset$|^xlink:/i.test(name), `${range}: <${tag.name} ${name}>`);
        if (/^(href|src|action|formaction|data)$/i.test(name)) assert.match(value, /^\/(?!\/)/, `${range}: <${tag.name} ${name}="${value}">`);
      }
    }
    assert.match(a.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;@x\.example/, range);
    assert.match(a.body, /&lt;b&gt;evil&lt;\/b&gt;/, 'the host name escaped');
  }
  const one = await admin.get(`/dashboard?range=hour&host=${encodeURIComponent('<b>evil</b>')}`);
  assert.equal(one.status, 200);
  assert.match(one.body, /messages by result/);
  assert.doesNotMatch(one.body, /<b>evil/);
  // Changes nothing, takes no form: a POST is not a route.
  assert.equal((await admin.post('/dashboard', { csrf: await admin.csrf() })).status, 404);
});
