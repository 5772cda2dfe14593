// `nqqueue digest` run as a separate process, as cron would: who gets a digest and when, what it
// holds (links that readLink accepts, bound to that item, owner and action), that a digest is never
// mailed twice for the same items nor recorded before qmail-inject took it, that hostile subjects and
// senders cannot add a header or markup, and the schedule in `nqqueue serve`. qmail-inject is the
// stand-in (test/helpers/qmail-inject-stand-in.ts); the mail is read strictly (test/helpers/mail.ts).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, test } from 'node:test';

import { loadSettings } from '../../src/config/settings.js';
import { readLink, signingKey, type LinkAction } from '../../src/links/links.js';
import { openStore } from '../../src/store/open.js';
import type { NewQuarantineItem, Store } from '../../src/store/types.js';
import { makeInjectStandIn, type InjectCall, type InjectStandIn } from '../helpers/inject.js';
import { readMail, type ReadMail } from '../helpers/mail.js';
import { pluginDir, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 180_000 };
const URL_BASE = 'https://quarantine.example.com/';
const HOUR = 3_600_000;
const DEADLINE_MS = 3000;

const injects: InjectStandIn[] = [];
after(() => injects.forEach((i) => i.cleanup()));

const FLAGGER =
  "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', flagged: true, score: 12.5, details: { result: 'flagged by test' } }; } };\n";

interface Site {
  readonly s: Setup;
  readonly inject: InjectStandIn;
}

function site(o: { url?: boolean; cadence?: string; deadline?: string } = {}): Site {
  const s = make();
  const inject = makeInjectStandIn();
  injects.push(inject);
  const dir = pluginDir(s, { flagger: FLAGGER });
  s.write('nqqueue.cfb', ':flagger;quarantine=all\n');
  s.write(
    'nqqueue.conf',
    `plugin_dir = ${dir}\nhostname = mx.example.com\ndeadline = ${o.deadline ?? `${DEADLINE_MS / 1000}s`}\n` +
      `[digest]\nqmail_inject = ${inject.path}\nfrom = quarantine@example.com\n${o.cadence ? `cadence = ${o.cadence}\n` : ''}` +
      (o.url === false ? '' : `[web]\nurl = ${URL_BASE}\n`),
  );
  return { s, inject };
}

/** A message for `to` through bin/nqqueue in queue mode: quarantined by the flagger. */
async function hold(s: Setup, to: string, subject: string, from = 'sender@client.example'): Promise<void> {
  const message = `Received: from client.example (HELO c) (192.0.2.7)\n  by mx.example.com with SMTP; 26 Nov 2026 10:00:00 -0000\nFrom: <${from}>\nTo: <${to}>\nSubject: ${subject}\nMessage-ID: <m${Math.random()}@client.example>\n\nHello.\n`;
  const r = await s.run({ from, to: [to], message });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 0, 'held, not delivered');
}

/** Items are listed once older than the message deadline. */
const settle = () => delay(DEADLINE_MS + 300);

/** `nqqueue digest` with an environment that would change what qmail-inject sends if it were passed on. */
function digest(s: Setup, args: string[] = []) {
  return s.command(['digest', ...args], '', { QMAILINJECT: 'cfisrm', QMAILQUEUE: '/nonexistent/qmail-queue', QMAILMFTFILE: '/etc/passwd', QMAILUSER: 'mallory', QMAILHOST: 'evil.example' });
}

