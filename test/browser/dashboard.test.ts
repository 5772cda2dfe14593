// The dashboard in a real browser (Debian's headless Chromium): `bin/nqqueue web` started as its own
// process on 127.0.0.1, a known history written into its store through addRollups (two hosts, hostile
// keys), and every graph checked against it — per host and summed, for each range — with not one
// request leaving the page and nothing run. End users get a 404 and no link; the README's screenshot of
// the dashboard is taken here too (NQQ_SCREENSHOTS=1 only, like test/browser/screenshots.test.ts).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import { LATENCY_BUCKETS_MS, type RollupRow } from '../../src/store/types.js';
import { browserTest, startBrowser, type RecordedPage, type TestBrowser } from '../helpers/browser.js';
import { REPO, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { installConsole, startWeb, USERS, type WebServer } from '../helpers/web.js';

const newSetup = setupsForThisFile();

interface Console {
  readonly s: Setup;
  readonly web: WebServer;
  readonly origin: string;
  readonly browser: TestBrowser;
}

async function startConsole(history: (now: number) => RollupRow[]): Promise<Console> {
  const s = newSetup();
  installConsole(s, { tcp: true });
  // Written the way the rollup writer writes: through the store's interface, in the console's home.
  const store = await openStore(s.home, defaultSettings());
  try {
    await store.addRollups(history(Date.now()));
  } finally {
    await store.close();
  }
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

/** The ISO minute `n` minutes before `now`. */
function ago(now: number, n: number): string {
  const m = Math.floor(now / 60_000) - n;
  return new Date(m * 60_000).toISOString();
}

/** Latency buckets with `n` runs in the bucket whose bound is `bound` ms. */
function inBucket(bound: number, n: number): number[] {
  const b = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  b[LATENCY_BUCKETS_MS.indexOf(bound)] = n;
  return b;
}

const MX1 = 'mx1.example.com';
const MX2 = 'mx2.example.com';
const HOSTILE_SENDER = '<img src=https://tracker.example/x.png onerror=alert(1)>@evil.example';
const HOSTILE_REFUSAL = '550 <script>alert("x")</script> \u202eno such user';

/** The known history: two hosts, the last hour, and two days ago (in the week, not the day). */
function history(now: number): RollupRow[] {
  const c = (minute: string, host: string, series: string, key: string, count: number, extra: Partial<RollupRow> = {}): RollupRow => ({ minute, host, series, key, count, sum: 0, ...extra });
  const g = (minute: string, host: string, series: string, value: number): RollupRow => ({ minute, host, series, key: '', count: 1, sum: value, gauge: true });
  const m5 = ago(now, 5);
  const m20 = ago(now, 20);
  const old = ago(now, 2 * 1440);
  return [
    c(m5, MX1, 'messages', 'accept', 12),
    c(m5, MX1, 'messages', 'reject', 3),
    c(m5, MX1, 'messages', 'defer', 1),
    c(m5, MX2, 'messages', 'accept', 8),
    c(m5, MX2, 'messages', 'reject', 1),
    c(m20, MX1, 'messages', 'accept', 4),
    c(old, MX1, 'messages', 'accept', 100),
    c(m5, MX1, 'recipients', 'deliver', 14),
    c(m5, MX1, 'recipients', 'quarantine', 2),
    c(m5, MX2, 'recipients', 'reject', 1),
    c(m5, MX1, 'sender', 'alice@example.net', 7),
    c(m5, MX2, 'sender', 'alice@example.net', 2),
    c(m5, MX1, 'sender', '<>', 2),
    c(m20, MX1, 'sender', HOSTILE_SENDER, 1),
    c(m5, MX1, 'sender_domain', 'example.net', 9),
    c(m5, MX2, 'sender_domain', 'shop.example', 4),
    c(m5, MX1, 'virus', 'Eicar-Signature', 2),
    c(m5, MX1, 'refusal', HOSTILE_REFUSAL, 3),
    // clamav: 20 runs in (10, 25] ms: p50 17.5, p95 24.25; spamassassin: 10 in (250, 500]: p50 375, p95 487.5
    c(m5, MX1, 'plugin_ms', 'clamav', 12, { sum: 200, buckets: inBucket(25, 12) }),
    c(m5, MX2, 'plugin_ms', 'clamav', 8, { sum: 130, buckets: inBucket(25, 8) }),
    c(m5, MX1, 'plugin_ms', 'spamassassin', 10, { sum: 3800, buckets: inBucket(500, 10) }),
    c(m5, MX1, 'qmail_queue_ms', '', 20, { sum: 150, buckets: inBucket(10, 20) }),
    c(m5, MX1, 'qmail_queue_failure', '', 1),
    c(m5, MX1, 'plugin_verdict', 'spamassassin:accept', 8),
    c(m5, MX1, 'plugin_verdict', 'spamassassin:reject', 2),
    c(m5, MX1, 'backend_ok', 'clamav /run/clamav/clamd.ctl', 20),
    c(m5, MX1, 'backend_ok', 'spamassassin 127.0.0.1:783', 8),
    c(m5, MX1, 'backend_error', 'spamassassin 127.0.0.1:783', 2),
    c(m5, MX1, 'backend_timeout', 'spamassassin 127.0.0.1:783', 1),
    g(m20, MX1, 'spool_items', 9),
    g(m5, MX1, 'spool_items', 5),
    g(m5, MX2, 'spool_items', 2),
    g(m5, MX1, 'spool_oldest_s', 600),
    g(m5, MX1, 'quarantine_items', 42),
    g(m5, MX1, 'in_flight', 1),
  ];
}

/** The text of a panel (its SVG's titles and labels included). */
async function panelText(p: RecordedPage, id: string): Promise<string> {
  return p.page.locator(`#${id}`).innerText();
}

/** Every <title> inside a panel's graphs: the exact figures a hover shows. */
async function titles(p: RecordedPage, id: string): Promise<string[]> {
  return p.page.locator(`#${id} svg title`).allTextContents();
}

/** The drawn marks (bars, parts of bars, dots) of a panel's graphs that are really on screen. */
async function marks(p: RecordedPage, id: string): Promise<number> {
  return p.page.locator(`#${id} svg`).evaluateAll((svgs) => {
    let n = 0;
    for (const svg of svgs) {
      const box = svg.getBoundingClientRect();
      if (box.width < 100 || box.height < 20) continue;
      for (const m of svg.querySelectorAll('rect, circle, path')) {
        const b = m.getBoundingClientRect();
        if (b.width > 0 && b.height > 0) n++;
      }
    }
    return n;
  });
}

browserTest('the dashboard: each graph drawn from a known history, per host and summed, each range; nothing leaves the page; end users get 404 and no link', async () => {
  const c = await startConsole(history);
  const { origin } = c;
  try {
    // An end user: no link, and the page is answered as one that does not exist.
    const user = await c.browser.newPage(origin);
    await logIn(user, origin, 'alice@example.com');
    assert.equal(await user.page.locator('a[href^="/dashboard"]').count(), 0, 'no dashboard link for an end user');
    const refused = await user.page.goto(`${origin}/dashboard?range=hour`);
    assert.equal(refused?.status(), 404);
    assert.match(await user.page.locator('main').innerText(), /There is no such page\./);
    assert.equal(await user.page.locator('svg').count(), 0);
    await user.page.context().clearCookies();
    // Not logged in: to the login page.
    const anon = await c.browser.newPage(origin);
    await anon.page.goto(`${origin}/dashboard`);
    assert.equal(new URL(anon.page.url()).pathname, '/login');

    const p = await c.browser.newPage(origin);
    await logIn(p, origin, 'admin@example.com');
    await Promise.all([p.page.waitForURL(`${origin}/dashboard`), p.page.click('nav a[href="/dashboard"]')]);
    assert.equal(await p.page.locator('.choice a.on').first().innerText(), 'day', 'a day by default');

    await p.page.goto(`${origin}/dashboard?range=hour`);
    // Every graph is there and drawn.
    for (const id of ['messages', 'recipients', 'senders', 'domains', 'viruses', 'refusals', 'latency', 'verdicts', 'backends', 'gauge-spool_items', 'gauge-spool_oldest_s', 'gauge-quarantine_items', 'gauge-in_flight']) {
      assert.ok((await marks(p, id)) > 0, `${id}: drawn`);
    }
    // Messages: the minute 5 ago, both hosts summed (12 + 8 accepted), and the totals of the hour.
    const msgTitles = await titles(p, 'messages');
    assert.ok(msgTitles.some((t) => / 20 accepted messages a minute$/.test(t)), msgTitles.join('\n'));
    assert.ok(msgTitles.some((t) => / 4 refused messages a minute$/.test(t)));
    assert.ok(msgTitles.some((t) => / 4 accepted messages a minute$/.test(t)), 'the minute 20 ago');
    assert.equal(msgTitles.filter((t) => /accepted/.test(t)).length, 2, 'two minutes with accepted mail; two days ago is not in the hour');
    const legend = await p.page.locator('#messages ul.legend').innerText();
    assert.match(legend, /accepted 24/);
    assert.match(legend, /refused 4/);
    assert.match(legend, /deferred 1/);
    assert.doesNotMatch(legend, /bug|error/, 'results without messages are not listed');
    assert.match(await p.page.locator('#recipients ul.legend').innerText(), /delivered 14[\s\S]*quarantined 2[\s\S]*refused 1/);

    // Top senders (hosts summed: 7 + 2), the bounce named, the hostile one shown as text.
    const senders = await panelText(p, 'senders');
    assert.match(senders, /alice@example\.net\s+9/);
    assert.match(senders, /<> \(bounces\)\s+2/);
    assert.ok((await titles(p, 'senders')).includes(`${HOSTILE_SENDER}: 1 messages`));
    assert.match(await panelText(p, 'domains'), /example\.net\s+9[\s\S]*shop\.example\s+4/);
    assert.match(await panelText(p, 'viruses'), /Eicar-Signature\s+2/);
    // The refusal's bidi override is made visible, not obeyed.
    const refusalTitles = (await titles(p, 'refusals')).filter((t) => t.startsWith('550'));
    assert.equal(refusalTitles.length, 1);
    assert.ok(refusalTitles.some((t) => t.startsWith('550 <script>alert("x")</script> ') && !t.includes('\u202e')), refusalTitles.join('\n'));

    // Latency from the bucket counts: clamav p50 17.5 → 18 ms, p95 24.25 → 24 ms; spamassassin 375, 487.5.
    const latency = await panelText(p, 'latency');
    assert.match(latency, /clamav[\s\S]*?p50 18 ms · p95 24 ms/);
    assert.match(latency, /spamassassin[\s\S]*?p50 375 ms · p95 488 ms/);
    assert.match(latency, /qmail-queue[\s\S]*?p50 7\.5 ms · p95 9\.8 ms/);
    assert.match(latency, /qmail-queue failed 1 time in this range/);
    assert.ok((await titles(p, 'latency')).some((t) => t === 'clamav: p50 18 ms, p95 24 ms (20 runs)'));
    assert.match(await panelText(p, 'verdicts'), /spamassassin[\s\S]*10 verdicts/);
    assert.ok((await titles(p, 'verdicts')).includes('spamassassin: 2 reject'));

    // Backends: the one with errors first, marked; 8 of 11 answered.
    const backends = await panelText(p, 'backends');
    assert.match(backends, /spamassassin · 127\.0\.0\.1:783[\s\S]*72\.7% answered of 11; 2 errors, 1 timeout[\s\S]*clamav · \/run\/clamav\/clamd\.ctl[\s\S]*100% answered of 20/);
    assert.equal(await p.page.locator('#backends text.value.bad').count(), 1);

    // Gauges: the latest of each host added up (5 + 2), and the highest of the hour in the graph (9).
    assert.equal(await p.page.locator('#gauge-spool_items .big').innerText(), '7');
    assert.ok((await titles(p, 'gauge-spool_items')).some((t) => / 9$/.test(t)));
    assert.equal(await p.page.locator('#gauge-spool_oldest_s .big').innerText(), '10 min');
    assert.equal(await p.page.locator('#gauge-quarantine_items .big').innerText(), '42');
    assert.equal(await p.page.locator('#gauge-in_flight .big').innerText(), '1');

    // One host: mx2 alone.
    await p.page.click(`.choice a:text-is("${MX2}")`);
    assert.equal(new URL(p.page.url()).searchParams.get('host'), MX2);
    assert.equal(new URL(p.page.url()).searchParams.get('range'), 'hour', 'the range is kept');
    assert.match(await p.page.locator('#messages ul.legend').innerText(), /accepted 8[\s\S]*refused 1/);
    assert.match(await panelText(p, 'senders'), /alice@example\.net\s+2/);
    assert.doesNotMatch(await panelText(p, 'senders'), /bounces/);
    assert.equal(await p.page.locator('#gauge-spool_items .big').innerText(), '2');
    assert.match(await panelText(p, 'viruses'), /No viruses recorded in this range\./);
    assert.match(await panelText(p, 'backends'), /No backend calls recorded in this range\./);

    // The ranges: the day is the hour's figures still; the week and month also have two days ago.
    for (const [range, accepted] of [
      ['day', 24],
      ['week', 124],
      ['month', 124],
    ] as const) {
      await p.page.goto(`${origin}/dashboard?range=${range}`);
      assert.equal(await p.page.locator('.choice a.on').first().innerText(), range);
      assert.match(await p.page.locator('#messages ul.legend').innerText(), new RegExp(`accepted ${accepted}\\b`), range);
      assert.ok((await marks(p, 'messages')) > 0);
      assert.match(await panelText(p, 'latency'), /clamav[\s\S]*?p50 18 ms · p95 24 ms/, range);
    }
    // An unknown range is the day; a host of nobody shows nothing, its name escaped.
    await p.page.goto(`${origin}/dashboard?range=year&host=${encodeURIComponent('<b>x</b>')}`);
    assert.equal(await p.page.locator('.choice a.on').first().innerText(), 'day');
    assert.match(await panelText(p, 'messages'), /No messages recorded in this range\./);
    assert.equal(await p.page.locator('main b').count(), 0);

    // Nothing ran, nothing was asked of another site: every request went to the console itself.
    for (const page of [p, user, anon]) {
      assert.deepEqual(page.requestsOutside(origin), []);
      assert.deepEqual(page.dialogs, []);
      assert.deepEqual(page.errors, []);
    }
    assert.ok(p.requests.length > 5);
    // The graphs are in the page itself: what it loads besides is the stylesheet (and the browser's own icon).
    const loaded = new Set(p.requests.filter((r) => !r.navigation).map((r) => new URL(r.url).pathname));
    loaded.delete('/favicon.ico');
    assert.deepEqual([...loaded], ['/style.css']);
  } finally {
    await stopConsole(c);
  }
});

const SHOT = 'the README screenshot of the dashboard: a day of two hosts\' traffic';

/** A day of plausible traffic on two hosts: busier by day, a spamd outage in the afternoon. */
function aDay(now: number): RollupRow[] {
  const rows: RollupRow[] = [];
  const senders = ['newsletter@shop.example', 'billing@supplier.example', 'carol@example.net', '<>', 'noreply@bank.example', 'promo@deals.example', 'dave@example.org'];
  const domains = ['shop.example', 'supplier.example', 'example.net', 'bank.example', 'deals.example', 'example.org'];
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const lat = (base: number, n: number): number[] => {
    const b = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    for (let i = 0; i < n; i++) {
      const v = base * (0.5 + rnd() * rnd() * 6);
      const k = LATENCY_BUCKETS_MS.findIndex((x) => v <= x);
      b[k < 0 ? LATENCY_BUCKETS_MS.length : k]! += 1;
    }
    return b;
  };
  for (let m = 1440; m >= 1; m -= 3) {
    const minute = ago(now, m);
    const hour = new Date(minute).getUTCHours();
    const busy = 0.4 + Math.max(0, Math.sin(((hour - 6) / 24) * 2 * Math.PI));
    const outage = m > 300 && m < 360;
    for (const host of ['mx1.example.com', 'mx2.example.com']) {
      const f = host === 'mx1.example.com' ? 1 : 0.6;
      const n = (x: number): number => Math.max(0, Math.round(x * busy * f * (0.7 + rnd() * 0.6)));
      const accept = n(14);
      const reject = n(4);
      const defer = outage ? n(5) : rnd() < 0.05 ? 1 : 0;
      const c = (series: string, key: string, count: number, extra: Partial<RollupRow> = {}): void => {
        if (count > 0) rows.push({ minute, host, series, key, count, sum: 0, ...extra });
      };
      c('messages', 'accept', accept);
      c('messages', 'reject', reject);
      c('messages', 'defer', defer);
      c('recipients', 'deliver', Math.round(accept * 1.2));
      c('recipients', 'quarantine', n(2));
      c('recipients', 'reject', reject);
      c('recipients', 'tempfail', defer);
      for (let i = 0; i < senders.length; i++) c('sender', senders[i]!, n(6 / (i + 1)));
      for (let i = 0; i < domains.length; i++) c('sender_domain', domains[i]!, n(7 / (i + 1)));
      if (rnd() < 0.08) c('virus', rnd() < 0.7 ? 'Win.Trojan.Agent-1234' : 'Eicar-Signature', 1);
      c('refusal', '550 5.1.1 no such user here', n(2));
      c('refusal', 'Your message was refused: it looks like spam (score 14.2)', n(1));
      if (rnd() < 0.2) c('refusal', 'Sender address rejected: domain not found', 1);
      const scans = accept + reject;
      if (scans > 0) {
        const clam = lat(8, scans);
        c('plugin_ms', 'clamav', scans, { sum: scans * 12, buckets: clam });
        const sa = lat(outage ? 4000 : 180, scans);
        c('plugin_ms', 'spamassassin', scans, { sum: scans * 300, buckets: sa });
        const rs = lat(45, scans);
        c('plugin_ms', 'rspamd', scans, { sum: scans * 60, buckets: rs });
        c('qmail_queue_ms', '', accept, { sum: accept * 4, buckets: lat(3, accept) });
        c('plugin_verdict', 'clamav:accept', scans);
        c('plugin_verdict', 'spamassassin:accept', Math.max(0, scans - reject));
        c('plugin_verdict', 'spamassassin:reject', reject);
        c('plugin_verdict', 'rspamd:accept', scans);
        c('backend_ok', 'clamav /run/clamav/clamd.ctl', scans);
        c('backend_ok', 'rspamd http://127.0.0.1:11333', scans);
        c('backend_ok', 'spamassassin 127.0.0.1:783', outage ? Math.floor(scans / 3) : scans);
        c('backend_timeout', 'spamassassin 127.0.0.1:783', outage ? scans - Math.floor(scans / 3) : 0);
        c('backend_failover', 'spamassassin 127.0.0.1:783', outage ? 1 : 0);
      }
      const gauge = (series: string, value: number): void => {
        rows.push({ minute, host, series, key: '', count: 1, sum: value, gauge: true });
      };
      gauge('spool_items', outage ? Math.round((360 - m) * f * 0.8) : m < 300 && m > 280 ? Math.round((m - 280) * f) : 0);
      gauge('spool_oldest_s', outage ? (360 - m) * 60 : 0);
      gauge('quarantine_items', Math.round((180 + (1440 - m) / 12) * f));
      gauge('in_flight', Math.round(busy * 3 * f * rnd()));
    }
  }
  return rows;
}

if (process.env.NQQ_SCREENSHOTS !== '1') {
  test(SHOT, { skip: 'screenshots are taken only with NQQ_SCREENSHOTS=1 (they rewrite docs/screenshots/)' }, () => {});
} else {
  browserTest(SHOT, async () => {
    const c = await startConsole(aDay);
    try {
      const p = await c.browser.newPage(c.origin);
      await logIn(p, c.origin, 'admin@example.com');
      await p.page.goto(`${c.origin}/dashboard?range=day`);
      for (const id of ['messages', 'recipients', 'senders', 'domains', 'viruses', 'refusals', 'latency', 'verdicts', 'backends', 'gauge-spool_items']) {
        assert.ok((await marks(p, id)) > 0, `${id}: drawn`);
      }
      assert.deepEqual(p.requestsOutside(c.origin), []);
      const width = (await p.page.evaluate('document.documentElement.scrollWidth')) as number;
      assert.ok(width <= 1100, `the page is ${width} px wide`);
      const dir = join(REPO, 'docs', 'screenshots');
      mkdirSync(dir, { recursive: true });
      await p.page.screenshot({ path: join(dir, 'dashboard.png'), fullPage: true });
    } finally {
      await stopConsole(c);
    }
  });
}
