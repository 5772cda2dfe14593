// The console's item pages over real HTTP against `bin/nqqueue web`: a user sees and acts on their own
// held mail only (another user's item is a 404 like one that does not exist), every change needs the
// session's CSRF token, GET never changes anything, two releases at once are one qmail-queue call,
// every release and delete is in the audit log with who and from where, text from the message is
// escaped; administrators search everything, act on many items at once and see the routing lines.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { auditOf, Browser, hold, installConsole, startWeb, type WebServer } from '../helpers/web.js';

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

async function world(o: Parameters<typeof installConsole>[1] = {}): Promise<World> {
  const s = make();
  installConsole(s, { ...o, web: { trust_proxy: 'yes', ...(o.web ?? {}) } });
  const aliceIds = [
    ...(await hold(s, { to: ['alice@example.com'], subject: 'Cheap watches for Alice', from: 'spammer@bad.example' })),
    ...(await hold(s, { to: ['alice@example.com'], subject: 'Invoice 4711', from: 'billing@shop.example' })),
  ];
  const bobIds = await hold(s, { to: ['bob@example.com'], subject: 'Secret for Bob only', from: 'friend@other.example' });
  const web = await startWeb(s);
  const browser = async (login: string, password: string, ip: string) => {
    const b = new Browser(web, { 'x-forwarded-for': ip });
    const a = await b.login(login, password);
    assert.equal(a.status, 303, a.body);
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

function status(s: Setup, id: string): string {
  const r = s.command(['quarantine', 'list', '--status', 'all', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { items: { id: string; status: string }[] }).items.find((i) => i.id === id)?.status ?? 'absent';
}

describe('nqqueue web: a user\'s own items', LIMIT, () => {
  test('the list shows the user\'s own held items (date, sender, subject, why), and search narrows it', async () => {
    const w = await world();
    assert.equal(w.aliceIds.length, 2);
    const list = await w.alice.get('/');
    assert.equal(list.status, 200);
    assert.match(list.body, /Cheap watches for Alice/);
    assert.match(list.body, /Invoice 4711/);
    assert.match(list.body, /&lt;spammer@bad\.example&gt;/);
    assert.match(list.body, /\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    assert.match(list.body, /flagger \(flagger\) found something, score 12\.3/);
    assert.doesNotMatch(list.body, /Secret for Bob/);
    assert.doesNotMatch(list.body, /name="id"/, 'no bulk selection for users');
    const found = await w.alice.get('/?q=invoice');
    assert.match(found.body, /Invoice 4711/);
    assert.doesNotMatch(found.body, /Cheap watches/);
    // A user's search cannot widen itself to other recipients.
    const widened = await w.alice.get('/?recipient=bob&status=all&q=secret');
    assert.doesNotMatch(widened.body, /Secret for Bob/);
    await w.web.stop();
  });

  test('another user\'s item is 404, exactly like an id that does not exist, for GET and POST; nothing is released', async () => {
    const w = await world();
    const bobs = w.bobIds[0]!;
    const csrf = await w.alice.csrf();
    const theirs = await w.alice.get(`/item/${bobs}`);
    const none = await w.alice.get(`/item/${'0'.repeat(24)}`);
    assert.equal(theirs.status, 404);
    assert.equal(none.status, 404);
    assert.equal(theirs.body, none.body);
    assert.equal((await w.alice.get(`/item/${bobs}/why`)).status, 404);
    assert.equal((await w.alice.get('/item/..%2f..%2fetc')).status, 404);
    for (const action of ['release', 'delete']) {
      const a = await w.alice.post(`/item/${bobs}/${action}`, { csrf });
      assert.equal(a.status, 404);
      assert.equal(a.body, (await w.alice.post(`/item/${'0'.repeat(24)}/${action}`, { csrf })).body);
    }
    assert.equal(w.s.standIn.calls().length, 0);
    assert.equal(status(w.s, bobs), 'held');
    // Bob sees his own.
    const own = await w.bob.get(`/item/${bobs}`);
    assert.equal(own.status, 200);
    assert.match(own.body, /Secret for Bob only/);
    await w.web.stop();
  });

  test('release and delete need the session\'s CSRF token; GET never acts', async () => {
    const w = await world();
    const id = w.aliceIds[0]!;
    const none = await w.alice.post(`/item/${id}/release`, {});
    assert.equal(none.status, 403);
    const wrong = await w.alice.post(`/item/${id}/release`, { csrf: await w.bob.csrf() });
    assert.equal(wrong.status, 403);
    const anonymous = await new Browser(w.web).post(`/item/${id}/delete`, { csrf: await w.alice.csrf() });
    assert.equal(anonymous.status, 403);
    for (const path of [`/item/${id}/release`, `/item/${id}/delete`]) assert.equal((await w.alice.get(path)).status, 404, path);
    assert.equal((await w.alice.get(`/item/${id}?action=release&csrf=${await w.alice.csrf()}`)).status, 200);
    const head = await w.web.request('HEAD', `/item/${id}`, { headers: { cookie: `nqq_session=${w.alice.cookies.get('nqq_session')}` } });
    assert.equal(head.status, 200);
    assert.equal(w.s.standIn.calls().length, 0);
    assert.equal(status(w.s, id), 'held');
    await w.web.stop();
  });

  test('release: one qmail-queue call for that recipient only, audited with who, when and the client address', async () => {
    const w = await world();
    const id = w.aliceIds[0]!;
    const page = await w.alice.get(`/item/${id}`);
    assert.equal(page.status, 200);
    assert.match(page.body, /action="\/item\/[0-9a-z]+\/release"/);
    const a = await w.alice.post(`/item/${id}/release`, { csrf: await w.alice.csrf() });
    assert.equal(a.status, 200, a.body);
    assert.match(a.body, /handed to the mail system for delivery to &lt;alice@example\.com&gt;/);
    const d = w.s.standIn.deliveries();
    assert.equal(d.length, 1);
    assert.deepEqual(d[0]!.recipients.map(String), ['alice@example.com']);
    assert.equal(d[0]!.sender.toString(), 'spammer@bad.example');
    assert.match(d[0]!.message.toString(), /Subject: Cheap watches for Alice/);
    assert.equal(status(w.s, id), 'released');
    const entries = auditOf(w.s, id).filter((e) => e[3] === 'release');
    assert.equal(entries.length, 1);
    const [at, who, from] = entries[0]!;
    assert.equal(who, 'alice@example.com');
    assert.equal(from, '203.0.113.10');
    assert.ok(Math.abs(Date.parse(at!) - Date.now()) < 60_000, at);
    // Again: already done, nothing more queued.
    const again = await w.alice.post(`/item/${id}/release`, { csrf: await w.alice.csrf() });
    assert.equal(again.status, 409);
    assert.equal(w.s.standIn.calls().length, 1);
    assert.doesNotMatch((await w.alice.get('/')).body, /Cheap watches/);
    await w.web.stop();
  });

  test('delete: the item is gone from the list and its bytes from the disk; audited', async () => {
    const w = await world();
    const id = w.aliceIds[1]!;
    const a = await w.alice.post(`/item/${id}/delete`, { csrf: await w.alice.csrf() });
    assert.equal(a.status, 200, a.body);
    assert.equal(status(w.s, id), 'deleted');
    assert.equal(w.s.standIn.calls().length, 0);
    assert.doesNotMatch((await w.alice.get('/')).body, /Invoice 4711/);
    const e = auditOf(w.s, id).filter((x) => x[3] === 'delete');
    assert.deepEqual(e.map((x) => [x[1], x[2]]), [['alice@example.com', '203.0.113.10']]);
    await w.web.stop();
  });

  test('two release POSTs of one item at the same moment: exactly one qmail-queue call', async () => {
    const w = await world();
    const id = w.aliceIds[0]!;
    const [ca, cadm] = [await w.alice.csrf(), await w.admin.csrf()];
    const answers = await Promise.all([
      w.alice.post(`/item/${id}/release`, { csrf: ca }),
      w.admin.post(`/item/${id}/release`, { csrf: cadm }),
      w.alice.post(`/item/${id}/release`, { csrf: ca }),
    ]);
    const codes = answers.map((a) => a.status).sort();
    assert.deepEqual(codes, [200, 409, 409], answers.map((a) => a.body).join('\n'));
    // And while the one qmail-queue call is still running (it takes 1.5 s): the others are refused at once.
    const other = w.aliceIds[1]!;
    w.s.standIn.setOptions({ slowOn: [{ call: 2, ms: 1500 }] });
    const first = w.alice.post(`/item/${other}/release`, { csrf: ca });
    await new Promise((r) => setTimeout(r, 400));
    const t = Date.now();
    const during = await Promise.all([w.admin.post(`/item/${other}/release`, { csrf: cadm }), w.alice.post(`/item/${other}/delete`, { csrf: ca })]);
    assert.ok(Date.now() - t < 1000, `answered while the release ran: ${Date.now() - t} ms`);
    assert.deepEqual(during.map((a) => a.status), [409, 409]);
    assert.match(during[0]!.body, /already taken/);
    assert.equal((await first).status, 200);
    assert.equal(w.s.standIn.calls().length, 2);
    assert.equal(status(w.s, other), 'released');
    assert.equal(w.s.standIn.deliveries().filter((d) => d.message.includes('Cheap watches')).length, 1);
    assert.equal(auditOf(w.s, id).filter((e) => e[3] === 'release').length, 1);
    await w.web.stop();
  });

  test('what comes from the message is escaped: hostile subject, sender and body', async () => {
    const s = make();
    installConsole(s);
    const [id] = await hold(s, {
      to: ['alice@example.com'],
      from: 'x"><img src=x onerror=alert(1)>@evil.example',
      subject: '<script>alert(1)</script> \u202Egnp.exe',
      body: '<b onmouseover="alert(2)">hi</b>\n\u001b[2J</pre><script>alert(3)</script>\n',
    });
    const web = await startWeb(s);
    const b = new Browser(web);
    assert.equal((await b.login('alice@example.com', 'alice-secret')).status, 303);
    for (const path of ['/', `/item/${id}`, `/item/${id}/why`]) {
      const p = await b.get(path);
      assert.equal(p.status, 200, path);
      assert.doesNotMatch(p.body, /<script|<img|<b onmouseover|\u202E|\u001b/i, path);
      assert.match(p.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, path);
      assert.match(p.body, /gnp\.exe/, `${path}: the text after the bidi override is kept (the override itself removed or shown as an escape, never obeyed)`);
    }
    const item = await b.get(`/item/${id}`);
    assert.match(item.body, /&lt;b onmouseover=&quot;alert\(2\)&quot;&gt;hi&lt;\/b&gt;/);
    assert.match(item.body, /\[2J&lt;\/pre&gt;&lt;script&gt;alert\(3\)&lt;\/script&gt;/);
    await web.stop();
  });

  test('the item page shows the message and why it is held; the why page every check, without the routing for a user', async () => {
    const w = await world();
    const id = w.aliceIds[1]!;
    const item = await w.alice.get(`/item/${id}`);
    assert.match(item.body, /<dt>Subject<\/dt><dd>Invoice 4711<\/dd>[^]*<pre class="message">Hello\.\n<\/pre>/);
    assert.match(item.body, /this is why it is held/);
    assert.equal(item.headers['x-frame-options'], 'DENY');
    // The preview frame's document may be framed by the console itself, and by nothing else.
    const frame = await w.alice.get(`/item/${id}/preview`);
    assert.equal(frame.status, 200);
    assert.equal(frame.headers['x-frame-options'], 'SAMEORIGIN');
    assert.match(String(frame.headers['content-security-policy']), /frame-ancestors 'self'/);
    const why = await w.alice.get(`/item/${id}/why`);
    assert.equal(why.status, 200);
    assert.match(why.body, /found something, score 12\.3/);
    assert.doesNotMatch(why.body, /nqqueue\.cfb/, 'routing lines are for administrators');
    await w.web.stop();
  });

  test('the why page names each check for a user, without its parameters (backend addresses, limits); an administrator sees them', async () => {
    const w = await world();
    w.s.write('nqqueue.cfb', ':flagger=timeout=7s,maxsize=9M;quarantine=all\n');
    const [id] = await hold(w.s, { to: ['alice@example.com'], subject: 'With parameters', from: 'sender@client.example' });
    assert.ok(id);
    const user = (await w.alice.get(`/item/${id}/why`)).body;
    assert.match(user, /<td>flagger<\/td>/);
    assert.doesNotMatch(user, /timeout=7s|maxsize=9M/);
    const admin = (await w.admin.get(`/item/${id}/why`)).body;
    assert.match(admin, /flagger<span class="muted">=timeout=7s,maxsize=9M<\/span>/);
    // Long paths and recorded details wrap in the table rather than widen the page.
    assert.match(admin, /<table class="checks">/);
    assert.match((await w.admin.get('/style.css')).body, /table\.checks td \{ overflow-wrap: anywhere; \}/);
    await w.web.stop();
  });

  test('preferences: digest cadence and language are kept in the store; a value not offered is refused', async () => {
    const w = await world();
    const page = await w.alice.get('/preferences');
    assert.equal(page.status, 200);
    assert.match(page.body, /value="daily" checked/);
    const csrf = await w.alice.csrf();
    const bad = await w.alice.post('/preferences', { csrf, digest: 'weekly', language: 'en' });
    assert.equal(bad.status, 400);
    const forged = await w.alice.post('/preferences', { digest: 'never', language: 'de' });
    assert.equal(forged.status, 403);
    const ok = await w.alice.post('/preferences', { csrf, digest: 'hourly', language: 'de' });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /value="hourly" checked/);
    assert.match(ok.body, /value="de" selected/);
    // In the store: a new process (the command line's) reads it back.
    const { openStore } = await import('../../src/store/open.js');
    const { readSettings, pathsFrom } = await import('../../src/queue/services.js');
    const paths = pathsFrom({ NQQUEUE_HOME: w.s.home, NQQUEUE_CONTROLDIR: w.s.control });
    const store = await openStore(paths.home, readSettings(paths));
    try {
      assert.deepEqual(await store.getPreferences('alice@example.com'), { digest: 'hourly', language: 'de' });
      assert.deepEqual(await store.getPreferences('bob@example.com'), { language: 'en' }, 'bob chose nothing');
    } finally {
      await store.close();
    }
    // Bob's page is his own.
    assert.match((await w.bob.get('/preferences')).body, /value="daily" checked/);
    await w.web.stop();
  });

  test("preferences: a user who has not chosen sees the site's [digest] cadence, and that it is the default", async () => {
    const w = await world({ sections: '[digest]\ncadence = hourly\n' });
    const page = await w.alice.get('/preferences');
    assert.match(page.body, /value="hourly" checked/);
    assert.doesNotMatch(page.body, /value="daily" checked/);
    assert.match(page.body, /You have not chosen yet: this is the site's default/);
    const ok = await w.alice.post('/preferences', { csrf: await w.alice.csrf(), digest: 'daily', language: 'en' });
    assert.match(ok.body, /value="daily" checked/);
    assert.doesNotMatch(ok.body, /You have not chosen yet/);
    await w.web.stop();
  });
});

describe('nqqueue web: administrators', LIMIT, () => {
  test('an administrator sees everything and searches by recipient, sender, domain, date and what caught it', async () => {
    const w = await world();
    const all = await w.admin.get('/');
    assert.match(all.body, /Cheap watches/);
    assert.match(all.body, /Secret for Bob only/);
    assert.match(all.body, /3 items/);
    assert.match((await w.admin.get('/?recipient=bob')).body, /1 item\./);
    assert.match((await w.admin.get('/?sender=billing')).body, /Invoice 4711/);
    assert.doesNotMatch((await w.admin.get('/?sender=billing')).body, /Cheap watches/);
    assert.match((await w.admin.get('/?domain=example.com')).body, /3 items/);
    assert.match((await w.admin.get('/?domain=other.example')).body, /Nothing found/);
    assert.match((await w.admin.get('/?plugin=flagger')).body, /3 items/);
    assert.match((await w.admin.get('/?plugin=clamav')).body, /Nothing found/);
    const today = new Date().toISOString().slice(0, 10);
    assert.match((await w.admin.get(`/?since=${today}&before=${today}`)).body, /3 items/);
    assert.match((await w.admin.get('/?before=2000-01-01')).body, /Nothing found/);
    // Bob's item, and the routing line behind each verdict.
    const why = await w.admin.get(`/item/${w.bobIds[0]}/why`);
    assert.equal(why.status, 200);
    assert.match(why.body, /nqqueue\.cfb:1/);
    await w.web.stop();
  });

  test('bulk release and delete (administrators only, with CSRF): each item once, audited as the administrator', async () => {
    const w = await world();
    const [a1, a2] = w.aliceIds as [string, string];
    const b1 = w.bobIds[0]!;
    const userTry = await w.alice.post('/bulk', { csrf: await w.alice.csrf(), action: 'delete', id: [a1, b1] });
    assert.equal(userTry.status, 404);
    const noToken = await w.admin.post('/bulk', { action: 'delete', id: [a1, b1] });
    assert.equal(noToken.status, 403);
    assert.equal(status(w.s, a1), 'held');
    const csrf = await w.admin.csrf();
    const rel = await w.admin.post('/bulk', { csrf, action: 'release', id: [a1, b1, a1] });
    assert.equal(rel.status, 200, rel.body);
    assert.match(rel.body, /Released: 2 of 2/);
    const d = w.s.standIn.deliveries();
    assert.equal(d.length, 2);
    assert.deepEqual(d.map((x) => x.recipients.map(String)).flat().sort(), ['alice@example.com', 'bob@example.com']);
    assert.deepEqual(auditOf(w.s, b1).filter((e) => e[3] === 'release').map((e) => [e[1], e[2]]), [['admin@example.com', '203.0.113.30']]);
    const del = await w.admin.post('/bulk', { csrf, action: 'delete', id: [a1, a2] });
    assert.match(del.body, /Deleted: 1 of 2/);
    assert.equal(status(w.s, a2), 'deleted');
    assert.equal(status(w.s, a1), 'released');
    await w.web.stop();
  });
});
