// The lists in the console over real HTTP against `bin/nqqueue web`: a user sees and changes their own
// list only (a form that names another list still changes theirs; another's entry is a 404), every
// change needs the session's CSRF token and is audited; "allow/block this sender" on a held item adds
// its sender to its recipient's list (and the next message from that sender is refused); administrators
// choose any list and policy.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { Browser, csrfOf, hold, installConsole, startWeb, type WebServer } from '../helpers/web.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 180_000 };

interface World {
  s: Setup;
  web: WebServer;
  alice: Browser;
  bob: Browser;
  admin: Browser;
  aliceIds: string[];
  bobIds: string[];
}

async function world(): Promise<World> {
  const s = make();
  installConsole(s, { web: { trust_proxy: 'yes' } });
  const aliceIds = await hold(s, { to: ['alice@example.com'], subject: 'Cheap watches', from: 'spammer@bad.example' });
  const bobIds = await hold(s, { to: ['bob@example.com'], subject: 'For Bob', from: 'friend@other.example' });
  const web = await startWeb(s);
  const browser = async (login: string, password: string, ip: string) => {
    const b = new Browser(web, { 'x-forwarded-for': ip });
    assert.equal((await b.login(login, password)).status, 303);
    return b;
  };
  return {
    s,
    web,
    aliceIds,
    bobIds,
    alice: await browser('alice@example.com', 'alice-secret', '203.0.113.10'),
    bob: await browser('bob@example.com', 'bob pass word', '203.0.113.20'),
    admin: await browser('admin@example.com', 'admin-pw', '203.0.113.30'),
  };
}

function readConf(s: Setup): string {
  return readFileSync(join(s.control, 'nqqueue.conf'), 'utf8');
}

