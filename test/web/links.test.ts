// Digest links against `bin/nqqueue web`: GET shows the item and one button and never acts (a link
// scanner fetching it releases nothing); POST acts once (the token's nonce is used up in the store),
// audited from the client's address; used, tampered, expired, wrong-owner and view-only links do nothing.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { makeLink, signingKey } from '../../src/links/links.js';
import { setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { auditOf, hold, installConsole, startWeb, type WebServer } from '../helpers/web.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 120_000 };

async function world(): Promise<{ s: Setup; web: WebServer; alice: string[]; bob: string[]; key: Buffer }> {
  const s = make();
  installConsole(s, { web: { trust_proxy: 'yes' } });
  const alice = [...(await hold(s, { to: ['alice@example.com'], subject: 'Alice one' })), ...(await hold(s, { to: ['alice@example.com'], subject: 'Alice two' }))];
  const bob = await hold(s, { to: ['bob@example.com'], subject: 'Bob one' });
  const web = await startWeb(s);
  return { s, web, alice, bob, key: signingKey(s.home) };
}

const HOUR = 3_600_000;
const from = { 'x-forwarded-for': '198.51.100.77' };

describe('nqqueue web: digest links', LIMIT, () => {
  test('opening a release link shows the item and one button and does nothing; the button releases once; again is refused', async () => {
    const w = await world();
    const id = w.alice[0]!;
    const token = makeLink(w.key, { id, owner: 'alice@example.com', action: 'release', expires: Date.now() + HOUR });
    for (let i = 0; i < 3; i++) {
      const g = await w.web.request('GET', `/link/${token}`, { headers: from });
      assert.equal(g.status, 200);
      assert.match(g.body, /Alice one/);
      assert.match(g.body, new RegExp(`<form method="post" action="/link/${token.replace(/[.]/g, '\\.')}"`));
      assert.match(g.body, /Release this message to me/);
      assert.equal(g.headers['referrer-policy'], 'no-referrer');
      assert.equal(g.headers['cache-control'], 'no-store');
    }
    assert.equal((await w.web.request('HEAD', `/link/${token}`)).status, 200);
    assert.equal(w.s.standIn.calls().length, 0, 'GET never acts');
    const p = await w.web.request('POST', `/link/${token}`, { headers: from, body: '' });
    assert.equal(p.status, 200, p.body);
    assert.match(p.body, /Released/);
    const d = w.s.standIn.deliveries();
    assert.equal(d.length, 1);
    assert.deepEqual(d[0]!.recipients.map(String), ['alice@example.com']);
    const entries = auditOf(w.s, id).filter((e) => e[3] === 'release');
    assert.equal(entries.length, 1);
    assert.equal(entries[0]![1], 'alice@example.com');
    assert.match(entries[0]![2]!, /^198\.51\.100\.77\b/);
    // Used: refused, nothing more queued (and the page says so without a button).
    const again = await w.web.request('POST', `/link/${token}`, { headers: from, body: '' });
    assert.equal(again.status, 410);
    const reopened = await w.web.request('GET', `/link/${token}`);
    assert.equal(reopened.status, 410);
    assert.doesNotMatch(reopened.body, /<form method="post" action="\/link/);
    assert.equal(w.s.standIn.calls().length, 1);
    await w.web.stop();
  });

  test('one nonce, one action: a second link for an item released by the first, and a delete link used twice', async () => {
    const w = await world();
    const id = w.alice[1]!;
    const del = makeLink(w.key, { id, owner: 'alice@example.com', action: 'delete', expires: Date.now() + HOUR });
    const [a, b] = await Promise.all([w.web.request('POST', `/link/${del}`, { body: '' }), w.web.request('POST', `/link/${del}`, { body: '' })]);
    assert.deepEqual([a.status, b.status].sort(), [200, 410]);
    assert.equal(auditOf(w.s, id).filter((e) => e[3] === 'delete').length, 1);
    assert.equal(w.s.standIn.calls().length, 0);
    await w.web.stop();
  });

  test('tampered, malformed, expired, another owner\'s or view-only links do nothing, with a clear page', async () => {
    const w = await world();
    const id = w.alice[0]!;
    const good = makeLink(w.key, { id, owner: 'alice@example.com', action: 'release', expires: Date.now() + HOUR });
    const [body, mac] = good.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify([w.bob[0], 'bob@example.com', 'release', Date.now() + HOUR, 'n'])).toString('base64url');
    const cases: [string, string, number, RegExp][] = [
      ['tampered', `${forged}.${mac}`, 400, /not valid/],
      ['bad mac', `${body}.${mac.slice(0, -2)}AA`, 400, /not valid/],
      ['malformed', 'not-a-token', 400, /not valid/],
      ['other key', makeLink(Buffer.alloc(32, 7), { id, owner: 'alice@example.com', action: 'release', expires: Date.now() + HOUR }), 400, /not valid/],
      ['expired', makeLink(w.key, { id, owner: 'alice@example.com', action: 'release', expires: Date.now() - 1000 }), 410, /expired/],
      ['another owner', makeLink(w.key, { id: w.bob[0]!, owner: 'alice@example.com', action: 'release', expires: Date.now() + HOUR }), 404, /no such held message/],
      ['no such item', makeLink(w.key, { id: 'z'.repeat(20), owner: 'alice@example.com', action: 'delete', expires: Date.now() + HOUR }), 404, /no such held message/],
    ];
    for (const [name, token, code, text] of cases) {
      for (const method of ['GET', 'POST']) {
        const r = await w.web.request(method, `/link/${token}`, { body: '' });
        assert.equal(r.status, code, `${name} ${method}`);
        assert.match(r.body, text, name);
        assert.match(r.body, /Nothing was done/, name);
      }
    }
    const view = makeLink(w.key, { id, owner: 'alice@example.com', action: 'view', expires: Date.now() + HOUR });
    const v = await w.web.request('GET', `/link/${view}`);
    assert.equal(v.status, 200);
    assert.doesNotMatch(v.body, /<form method="post" action="\/link/);
    assert.equal((await w.web.request('POST', `/link/${view}`, { body: '' })).status, 400);
    assert.equal(w.s.standIn.calls().length, 0);
    const all = w.s.command(['quarantine', 'list']);
    assert.equal(all.stdout.trim().split('\n').length, 3, 'all three still held');
    // The good link still works after all that.
    assert.equal((await w.web.request('POST', `/link/${good}`, { body: '' })).status, 200);
    assert.equal(w.s.standIn.deliveries().length, 1);
    await w.web.stop();
  });
});