async function withStore<T>(s: Setup, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(s.home, loadSettings(s.control));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

let seq = 0;
function item(owner: string, over: Partial<NewQuarantineItem> = {}): NewQuarantineItem {
  const id = `${Date.now().toString(36)}${(seq++).toString(16).padStart(4, '0')}abcdef0123`;
  return {
    id,
    date: new Date(Date.now() - HOUR).toISOString(),
    messageId: `m${id}`,
    host: 'mx.example.com',
    size: 100,
    sender: { text: 'sender@client.example', base64: Buffer.from('sender@client.example').toString('base64') },
    recipient: { text: owner, base64: Buffer.from(owner).toString('base64') },
    owner,
    domain: owner.split('@')[1]!,
    subject: 'seeded',
    results: [{ plugin: 'spamassassin', params: '', stage: 'per-user', verdict: 'accept', flagged: true, score: 9.1, details: {} }],
    caughtBy: ['spamassassin'],
    routing: {},
    ...over,
  };
}

function mailOf(c: InjectCall): ReadMail {
  return readMail(Buffer.from(c.message, 'base64'));
}

const text = (m: ReadMail) => m.parts.find((p) => p.type === 'text/plain')!.text;
const html = (m: ReadMail) => m.parts.find((p) => p.type === 'text/html')!.text;

function tokens(body: string): { action: string; token: string }[] {
  return [...body.matchAll(/^ {3}(Release|Delete|View): +<https:\/\/quarantine\.example\.com\/link\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)>$/gm)].map((m) => ({ action: m[1]!.toLowerCase(), token: m[2]! }));
}

function htmlTokens(body: string): { action: string; token: string }[] {
  return [...body.matchAll(/<a href="https:\/\/quarantine\.example\.com\/link\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)">(Release|Delete|View)<\/a>/g)].map((m) => ({ action: m[2]!.toLowerCase(), token: m[1]! }));
}

