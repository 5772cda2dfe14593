// A digest's links in the console they point to: the mail `nqqueue digest` sends, read as its
// recipient would, and each link followed against `bin/nqqueue web`. Opening never acts (a scanner
// fetching every link releases nothing); the release button delivers to that recipient only, once;
// the delete link deletes; the view link shows and does nothing; a link changed by one character or
// opened after link_ttl is refused.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { makeInjectStandIn, type InjectStandIn } from '../helpers/inject.js';
import { readMail } from '../helpers/mail.js';
import { setupsForThisFile } from '../helpers/nqq.js';
import { hold, installConsole, startWeb } from '../helpers/web.js';
import { setTimeout as delay } from 'node:timers/promises';

const make = setupsForThisFile();
const LIMIT = { timeout: 180_000 };
const injects: InjectStandIn[] = [];
after(() => injects.forEach((i) => i.cleanup()));

function linksOf(message: Buffer): Map<string, { release: string; delete: string; view: string }> {
  const text = readMail(message).parts.find((p) => p.type === 'text/plain')!.text;
  const out = new Map<string, { release: string; delete: string; view: string }>();
  // One block per item: its Subject line, then the three links.
  for (const m of text.matchAll(/^ {3}Subject: (.*)\n {3}Why: .*\n {3}Release: <https:\/\/quarantine\.example\.com(\/link\/\S+)>\n {3}Delete: +<https:\/\/quarantine\.example\.com(\/link\/\S+)>\n {3}View: +<https:\/\/quarantine\.example\.com(\/link\/\S+)>$/gm)) {
    out.set(m[1]!, { release: m[2]!, delete: m[3]!, view: m[4]! });
  }
  return out;
}

test('the links of a mailed digest in the console: open does nothing, confirm acts once, changed or expired links are refused', LIMIT, async () => {
  const s = make();
  const inject = makeInjectStandIn();
  injects.push(inject);
  installConsole(s, {
    tcp: true,
    web: { url: 'https://quarantine.example.com/' },
    global: `deadline = 2s\n[digest]\nqmail_inject = ${inject.path}\nlink_ttl = 20s\n`,
  });
  await hold(s, { to: ['alice@example.com'], subject: 'keep me' });
  await hold(s, { to: ['alice@example.com'], subject: 'bin me' });
  await hold(s, { to: ['alice@example.com'], subject: 'just look' });
  await hold(s, { to: ['bob@example.com'], subject: 'for bob' });
  await delay(2300);
  const r = s.command(['digest']);
  assert.equal(r.code, 0, r.stderr);
  const mails = new Map(inject.queued().map((c) => [c.recipients![0]!, Buffer.from(c.message, 'base64')]));
  assert.deepEqual([...mails.keys()].sort(), ['alice@example.com', 'bob@example.com']);
  const alice = linksOf(mails.get('alice@example.com')!);
  assert.deepEqual([...alice.keys()].sort(), ['bin me', 'just look', 'keep me']);
  const bobs = linksOf(mails.get('bob@example.com')!).get('for bob')!;

  const web = await startWeb(s);
  try {
    // A link scanner fetches every link of the mail: nothing happens.
    for (const l of [...alice.values(), bobs]) for (const path of [l.release, l.delete, l.view]) assert.equal((await web.request('GET', path)).status, 200, path);
    assert.equal(s.standIn.calls().length, 0, 'opening released nothing');

    const keep = alice.get('keep me')!;
    const page = await web.request('GET', keep.release);
    assert.match(page.body, /keep me/);
    assert.equal((await web.request('POST', keep.release, { body: '' })).status, 200);
    const d = s.standIn.deliveries();
    assert.equal(d.length, 1);
    assert.deepEqual(d[0]!.recipients.map(String), ['alice@example.com'], 'to its recipient only');
    assert.match(d[0]!.message.toString(), /Subject: keep me/);
    assert.equal((await web.request('POST', keep.release, { body: '' })).status, 410, 'once');
    assert.equal((await web.request('POST', keep.delete, { body: '' })).status, 410, 'released already');

    const bin = alice.get('bin me')!;
    // One character changed: refused, whichever.
    const i = bin.delete.length - 5;
    const changed = bin.delete.slice(0, i) + (bin.delete[i] === 'A' ? 'B' : 'A') + bin.delete.slice(i + 1);
    assert.equal((await web.request('POST', changed, { body: '' })).status, 400);
    assert.equal((await web.request('POST', bin.delete, { body: '' })).status, 200);
    const list = s.command(['quarantine', 'list']);
    assert.doesNotMatch(list.stdout, /bin me/);

    const look = alice.get('just look')!;
    assert.equal((await web.request('POST', look.view, { body: '' })).status, 400, 'a view link does nothing');
    assert.equal(s.standIn.calls().length, 1);

    // After [digest] link_ttl (20 s here): refused.
    const expires = JSON.parse(Buffer.from(bobs.release.split('/').pop()!.split('.')[0]!, 'base64url').toString())[3] as number;
    await delay(Math.max(0, expires - Date.now()) + 200);
    assert.equal((await web.request('GET', bobs.release)).status, 410);
    assert.equal((await web.request('POST', bobs.release, { body: '' })).status, 410);
    assert.equal(s.standIn.calls().length, 1, 'nothing more delivered');
  } finally {
    await web.stop();
  }
});