/** `nqqueue lists show` for one list: action value skip note. */
function entries(s: Setup, ...whose: string[]): string[] {
  const r = s.command(['lists', 'show', ...whose]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t').slice(2).join(' | '));
}

function idOf(s: Setup, value: string, ...whose: string[]): string {
  const line = s.command(['lists', 'show', ...whose]).stdout.split('\n').find((l) => l.split('\t')[3] === value);
  assert.ok(line, `${value} in ${whose.join(' ')}`);
  return line.split('\t')[0]!;
}

describe('nqqueue web: lists', LIMIT, () => {
  test('a user adds to and removes from their own list; a form naming another list still changes theirs; every change is audited', async () => {
    const w = await world();
    const page = await w.alice.get('/lists');
    assert.equal(page.status, 200);
    assert.match(page.body, /<h2>Your list<\/h2>/);
    assert.match(page.body, /<a href="\/lists">Lists<\/a>/);
    assert.doesNotMatch(page.body, /name="scope"/, 'no choice of list for a user');
    const csrf = csrfOf(page.body);
    const add = await w.alice.post('/lists/add', { csrf, action: 'block', value: 'Evil.Example' });
    assert.equal(add.status, 303);
    assert.equal(add.headers.location, '/lists');
    // scope and owner are an administrator's fields: for a user they change nothing but her own list.
    const sneaky = await w.alice.post('/lists/add', { csrf, action: 'allow', value: 'friend@partner.example', scope: 'global', owner: '', skip: 'clamav' });
    assert.equal(sneaky.status, 303);
    assert.deepEqual(entries(w.s, '--user', 'alice@example.com'), ['block | evil.example | - | ', 'allow | friend@partner.example | default policy | ']);
    assert.deepEqual(entries(w.s, '--global'), []);
    const shown = await w.alice.get('/lists');
    assert.match(shown.body, /<code>evil\.example<\/code>/);
    assert.match(shown.body, /<code>friend@partner\.example<\/code><\/td><td>spam checks skipped/);
    // A network is the site's business; a bad value is refused with what is wrong.
    const net = await w.alice.post('/lists/add', { csrf, action: 'block', value: '192.0.2.0/24' });
    assert.equal(net.status, 400);
    assert.match(net.body, /a network can be listed by an administrator only\. Nothing was changed\./);
    const bad = await w.alice.post('/lists/add', { csrf, action: 'block', value: '<script>@x' });
    assert.equal(bad.status, 400);
    assert.doesNotMatch(bad.body, /<script>/);
    // No token, a wrong token, another site: nothing changes.
    assert.equal((await w.alice.post('/lists/add', { action: 'block', value: 'a.example' })).status, 403);
    assert.equal((await w.alice.post('/lists/add', { csrf: 'x'.repeat(43), action: 'block', value: 'a.example' })).status, 403);
    assert.equal((await w.alice.post('/lists/add', { csrf, action: 'block', value: 'a.example' }, { 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal(entries(w.s, '--user', 'alice@example.com').length, 2);
    // Remove one.
    const id = idOf(w.s, 'evil.example', '--user', 'alice@example.com');
    const del = await w.alice.post(`/lists/${id}/delete`, { csrf });
    assert.equal(del.status, 303);
    assert.deepEqual(entries(w.s, '--user', 'alice@example.com'), ['allow | friend@partner.example | default policy | ']);
    const audit = w.s.command(['quarantine', 'audit']).stdout.split('\n').filter((l) => /\tlist-/.test(l)).map((l) => l.split('\t').slice(1).join(' '));
    assert.deepEqual(audit, [
      'alice@example.com 203.0.113.10 list-add - user alice@example.com: block domain evil.example',
      'alice@example.com 203.0.113.10 list-add - user alice@example.com: allow address friend@partner.example (skips the default policy)',
      'alice@example.com 203.0.113.10 list-del - user alice@example.com: block domain evil.example',
    ]);
  });

  test('a user keeps at most 1000 entries in their list from the console; replacing one is still fine', async () => {
    const w = await world();
    const lines = Array.from({ length: 1000 }, (_, i) => `user\talice@example.com\tblock\ts${i}@flood.example\t-\t`).join('\n');
    const imp = w.s.command(['lists', 'import', '--format', 'nqqueue', '-'], `${lines}\n`);
    assert.equal(imp.code, 0, imp.stderr);
    const csrf = csrfOf((await w.alice.get('/lists')).body);
    const more = await w.alice.post('/lists/add', { csrf, action: 'block', value: 'one-more@flood.example' });
    assert.equal(more.status, 400);
    assert.match(more.body, /Your list has 1000 entries, as many as it can: remove some first\. Nothing was changed\./);
    assert.equal((await w.alice.post(`/item/${w.aliceIds[0]}/list`, { csrf, action: 'block' })).status, 400);
    assert.equal((await w.alice.post('/lists/add', { csrf, action: 'allow', value: 's7@flood.example' })).status, 303);
    assert.equal(entries(w.s, '--user', 'alice@example.com').length, 1000);
  });

  test("no user can see or touch another's list: Bob's entry is a 404 for Alice, and stays", async () => {
    const w = await world();
    const bcsrf = csrfOf((await w.bob.get('/lists')).body);
    assert.equal((await w.bob.post('/lists/add', { csrf: bcsrf, action: 'allow', value: 'mum@family.example' })).status, 303);
    const bobEntry = idOf(w.s, 'mum@family.example', '--user', 'bob@example.com');
    const acsrf = csrfOf((await w.alice.get('/lists')).body);
    const del = await w.alice.post(`/lists/${bobEntry}/delete`, { csrf: acsrf });
    assert.equal(del.status, 404);
    assert.deepEqual(entries(w.s, '--user', 'bob@example.com'), ['allow | mum@family.example | default policy | ']);
    // Alice's page never shows Bob's list, whatever the query says.
    const peek = await w.alice.get('/lists?scope=user&owner=bob%40example.com');
    assert.equal(peek.status, 200);
    assert.doesNotMatch(peek.body, /mum@family\.example/);
    // Nor can she list the sender of Bob's held message into anyone's list.
    const other = await w.alice.post(`/item/${w.bobIds[0]}/list`, { csrf: acsrf, action: 'block' });
    assert.equal(other.status, 404);
    assert.deepEqual(entries(w.s, '--user', 'alice@example.com'), []);
    assert.deepEqual(entries(w.s, '--user', 'bob@example.com'), ['allow | mum@family.example | default policy | ']);
  });

  test("'Block this sender' on a held item lists its sender in the recipient's own list, and the next message from it is refused; 'Allow' replaces it", async () => {
    const w = await world();
    const id = w.aliceIds[0]!;
    const item = await w.alice.get(`/item/${id}`);
    assert.equal(item.status, 200);
    assert.match(item.body, new RegExp(`<form method="post" action="/item/${id}/list">.*name="action" value="block"><button type="submit" class="danger">Block this sender</button>`));
    assert.match(item.body, /Allow this sender/);
    const csrf = csrfOf(item.body);
    const r = await w.alice.post(`/item/${id}/list`, { csrf, action: 'block' });
    assert.equal(r.status, 200);
    assert.match(r.body, /&lt;spammer@bad\.example&gt; is now blocked in your list/);
    assert.deepEqual(entries(w.s, '--user', 'alice@example.com'), [`block | spammer@bad.example | - | from held message ${id}`]);
    w.s.write('nqqueue.cfb', ':lists;flagger;quarantine=all\n');
    const next = await w.s.run({ from: 'spammer@bad.example', to: ['alice@example.com'], message: 'Subject: again\n\nBuy.\n' });
    assert.equal(next.code, 82, next.stderr);
    assert.match(next.errorText.toString(), /^Dmail from this sender is refused by a block list/);
    // Bob is not Alice: the same sender reaches his quarantine as before.
    const bobs = await w.s.run({ from: 'spammer@bad.example', to: ['bob@example.com'], message: 'Subject: again\n\nBuy.\n' });
    assert.equal(bobs.code, 0, bobs.stderr);
    const allow = await w.alice.post(`/item/${id}/list`, { csrf, action: 'allow' });
    assert.equal(allow.status, 200);
    assert.match(allow.body, /is now allowed in your list\. Mail from this sender is no longer checked for spam \(it is always checked for viruses\)\./);
    assert.deepEqual(entries(w.s, '--user', 'alice@example.com'), [`allow | spammer@bad.example | default policy | from held message ${id}`]);
    // The administrator's button lists it in the recipient's list, not the administrator's.
    const acsrf = csrfOf((await w.admin.get(`/item/${w.bobIds[0]}`)).body);
    assert.equal((await w.admin.post(`/item/${w.bobIds[0]}/list`, { csrf: acsrf, action: 'allow' })).status, 200);
    assert.deepEqual(entries(w.s, '--user', 'bob@example.com'), [`allow | friend@other.example | default policy | from held message ${w.bobIds[0]}`]);
    assert.deepEqual(entries(w.s, '--user', 'admin@example.com'), []);
  });

  test("a held message whose spam check an allow skipped says so on its why page: spamd was not asked (it is not even there)", async () => {
    const w = await world();
    // An address nothing listens on: were spamassassin asked, the message would be deferred.
    w.s.write('nqqueue.conf', `${readConf(w.s)}\n[spamassassin]\nhost = 127.0.0.1:1\nconnect_timeout = 1s\n`);
    w.s.write('nqqueue.cfb', ':lists;spamassassin;flagger;quarantine=all\n');
    const csrf = csrfOf((await w.alice.get('/lists')).body);
    assert.equal((await w.alice.post('/lists/add', { csrf, action: 'allow', value: 'news@shop.example' })).status, 303);
    const ids = await hold(w.s, { to: ['alice@example.com'], subject: 'Newsletter', from: 'news@shop.example' });
    assert.equal(ids.length, 1);
    const why = await w.alice.get(`/item/${ids[0]}/why`);
    assert.equal(why.status, 200);
    assert.match(why.body, /SpamAssassin did not check it: the sender is allowed by user alice@example\.com: allow address news@shop\.example/);
    assert.match(why.body, /The sender \(news@shop\.example\) is allowed by your list/);
  });

  test('an administrator chooses any list, networks and policies included, and removes any entry', async () => {
    const w = await world();
    const page = await w.admin.get('/lists?scope=global');
    assert.equal(page.status, 200);
    assert.match(page.body, /The global list \(every recipient\)/);
    const csrf = csrfOf(page.body);
    const add = await w.admin.post('/lists/add', { csrf, scope: 'domain', owner: 'example.com', action: 'allow', value: '.partner.example', skip: 'spamassassin,rspamd' });
    assert.equal(add.status, 303);
    assert.equal(add.headers.location, '/lists?scope=domain&owner=example.com');
    assert.equal((await w.admin.post('/lists/add', { csrf, scope: 'global', action: 'block', value: '2001:db8::/32' })).status, 303);
    const clam = await w.admin.post('/lists/add', { csrf, scope: 'global', action: 'allow', value: 'x@y.example', skip: 'clamav' });
    assert.equal(clam.status, 400);
    assert.match(clam.body, /clamav is never skipped/);
    assert.deepEqual(entries(w.s, '--domain', 'example.com'), ['allow | .partner.example | skips spamassassin,rspamd | ']);
    assert.deepEqual(entries(w.s, '--global'), ['block | 2001:db8::/32 | - | ']);
    const domainPage = await w.admin.get('/lists?scope=domain&owner=example.com');
    assert.match(domainPage.body, /The list of example\.com \(every recipient in it\)/);
    assert.match(domainPage.body, /skips spamassassin, rspamd/);
    // Any user's entry.
    const acsrf = csrfOf((await w.alice.get('/lists')).body);
    await w.alice.post('/lists/add', { csrf: acsrf, action: 'block', value: 'x.example' });
    const id = idOf(w.s, 'x.example', '--user', 'alice@example.com');
    const del = await w.admin.post(`/lists/${id}/delete`, { csrf });
    assert.equal(del.status, 303);
    assert.equal(del.headers.location, '/lists?scope=user&owner=alice%40example.com');
    assert.deepEqual(entries(w.s, '--user', 'alice@example.com'), []);
  });
});