describe('nqqueue digest', LIMIT, () => {
  test('two new items: one digest with both and working links; a second run sends nothing; a later item gets a digest of its own', LIMIT, async () => {
    const { s, inject } = site();
    await hold(s, 'alice@example.com', 'first held message');
    await hold(s, 'alice@example.com', 'second held message');
    await settle();
    const before = Date.now();
    const r = digest(s);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /mailed <alice@example\.com> a digest of 2 items/);
    const calls = inject.calls();
    assert.equal(calls.length, 1, 'exactly one digest');
    const c = calls[0]!;
    assert.equal(c.outcome, 'queued');
    assert.deepEqual(c.argv, ['-fquarantine@example.com', '-a', 'alice@example.com'], 'qmail-inject -f<from> -a <owner>, no shell');
    assert.equal(c.sender, 'quarantine@example.com');
    assert.deepEqual(c.recipients, ['alice@example.com']);
    assert.deepEqual(c.env, {}, 'none of QMAILINJECT, QMAILQUEUE, QMAILMFTFILE, QMAILUSER... reaches qmail-inject');

    const m = mailOf(c);
    assert.deepEqual(m.header('From'), ['NQqueue quarantine <quarantine@example.com>']);
    assert.deepEqual(m.header('To'), ['<alice@example.com>']);
    assert.deepEqual(m.header('Subject'), ['2 messages held for you in quarantine']);
    assert.deepEqual(m.header('Auto-Submitted'), ['auto-generated']);
    assert.deepEqual(m.header('Precedence'), ['bulk']);
    assert.deepEqual(m.header('MIME-Version'), ['1.0']);
    assert.match(m.header('Message-ID')[0]!, /^<digest\.[0-9a-z]+\.[0-9a-f]{16}@mx\.example\.com>$/);
    const date = m.header('Date')[0]!;
    assert.match(date, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    assert.ok(Math.abs(Date.parse(date) - before) < 60_000);
    for (const name of ['From', 'To', 'Subject', 'Date', 'Message-ID', 'Content-Type']) assert.equal(m.header(name).length, 1, `one ${name}`);
    assert.deepEqual(
      m.parts.map((p) => [p.type, p.charset]),
      [
        ['text/plain', 'utf-8'],
        ['text/html', 'utf-8'],
      ],
    );
    for (const body of [text(m), html(m)]) {
      assert.match(body, /first held message/);
      assert.match(body, /second held message/);
      assert.match(body, /sender@client\.example/);
      assert.match(body, /flagger \(flagger\) found something, score 12\.5/, "the console's words");
    }
    assert.ok(text(m).indexOf('second held message') < text(m).indexOf('first held message'), 'newest first');
    assert.match(text(m), /^2 messages for alice@example\.com are held in quarantine\. /);

    const ids = await withStore(s, async (store) => (await store.findItems({ owner: 'alice@example.com' })).items.map((i) => i.id));
    assert.equal(ids.length, 2);
    const key = signingKey(s.home);
    for (const list of [tokens(text(m)), htmlTokens(html(m))]) {
      assert.equal(list.length, 6, 'release, delete and view for each item');
      const seen = new Set<string>();
      for (const { action, token } of list) {
        const read = readLink(key, token);
        assert.ok(read.ok, `${action} link reads ok`);
        assert.equal(read.claims.owner, 'alice@example.com');
        assert.equal(read.claims.action, action as LinkAction);
        assert.ok(ids.includes(read.claims.id));
        seen.add(`${read.claims.id}/${action}`);
        const ttl = read.claims.expires - before;
        assert.ok(ttl > 7 * 24 * HOUR - 120_000 && ttl <= 7 * 24 * HOUR + 120_000, `expires in [digest] link_ttl (7d): ${ttl}`);
      }
      assert.equal(seen.size, 6, 'each item has its own link per action');
    }

    // In the audit log: who it went to, how many.
    const audit = s.command(['quarantine', 'audit']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /\tnqqueue digest\tcommand line\tdigest\t[^\n]*mailed alice@example\.com 2 items up to /);

    // At once again: nothing new, nothing sent.
    const again = digest(s);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(inject.calls().length, 1, 'not sent twice');

    // The last digest a day ago (daily is the default): a new item gets a digest with it only.
    await withStore(s, async (store) => {
      const newest = (await store.findItems({ owner: 'alice@example.com', order: 'newest', limit: 1 })).items[0]!;
      await store.markDigestSent('alice@example.com', new Date(Date.now() - 25 * HOUR).toISOString(), newest.date);
    });
    assert.equal(digest(s).code, 0);
    assert.equal(inject.calls().length, 1, 'a day later, but nothing new: nothing sent');
    await hold(s, 'alice@example.com', 'third held message');
    await settle();
    const third = digest(s);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(inject.calls().length, 2);
    const m3 = mailOf(inject.calls()[1]!);
    assert.deepEqual(m3.header('Subject'), ['1 message held for you in quarantine']);
    assert.match(text(m3), /third held message/);
    assert.match(text(m3), /^1 message for alice@example\.com was held in quarantine since your last digest\. /);
    assert.doesNotMatch(text(m3), /first held message|second held message/);
    assert.equal(tokens(text(m3)).length, 3);
  });

  test('an item younger than the message deadline waits for the next run (it may still be in flight)', LIMIT, async () => {
    const { s, inject } = site({ deadline: '240s' });
    await withStore(s, async (store) => {
      await store.addItem(item('young@example.com', { subject: 'ten seconds old', date: new Date(Date.now() - 10_000).toISOString() }));
      await store.addItem(item('young@example.com', { subject: 'five minutes old', date: new Date(Date.now() - 300_000).toISOString() }));
    });
    const r = digest(s);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(inject.queued().length, 1);
    const t = text(mailOf(inject.queued()[0]!));
    assert.match(t, /five minutes old/);
    assert.doesNotMatch(t, /ten seconds old/, 'younger than the 240 s deadline: not yet');
    const left = await withStore(s, (store) => store.digestCandidates());
    assert.deepEqual(left.map((c) => c.owner), ['young@example.com'], 'still new for the next digest');
  });

  test('cadence: never gets none; hourly after an hour, daily after a day; [digest] cadence for those who chose none', LIMIT, async () => {
    const { s, inject } = site({ cadence: 'hourly' });
    const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
    const LONG_AGO = '2000-01-01T00:00:00.000Z';
    const owners: Record<string, { cadence?: 'never' | 'hourly' | 'daily'; last?: string }> = {
      'never@example.com': { cadence: 'never' },
      'hourly-recent@example.com': { cadence: 'hourly', last: ago(30 * 60_000) },
      'hourly-due@example.com': { cadence: 'hourly', last: ago(61 * 60_000) },
      'daily-recent@example.com': { cadence: 'daily', last: ago(23 * HOUR) },
      'daily-due@example.com': { cadence: 'daily', last: ago(25 * HOUR) },
      'daily-two-hours@example.com': { cadence: 'daily', last: ago(2 * HOUR) },
      'default-two-hours@example.com': { last: ago(2 * HOUR) },
      'default-first@example.com': {},
    };
    await withStore(s, async (store) => {
      for (const [owner, o] of Object.entries(owners)) {
        await store.addItem(item(owner, { subject: `for ${owner}` }));
        if (o.cadence) await store.setPreferences(owner, { digest: o.cadence });
        if (o.last) await store.markDigestSent(owner, o.last, LONG_AGO);
      }
    });
    const r = digest(s);
    assert.equal(r.code, 0, r.stderr);
    const to = inject
      .calls()
      .map((c) => c.recipients![0]!)
      .sort();
    assert.deepEqual(to, ['daily-due@example.com', 'default-first@example.com', 'default-two-hours@example.com', 'hourly-due@example.com']);
    // --to: now, whatever the timing; never is still none.
    assert.equal(digest(s, ['--to', 'daily-recent@example.com']).code, 0);
    assert.equal(digest(s, ['--to', 'NEVER@example.com']).code, 0);
    assert.deepEqual(
      inject.calls().slice(4).map((c) => c.recipients),
      [['daily-recent@example.com']],
    );
  });

  test('hostile subjects and senders: escaped in HTML, one line in text, never a header of their own', LIMIT, async () => {
    const { s, inject } = site();
    // Through the real path: an encoded CR LF in the Subject, markup, and markup in the envelope sender
    // (control characters in an envelope address are refused before anything is kept).
    await hold(s, 'victim@example.com', '=?utf-8?q?Hi=0D=0ABcc:_everyone@evil.example=0D=0A=0D=0A<script>alert(1)</script>?=', '<script>x</script>"Bcc:a"@client.example');
    // And what a store might hold, were it less careful than this one.
    await withStore(s, (store) =>
      store.addItem(
        item('victim@example.com', {
          subject: 'raw\r\nBcc: raw@evil.example\r\n\r\n</td><img src=x onerror=alert(2)>\u202eRTL\u0085\u2028next',
          sender: { text: '"x\r\nTo: y@evil.example"<b>@a.example', base64: '' },
          results: [{ plugin: 'exec', params: '', stage: 'per-user', verdict: 'accept', flagged: true, text: 'why <i>\r\nX-Injected: 1', details: {} }],
          caughtBy: ['exec'],
        }),
      ),
    );
    await settle();
    const r = digest(s);
    assert.equal(r.code, 0, r.stderr);
    const [c] = inject.calls();
    assert.ok(c);
    const raw = Buffer.from(c.message, 'base64').toString('latin1');
    assert.doesNotMatch(raw, /\r/, 'no CR anywhere in what qmail-inject is given');
    const m = mailOf(c); // every header line checked to be a well-formed field
    assert.deepEqual(
      m.fields.map((f) => f.name),
      ['From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version', 'Auto-Submitted', 'Precedence', 'X-Auto-Response-Suppress', 'Content-Type'],
      'the header block holds our fields only',
    );
    const t = text(m);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(t, /[\r\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202e]/, 'no control character in the text part');
    assert.match(t, /^ {3}Subject: Hi Bcc: everyone@evil\.example <script>alert\(1\)<\/script>$/m, 'the decoded subject on its own line, flattened');
    assert.match(t, /^ {3}Subject: raw Bcc: raw@evil\.example <\/td><img src=x onerror=alert\(2\)> RTL next$/m);
    assert.doesNotMatch(t, /^(Bcc|To|X-Injected):/m);
    const h = html(m);
    assert.doesNotMatch(h, /<script|<img|<b>|<i>|onerror=alert\(2\)>/i, 'no markup from a message');
    assert.match(h, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(h, /&lt;\/td&gt;&lt;img src=x onerror=alert\(2\)&gt;/);
    assert.match(h, /&quot;x To: y@evil\.example&quot;&lt;b&gt;@a\.example/);
    assert.match(h, /&lt;script&gt;x&lt;\/script&gt;&quot;Bcc:a&quot;@client\.example/);
    const anchors = h.match(/<a [^>]*>/g) ?? [];
    assert.equal(anchors.length, 7, 'three per item and the console');
    for (const a of anchors) assert.match(a, /^<a href="https:\/\/quarantine\.example\.com\/(link\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?">$/, 'only our links');
    // The markup a mail client would parse: our tags only.
    const tags = new Set([...h.matchAll(/<\/?([a-zA-Z]+)/g)].map((x) => x[1]!.toLowerCase()));
    assert.deepEqual([...tags].sort(), ['a', 'body', 'br', 'head', 'html', 'meta', 'p', 'small', 'table', 'td', 'th', 'title', 'tr']);
    assert.equal((h.match(/<tr>/g) ?? []).length, 3, 'a heading row and one row per item');
  });

  test('qmail-inject failing (111, then 100): exit 1, not recorded; the next run mails the same items', LIMIT, async () => {
    const { s, inject } = site();
    await withStore(s, async (store) => {
      await store.addItem(item('a@example.com', { subject: 'for a' }));
      await store.addItem(item('b@example.com', { subject: 'for b' }));
    });
    inject.setOptions({ failOn: [{ call: 1, code: 111 }] });
    const r1 = digest(s);
    assert.equal(r1.code, 1, 'one failed');
    assert.match(r1.stderr, /digest for <a@example\.com> not sent: .*exited 111.*the next run tries again/);
    assert.match(r1.stderr, /mailed <b@example\.com> a digest of 1 item/, 'the others go on');
    assert.deepEqual(
      inject.calls().map((c) => [c.recipients![0], c.outcome]),
      [
        ['a@example.com', 'fail 111'],
        ['b@example.com', 'queued'],
      ],
    );
    inject.setOptions({ failAll: 100 });
    const r2 = digest(s);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /exited 100 \(permanent\)/);
    assert.equal(inject.calls().length, 3, 'b is not mailed again');
    inject.setOptions({});
    const r3 = digest(s);
    assert.equal(r3.code, 0, r3.stderr);
    const last = inject.calls()[3]!;
    assert.deepEqual([last.recipients, last.outcome], [['a@example.com'], 'queued']);
    assert.match(text(mailOf(last)), /for a/);
    assert.equal(digest(s).code, 0);
    assert.equal(inject.calls().length, 4, 'and then never again');
  });

  test('a qmail-inject that cannot be run: exit 1, not recorded', LIMIT, async () => {
    const { s, inject } = site();
    s.write('nqqueue.conf', readFileSync(join(s.control, 'nqqueue.conf'), 'utf8').replace(inject.path, '/nonexistent/qmail-inject'));
    await withStore(s, (store) => store.addItem(item('a@example.com')));
    const r = digest(s);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /digest for <a@example\.com> not sent: cannot run \/nonexistent\/qmail-inject/);
    s.write('nqqueue.conf', readFileSync(join(s.control, 'nqqueue.conf'), 'utf8').replace('/nonexistent/qmail-inject', inject.path));
    assert.equal(digest(s).code, 0);
    assert.equal(inject.queued().length, 1);
  });

  test('a qmail-inject that hangs is killed at queue_timeout: exit 1, not recorded', LIMIT, async () => {
    const { s, inject } = site();
    s.write('nqqueue.conf', `queue_timeout = 1s\n${readFileSync(join(s.control, 'nqqueue.conf'), 'utf8')}`);
    await withStore(s, (store) => store.addItem(item('a@example.com')));
    inject.setOptions({ delayMs: 20_000 });
    const started = Date.now();
    const r = digest(s);
    assert.equal(r.code, 1);
    assert.ok(Date.now() - started < 15_000, 'did not wait for it');
    assert.match(r.stderr, /digest for <a@example\.com> not sent: .*timed out after 1000 ms/);
    assert.equal(inject.queued().length, 0);
    inject.setOptions({});
    assert.equal(digest(s).code, 0);
    assert.equal(inject.queued().length, 1);
  });

  test('--dry-run prints the digests and sends and records nothing', LIMIT, async () => {
    const { s, inject } = site();
    await withStore(s, (store) => store.addItem(item('a@example.com', { subject: 'dry subject' })));
    for (let i = 0; i < 2; i++) {
      const r = digest(s, ['--dry-run']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^# digest for <a@example\.com>: 1 item, not sent \(--dry-run\): qmail-inject -fquarantine@example\.com -a a@example\.com\n/);
      assert.match(r.stdout, /^Subject: 1 message held for you in quarantine$/m);
      assert.match(r.stdout, /dry subject/);
    }
    assert.equal(inject.calls().length, 0);
    assert.equal(digest(s).code, 0);
    assert.equal(inject.queued().length, 1, 'still due after the dry runs');
    // Far more than a pipe holds (a 100-item digest is some 180 KB): every byte reaches it.
    await withStore(s, async (store) => {
      for (let i = 0; i < 120; i++) await store.addItem(item('many@example.com', { subject: `bulk ${i}` }));
    });
    const big = digest(s, ['--dry-run']);
    assert.equal(big.code, 0, big.stderr);
    assert.ok(big.stdout.length > 100_000, `${big.stdout.length} bytes`);
    assert.match(big.stdout, /\n--=_nqqueue_[0-9a-f]{24}--\n\n$/, 'ends with the closing delimiter');
    assert.match(big.stdout, /^Subject: 120 messages held for you in quarantine$/m);
    assert.match(big.stdout, /and 20 more messages, not listed here/);
  });

  test('without [web] url: no links, the digest says where to go instead, and the command warns once', LIMIT, async () => {
    const { s, inject } = site({ url: false });
    await withStore(s, async (store) => {
      await store.addItem(item('a@example.com', { subject: 'one' }));
      await store.addItem(item('b@example.com', { subject: 'two' }));
    });
    const r = digest(s);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stderr.match(/warning: \[web\] url is not set/g) ?? []).length, 1);
    assert.equal(inject.queued().length, 2);
    for (const c of inject.queued()) {
      const m = mailOf(c);
      for (const body of [text(m), html(m)]) {
        assert.doesNotMatch(body, /https?:\/\/|\/link\//);
        assert.match(body, /nqqueue quarantine release/);
        assert.match(body, /quarantine@example\.com/);
      }
      assert.match(text(m), /Id: +[0-9a-z]{16,40}/);
    }
  });

  test('a recipient that is not a plain address gets no digest: said once, exit 1, the others go on', LIMIT, async () => {
    const { s, inject } = site();
    await withStore(s, async (store) => {
      await store.addItem(item('-f@example.com'));
      await store.addItem(item('ok@example.com'));
    });
    const r = digest(s);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /digest for <-f@example\.com> not sent: not a plain address/);
    assert.deepEqual(inject.calls().map((c) => c.argv), [['-fquarantine@example.com', '-a', 'ok@example.com']]);
    const again = digest(s);
    assert.equal(again.code, 0, 'not said again for the same items');
  });

  test('two runs at the same moment (cron and the daemon): one digest; a lock left by a dead run is taken over', LIMIT, async () => {
    const { s, inject } = site();
    await withStore(s, (store) => store.addItem(item('both@example.com')));
    inject.setOptions({ delayMs: 5000 });
    const runOne = () =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(NQQUEUE_BIN, ['digest'], { env: s.env, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('exit', (code) => resolve({ code, stderr }));
      });
    const [a, b] = await Promise.all([runOne(), runOne()]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(inject.calls().length, 1, `one digest: ${a.stderr} / ${b.stderr}`);
    assert.match(a.stderr + b.stderr, /another digest run is going on \(pid \d+\): nothing done by this one/);
    assert.equal(existsSync(join(s.home, 'digest.lock')), false);
    // A run killed with the lock held: its PID is gone, the next run goes ahead.
    inject.setOptions({});
    await withStore(s, (store) => store.addItem(item('later@example.com')));
    writeFileSync(join(s.home, 'digest.lock'), '999999999\n', { mode: 0o600 });
    const r = digest(s);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(inject.calls().slice(1).map((c) => c.recipients), [['later@example.com']]);
  });

  test('run as root: it becomes the owner of the home, and everything it makes is that user\'s', { ...LIMIT, skip: process.geteuid?.() === 0 ? false : 'needs root' }, async () => {
    const NOBODY = 65534;
    const { s, inject } = site();
    await withStore(s, (store) => store.addItem(item('a@example.com')));
    const chownTree = (p: string) => {
      chownSync(p, NOBODY, NOBODY);
      if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) chownTree(join(p, n));
    };
    chownTree(s.home);
    chownTree(inject.dir);
    chmodSync(s.dir, 0o755);
    chmodSync(inject.dir, 0o755);
    const r = digest(s);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /running as nobody|running as 65534/);
    const [c] = inject.calls();
    assert.equal(c?.uid, NOBODY, 'qmail-inject ran as the home owner');
    for (const name of readdirSync(s.home)) assert.equal(statSync(join(s.home, name)).uid, NOBODY, name);
    assert.ok(existsSync(join(s.home, 'signing.key')));
  });

  test('nqqueue serve mails the due digests on its schedule, never twice, and stops on SIGTERM', LIMIT, async () => {
    const { s, inject } = site();
    await withStore(s, (store) => store.addItem(item('served@example.com', { subject: 'by the daemon' })));
    const start = async () => {
      const logFile = join(s.dir, 'serve.log');
      const fd = openSync(logFile, 'a');
      const child = spawn(NQQUEUE_BIN, ['serve'], { env: s.env, stdio: ['ignore', 'ignore', fd] });
      closeSync(fd);
      return { child, log: () => readFileSync(logFile, 'utf8') };
    };
    const stop = async (child: ReturnType<typeof spawn>) => {
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    };
    const first = await start();
    for (let i = 0; i < 300 && inject.calls().length === 0; i++) await delay(50);
    assert.equal(inject.queued().length, 1, first.log());
    for (let i = 0; i < 100 && !/mailed <served@example\.com>/.test(first.log()); i++) await delay(50);
    assert.match(first.log(), /nqqueue serve: digest: mailed <served@example\.com> a digest of 1 item/);
    assert.equal(await stop(first.child), 0);
    assert.equal(existsSync(join(s.home, 'digest.lock')), false, 'the lock is given back');
    /** Until the stand-in has `n` finished calls (a pass of the schedule ran). */
    const calls = async (n: number, log: () => string) => {
      for (let i = 0; i < 400 && inject.calls().length < n; i++) await delay(50);
      assert.equal(inject.calls().length, n, log());
    };
    // Started again, with something new for someone else (to see its pass ran): served@ is not mailed again.
    await withStore(s, (store) => store.addItem(item('other@example.com')));
    const second = await start();
    await calls(2, second.log);
    assert.equal(await stop(second.child), 0);
    assert.deepEqual(inject.calls().map((c) => c.recipients), [['served@example.com'], ['other@example.com']], second.log());

    // SIGTERM while qmail-inject is taking its time: serve waits for it and records the digest.
    await withStore(s, (store) => store.addItem(item('slow@example.com')));
    inject.setOptions({ delayMs: 2500 });
    const third = await start();
    const claimed = () => existsSync(join(inject.dir, 'calls', '3.claim'));
    for (let i = 0; i < 300 && !claimed(); i++) await delay(50);
    assert.ok(claimed(), third.log());
    assert.equal(await stop(third.child), 0);
    assert.deepEqual(inject.calls().slice(2).map((c) => [c.recipients, c.outcome]), [[['slow@example.com'], 'queued']]);
    assert.match(third.log(), /mailed <slow@example\.com> a digest of 1 item/);
    inject.setOptions({});
    await withStore(s, (store) => store.addItem(item('fourth@example.com')));
    const fourth = await start();
    await calls(4, fourth.log);
    assert.equal(await stop(fourth.child), 0);
    assert.deepEqual(inject.calls().slice(3).map((c) => c.recipients), [['fourth@example.com']], 'slow@ was recorded before the daemon stopped: not mailed again');
  });
});
