// The tests every store engine must pass (SQLite today; PostgreSQL and any later one too): run by each
// engine's own test file with a factory that makes an empty store. Nothing here knows the engine.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import type { Actor, ItemResult, NewQuarantineItem, Store } from '../../src/store/types.js';
import { learnedSuite } from './suite-learned.js';
import { rollupSuite } from './suite-rollups.js';
import { listsSuite } from './suite-lists.js';

export interface StoreUnderTest {
  /** A new, empty store. */
  readonly store: Store;
  /** Another Store object on the same database (its own connection), as a second process would have. */
  another(): Promise<Store>;
  /** How a separate process opens the same database: it imports `module` and awaits `exportName(...args)`. */
  readonly child: { readonly module: string; readonly exportName: string; readonly args: readonly unknown[] };
  cleanup(): Promise<void>;
}

export type MakeStore = () => Promise<StoreUnderTest>;

const CLI: Actor = { who: 'root', from: 'command line' };
const WEB: Actor = { who: 'alice@example.com', from: '192.0.2.1' };
const CHILD = fileURLToPath(new URL('./claim-child.js', import.meta.url));

let seq = 0;
/** An id of the shape the quarantine makes (base-36 time, random hex). */
export function newId(): string {
  seq++;
  return `${(1_800_000_000_000 + seq).toString(36)}${seq.toString(16).padStart(16, '0')}`;
}

function result(plugin: string, flagged: boolean, extra: Partial<ItemResult> = {}): ItemResult {
  return { plugin, params: '', stage: 'per-user', verdict: 'accept', flagged, details: {}, ...extra };
}

export function item(over: Partial<NewQuarantineItem> = {}): NewQuarantineItem {
  const owner = over.owner ?? 'bob@example.com';
  return {
    id: newId(),
    date: '2026-11-20T10:00:00.000Z',
    messageId: 'mabc123',
    host: 'mx1.example.com',
    size: 1234,
    sender: { text: 'spammer@bad.example', base64: Buffer.from('spammer@bad.example').toString('base64') },
    recipient: { text: owner, base64: Buffer.from(owner).toString('base64') },
    owner,
    domain: owner.slice(owner.indexOf('@') + 1),
    subject: 'cheap pills',
    results: [
      result('black', false, { stage: 'general', params: 'file=x' }),
      result('spamassassin', true, { score: 12.5, details: { spam: true, required: 5 } }),
      result('quarantine', false, { verdict: 'drop', text: 'quarantined' }),
    ],
    caughtBy: ['spamassassin'],
    routing: { general: { file: '/var/qmail/control/general.cfb', line: 2 }, user: { file: '/var/qmail/control/nqqueue.cfb', line: 7 } },
    ...over,
  };
}

async function ids(store: Store, query: Parameters<Store['findItems']>[0]): Promise<string[]> {
  return (await store.findItems(query)).items.map((i) => i.id);
}

/** Run the child (claim-child.ts) `n` times at once: each claims `id` at the same instant. */
async function claimInProcesses(t: StoreUnderTest, id: string, n: number): Promise<{ got: boolean; pid: number }[]> {
  const at = Date.now() + 1500;
  const spec = JSON.stringify({ ...t.child, id, at });
  const runs = Array.from(
    { length: n },
    () =>
      new Promise<{ got: boolean; pid: number }>((resolve, reject) => {
        const c = spawn(process.execPath, [CHILD, spec], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (d: Buffer) => (out += d));
        c.stderr.on('data', (d: Buffer) => (err += d));
        c.on('close', (code) => {
          if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
          else resolve(JSON.parse(out) as { got: boolean; pid: number });
        });
      }),
  );
  return Promise.all(runs);
}

export function storeSuite(name: string, makeStore: MakeStore): void {
  const use = async (fn: (t: StoreUnderTest) => Promise<void>) => {
    const t = await makeStore();
    try {
      await fn(t);
    } finally {
      await t.store.close().catch(() => undefined);
      await t.cleanup();
    }
  };

  describe(`store suite: ${name}`, () => {
    learnedSuite(use);
    test('an item is kept exactly as given, held, and found by id', () =>
      use(async ({ store }) => {
        assert.equal(typeof store.engine, 'string');
        const it = item({ note: 'Maildir missing: kept in the global quarantine instead' });
        await store.addItem(it);
        const got = await store.getItem(it.id);
        assert.deepEqual(got, { ...it, status: 'held' });
        assert.equal(await store.getItem(newId()), undefined);
      }));

    test('hostile values round-trip: quotes, %, _, backslashes, unicode in subject, sender and results', () =>
      use(async ({ store }) => {
        const subject = `'; DROP TABLE items; -- "100%" _x_ \\ \u{1F600} Grüße ЖЖ \u202e`;
        const sender = `o'brien"%_\\@ex'ample.com`;
        const it = item({
          subject,
          sender: { text: sender, base64: Buffer.from(sender).toString('base64') },
          results: [result('exec', true, { details: { out: "a'b\"c%_\u0001", nested: { k: [1, 'ü'] } }, text: '%' })],
          caughtBy: ['exec'],
          note: "it's",
        });
        await store.addItem(it);
        assert.deepEqual(await store.getItem(it.id), { ...it, status: 'held' });
        const other = item({ subject: 'plain', sender: { text: 'x@y.example', base64: '' } });
        await store.addItem(other);
        // % and _ mean themselves: no wildcard matches the other item.
        assert.deepEqual(await ids(store, { text: '100%' }), [it.id]);
        assert.deepEqual(await ids(store, { text: '_x_' }), [it.id]);
        assert.deepEqual(await ids(store, { text: '%' }), [it.id]);
        assert.deepEqual(await ids(store, { sender: "o'brien\"%_" }), [it.id]);
        assert.deepEqual(await ids(store, { sender: '_' }), [it.id]);
        assert.deepEqual(await ids(store, { text: "'; drop table" }), [it.id]);
        assert.deepEqual(await ids(store, { text: 'GRÜSSE'.replace('SS', 'ß').toLowerCase() }), [it.id]);
        assert.deepEqual(await ids(store, { text: 'GRÜ' }), [it.id], 'case-insensitive beyond ASCII');
        assert.deepEqual(await ids(store, { text: 'жж' }), [it.id]);
        assert.deepEqual(await ids(store, { text: '\u{1F600}' }), [it.id]);
        assert.deepEqual(await ids(store, { owner: "bob@example.com' OR '1'='1" }), []);
        assert.equal((await store.findItems({})).total, 2, 'nothing was dropped');
      }));

    test('adding an id that is indexed already changes nothing', () =>
      use(async ({ store }) => {
        const it = item();
        await store.addItem(it);
        await store.addItem({ ...it, subject: 'changed', owner: 'eve@example.com' });
        await store.addItem(it);
        assert.deepEqual(await store.getItem(it.id), { ...it, status: 'held' });
        assert.equal((await store.findItems({ status: ['held', 'releasing', 'released', 'deleted', 'expired'] })).total, 1);
        // Not even once it is released: indexing it again does not make it held again.
        const c = await store.claimItem(it.id, CLI, 'release');
        await c!.finish('released');
        await store.addItem(it);
        assert.equal((await store.getItem(it.id))!.status, 'released');
      }));

    test('forgetItem removes an item entirely; itemIds lists every status', () =>
      use(async ({ store }) => {
        const a = item();
        const b = item();
        const c = item();
        for (const x of [a, b, c]) await store.addItem(x);
        await (await store.claimItem(b.id, CLI, 'delete'))!.finish('deleted');
        assert.deepEqual([...(await store.itemIds())].sort(), [a.id, b.id, c.id].sort());
        await store.forgetItem(a.id);
        await store.forgetItem(newId()); // unknown: nothing to do
        assert.equal(await store.getItem(a.id), undefined);
        assert.deepEqual([...(await store.itemIds())].sort(), [b.id, c.id].sort());
        assert.deepEqual(await ids(store, {}), [c.id]);
      }));

    test('queries: owner, domain, sender, recipient, text, caughtBy, status, dates, order, limit, offset, total', () =>
      use(async ({ store }) => {
        const a = item({ owner: 'bob@example.com', date: '2026-11-01T00:00:00.000Z', subject: 'Invoice' });
        const b = item({ owner: 'alice@example.com', date: '2026-11-02T00:00:00.000Z', caughtBy: ['clamav'], results: [result('clamav', true, { details: { virus: 'Eicar' } })] });
        const c = item({ owner: 'carol@other.example', date: '2026-11-03T00:00:00.000Z', sender: { text: 'News@Shop.Example', base64: '' } });
        const d = item({ owner: 'bob@example.com', date: '2026-11-04T00:00:00.000Z' });
        for (const x of [c, a, d, b]) await store.addItem(x);
        await (await store.claimItem(d.id, CLI, 'release'))!.finish('released');

        assert.deepEqual(await ids(store, {}), [c.id, b.id, a.id], 'held only, newest first by default');
        assert.deepEqual(await ids(store, { order: 'oldest' }), [a.id, b.id, c.id]);
        assert.deepEqual(await ids(store, { owner: 'bob@example.com' }), [a.id]);
        assert.deepEqual(await ids(store, { owner: 'BOB@Example.COM' }), [a.id], 'an owner is matched without case');
        assert.deepEqual(await ids(store, { owner: 'bob@example.com', status: ['held', 'released'] }), [d.id, a.id]);
        assert.deepEqual(await ids(store, { status: ['released'] }), [d.id]);
        assert.deepEqual(await ids(store, { status: [] }), []);
        assert.deepEqual(await ids(store, { domain: 'EXAMPLE.com' }), [b.id, a.id]);
        assert.deepEqual(await ids(store, { domain: 'example' }), [], 'a domain is matched whole');
        assert.deepEqual(await ids(store, { sender: 'shop.EXAMPLE' }), [c.id]);
        assert.deepEqual(await ids(store, { recipient: 'ALICE' }), [b.id]);
        assert.deepEqual(await ids(store, { text: 'invoice' }), [a.id], 'subject');
        assert.deepEqual(await ids(store, { text: 'news@' }), [c.id], 'sender');
        assert.deepEqual(await ids(store, { text: 'carol' }), [c.id], 'recipient');
        assert.deepEqual(await ids(store, { text: 'clamav' }), [b.id], 'a plugin');
        assert.deepEqual(await ids(store, { caughtBy: 'clamav' }), [b.id]);
        assert.deepEqual(await ids(store, { caughtBy: 'spamassassin', order: 'oldest' }), [a.id, c.id]);
        assert.deepEqual(await ids(store, { caughtBy: 'spam' }), [], 'caughtBy names a plugin, not a part of one');
        assert.deepEqual(await ids(store, { caughtBy: 'black' }), [], 'a plugin that ran but did not catch it');
        assert.deepEqual(await ids(store, { since: '2026-11-02T00:00:00.000Z' }), [c.id, b.id], 'since is inclusive');
        assert.deepEqual(await ids(store, { before: '2026-11-02T00:00:00.000Z' }), [a.id], 'before is exclusive');
        assert.deepEqual(await ids(store, { since: '2026-11-02', before: '2026-11-03' }), [b.id], 'dates without a time');
        assert.deepEqual(await ids(store, { owner: 'bob@example.com', text: 'clamav' }), [], 'filters are all applied');

        const page1 = await store.findItems({ limit: 2, order: 'oldest' });
        const page2 = await store.findItems({ limit: 2, offset: 2, order: 'oldest' });
        assert.deepEqual(page1.items.map((i) => i.id), [a.id, b.id]);
        assert.deepEqual(page2.items.map((i) => i.id), [c.id]);
        assert.equal(page1.total, 3, 'total counts every match, not the page');
        assert.equal(page2.total, 3);
        assert.equal((await store.findItems({ limit: 0 })).total, 3);
        assert.deepEqual((await store.findItems({ limit: 0 })).items, []);
      }));

    test('items with the same date keep one order, page after page', () =>
      use(async ({ store }) => {
        const same = Array.from({ length: 7 }, () => item({ date: '2026-11-05T00:00:00.000Z' }));
        for (const x of same) await store.addItem(x);
        const pages: string[] = [];
        for (let off = 0; off < 7; off += 3) pages.push(...(await ids(store, { limit: 3, offset: off })));
        assert.deepEqual(new Set(pages).size, 7);
        assert.deepEqual(pages, await ids(store, {}));
      }));

    test('a claim is exclusive; finish records the status and the audit entry in one step; a second finish does nothing', () =>
      use(async ({ store }) => {
        const it = item();
        await store.addItem(it);
        const claim = await store.claimItem(it.id, WEB, 'release');
        assert.ok(claim);
        assert.equal(claim.item.id, it.id);
        assert.equal(claim.item.status, 'releasing');
        assert.equal(await store.claimItem(it.id, CLI, 'release'), undefined, 'claimed already');
        assert.equal(await store.claimItem(it.id, CLI, 'delete'), undefined, 'for any action');
        assert.equal((await store.getItem(it.id))!.status, 'releasing');
        assert.deepEqual(await ids(store, {}), [], 'an item being acted on is not held');
        assert.deepEqual(await store.auditLog(), [], 'nothing audited before it happened');
        await claim.finish('released', 'to <bob@example.com>');
        await claim.finish('released', 'again');
        const now = (await store.getItem(it.id))!;
        assert.equal(now.status, 'released');
        assert.equal(now.statusBy, WEB.who);
        assert.ok(now.statusAt && Math.abs(Date.parse(now.statusAt) - Date.now()) < 60_000);
        const log = await store.auditLog();
        assert.equal(log.length, 1);
        assert.deepEqual({ ...log[0], at: undefined }, { at: undefined, who: WEB.who, from: WEB.from, action: 'release', item: it.id, detail: 'to <bob@example.com>' });
        assert.equal(await store.claimItem(it.id, CLI, 'release'), undefined, 'released: never claimed again');
        assert.equal(await store.claimItem(newId(), CLI, 'release'), undefined, 'unknown');
      }));

    test('abandon puts a claimed item back to held, as it was', () =>
      use(async ({ store }) => {
        const it = item();
        await store.addItem(it);
        const claim = (await store.claimItem(it.id, CLI, 'release'))!;
        await claim.abandon();
        assert.deepEqual(await store.getItem(it.id), { ...it, status: 'held' });
        const again = await store.claimItem(it.id, WEB, 'delete');
        assert.ok(again, 'claimable again');
        await claim.abandon(); // the old claim is over: it does not undo the new one
        assert.equal((await store.getItem(it.id))!.status, 'releasing');
        await again.finish('deleted');
        assert.equal((await store.getItem(it.id))!.status, 'deleted');
        assert.deepEqual((await store.auditLog()).map((e) => e.action), ['delete']);
      }));

    test('a stale claim is taken over after staleMs; the old holder can no longer finish', () =>
      use(async ({ store }) => {
        const it = item();
        await store.addItem(it);
        const dead = (await store.claimItem(it.id, CLI, 'release'))!;
        assert.equal(await store.claimItem(it.id, WEB, 'release', 60_000), undefined, 'fresh: not stale yet');
        await new Promise((r) => setTimeout(r, 20));
        const taken = await store.claimItem(it.id, WEB, 'release', 10);
        assert.ok(taken, 'stale: taken over');
        await assert.rejects(dead.finish('released'), { name: 'StoreError' });
        await taken.finish('released');
        const log = await store.auditLog();
        assert.deepEqual(log.map((e) => [e.who, e.action]), [[WEB.who, 'release']], 'one release, by the one that holds the claim');
      }));

    test('claims from several Store objects at once: exactly one wins', () =>
      use(async (t) => {
        const others = [await t.another(), await t.another(), await t.another()];
        try {
          const all = [t.store, ...others];
          for (let round = 0; round < 5; round++) {
            const it = item();
            await t.store.addItem(it);
            const claims = await Promise.all(all.flatMap((s, i) => [0, 1, 2].map((k) => s.claimItem(it.id, { who: `u${i}.${k}`, from: 'test' }, 'release'))));
            const won = claims.filter((c) => c !== undefined);
            assert.equal(won.length, 1, `round ${round}`);
            await won[0]!.finish('released');
            const seen = await others[1]!.getItem(it.id);
            assert.equal(seen!.status, 'released', 'every connection sees it');
          }
          assert.equal((await others[2]!.auditLog()).length, 5);
        } finally {
          for (const o of others) await o.close();
        }
      }));

    test('claims from several processes at once: exactly one wins, one audit entry', { timeout: 60_000 }, () =>
      use(async (t) => {
        const it = item();
        await t.store.addItem(it);
        const outcomes = await claimInProcesses(t, it.id, 4);
        assert.equal(outcomes.filter((o) => o.got).length, 1, JSON.stringify(outcomes));
        const winner = outcomes.find((o) => o.got)!;
        const log = await t.store.auditLog({ item: it.id });
        assert.equal(log.length, 1);
        assert.equal(log[0]!.who, `pid ${winner.pid}`);
        assert.equal((await t.store.getItem(it.id))!.status, 'released');
      }));

    test('expiredItems: held items quarantined before a date, oldest first, at most limit', () =>
      use(async ({ store }) => {
        const old1 = item({ date: '2026-01-01T00:00:00.000Z' });
        const old2 = item({ date: '2026-01-02T00:00:00.000Z' });
        const old3 = item({ date: '2026-01-03T00:00:00.000Z' });
        const fresh = item({ date: '2026-06-01T00:00:00.000Z' });
        for (const x of [fresh, old3, old1, old2]) await store.addItem(x);
        await (await store.claimItem(old3.id, CLI, 'delete'))!.finish('deleted');
        assert.deepEqual((await store.expiredItems('2026-03-01T00:00:00.000Z')).map((i) => i.id), [old1.id, old2.id]);
        assert.deepEqual((await store.expiredItems('2026-03-01T00:00:00.000Z', 1)).map((i) => i.id), [old1.id]);
        assert.deepEqual((await store.expiredItems(old2.date)).map((i) => i.id), [old1.id], 'strictly before');
        const c = (await store.claimItem(old1.id, { who: 'nqqueue serve', from: 'expiry' }, 'expire'))!;
        await c.finish('expired');
        assert.deepEqual((await store.expiredItems('2026-03-01T00:00:00.000Z')).map((i) => i.id), [old2.id]);
        assert.equal((await store.getItem(old1.id))!.status, 'expired');
      }));

    test('preferences: defaults until set, partial updates, per owner, owner without case', () =>
      use(async ({ store }) => {
        assert.deepEqual(await store.getPreferences('bob@example.com'), { language: 'en' }, 'no cadence until one is chosen: the site default applies');
        await store.setPreferences('bob@example.com', { language: 'fr' });
        assert.deepEqual(await store.getPreferences('bob@example.com'), { language: 'fr' }, 'choosing a language chooses no cadence');
        await store.setPreferences('Bob@Example.com', { digest: 'hourly', language: 'en' });
        assert.deepEqual(await store.getPreferences('bob@example.com'), { digest: 'hourly', language: 'en' });
        await store.setPreferences('bob@example.com', { language: 'de-CH' });
        assert.deepEqual(await store.getPreferences('BOB@example.com'), { digest: 'hourly', language: 'de-CH' });
        await store.setPreferences('bob@example.com', {});
        assert.deepEqual(await store.getPreferences('bob@example.com'), { digest: 'hourly', language: 'de-CH' });
        assert.deepEqual(await store.getPreferences('alice@example.com'), { language: 'en' });
        await assert.rejects(store.setPreferences('bob@example.com', { digest: 'weekly' as 'daily' }));
        await assert.rejects(store.setPreferences('bob@example.com', { language: "en'; --" }));
        assert.deepEqual(await store.getPreferences('bob@example.com'), { digest: 'hourly', language: 'de-CH' }, 'a refused change changes nothing');
      }));

    test('digest candidates: owners with held items newer than their last digest, with cadence and dates', () =>
      use(async ({ store }) => {
        assert.deepEqual(await store.digestCandidates(), []);
        const b1 = item({ owner: 'bob@example.com', date: '2026-11-01T10:00:00.000Z' });
        const b2 = item({ owner: 'bob@example.com', date: '2026-11-01T12:00:00.000Z' });
        const a1 = item({ owner: 'alice@example.com', date: '2026-11-01T11:00:00.000Z' });
        const c1 = item({ owner: 'carol@example.com', date: '2026-11-01T11:00:00.000Z' });
        for (const x of [b1, b2, a1, c1]) await store.addItem(x);
        await (await store.claimItem(c1.id, CLI, 'release'))!.finish('released');
        await store.setPreferences('alice@example.com', { digest: 'hourly' });
        assert.deepEqual(await store.digestCandidates(), [
          { owner: 'alice@example.com', cadence: 'hourly', newSince: a1.date },
          { owner: 'bob@example.com', newSince: b1.date },
        ]);
        await store.markDigestSent('bob@example.com', '2026-11-01T13:00:00.000Z', b2.date);
        assert.deepEqual(
          (await store.digestCandidates()).map((c) => c.owner),
          ['alice@example.com'],
          'bob was sent everything up to b2',
        );
        const b3 = item({ owner: 'bob@example.com', date: '2026-11-01T14:00:00.000Z' });
        await store.addItem(b3);
        const bob = (await store.digestCandidates()).find((c) => c.owner === 'bob@example.com');
        assert.deepEqual(bob, { owner: 'bob@example.com', lastSent: '2026-11-01T13:00:00.000Z', newSince: b3.date });
        await store.setPreferences('bob@example.com', { digest: 'never' });
        const never = (await store.digestCandidates()).find((c) => c.owner === 'bob@example.com');
        assert.equal(never?.cadence, 'never', 'the cadence is the caller’s to act on');
        // Choosing what is also the default is a choice: the site's default cadence no longer applies to bob.
        await store.setPreferences('bob@example.com', { digest: 'daily' });
        assert.equal((await store.digestCandidates()).find((c) => c.owner === 'bob@example.com')?.cadence, 'daily');
        await store.setPreferences('bob@example.com', { language: 'de' });
        assert.equal((await store.digestCandidates()).find((c) => c.owner === 'bob@example.com')?.cadence, 'daily', 'a later language change keeps the cadence');

      }));

    test('a token is used once: true the first time, false ever after, from any connection, even at once', () =>
      use(async (t) => {
        const expires = new Date(Date.now() + 3600_000).toISOString();
        assert.equal(await t.store.useToken('nonce-1', expires), true);
        assert.equal(await t.store.useToken('nonce-1', expires), false);
        const other = await t.another();
        try {
          assert.equal(await other.useToken('nonce-1', expires), false);
          assert.equal(await other.useToken("nonce-'2", expires), true);
          const race = await Promise.all([t.store.useToken('nonce-3', expires), other.useToken('nonce-3', expires), t.store.useToken('nonce-3', expires)]);
          assert.deepEqual(race.filter(Boolean).length, 1);
          // An expired one may be purged, but a live one never is by using others.
          await t.store.useToken('nonce-old', new Date(Date.now() - 1000).toISOString());
          await t.store.useToken('nonce-4', expires);
          assert.equal(await other.useToken('nonce-1', expires), false);
        } finally {
          await other.close();
        }
      }));

    test('the audit log: every entry kept, newest first, by item and by who, limited', () =>
      use(async ({ store }) => {
        const base = Date.parse('2026-11-01T00:00:00.000Z');
        const entries = [
          { at: new Date(base).toISOString(), who: 'alice@example.com', from: '192.0.2.1', action: 'login' },
          { at: new Date(base + 1000).toISOString(), who: 'alice@example.com', from: '192.0.2.1', action: 'release', item: 'i1', detail: "to <alice@example.com> 'x' %_" },
          { at: new Date(base + 2000).toISOString(), who: 'root', from: 'command line', action: 'delete', item: 'i2' },
          { at: new Date(base + 3000).toISOString(), who: 'root', from: 'command line', action: 'release', item: 'i1', detail: 'Grüße \u{1F600}' },
        ];
        for (const e of entries) await store.audit(e);
        assert.deepEqual(await store.auditLog(), [...entries].reverse());
        assert.deepEqual(await store.auditLog({ item: 'i1' }), [entries[3], entries[1]]);
        assert.deepEqual(await store.auditLog({ who: 'root' }), [entries[3], entries[2]]);
        assert.deepEqual(await store.auditLog({ limit: 2 }), [entries[3], entries[2]]);
        assert.deepEqual(await store.auditLog({ item: "i1' OR '1'='1" }), []);
      }));

    test('claims name their host and process; a claim is taken over at once only by its own host, when known dead', () =>
      use(async ({ store }) => {
        const A = { host: 'mx1.example.com', pid: 4242 };
        const B = { host: 'mx2.example.com', pid: 5151 };
        const it = item();
        await store.addItem(it);
        const first = (await store.claimItem(it.id, CLI, 'release', undefined, A))!;
        assert.equal(first.item.claimHost, A.host);
        assert.equal(first.item.claimPid, A.pid);
        const seen = (await store.getItem(it.id))!;
        assert.deepEqual([seen.status, seen.claimHost, seen.claimPid], ['releasing', A.host, A.pid]);
        // Another host cannot know whether mx1's process lives: only age tells it.
        assert.equal(await store.claimItem(it.id, WEB, 'release', undefined, { ...B, deadLocal: 'any' }), undefined, 'not from another host');
        assert.equal(await store.claimItem(it.id, WEB, 'release', undefined, { ...B, deadLocal: A.pid }), undefined, 'not from another host, even naming the pid');
        // On mx1: a pid that is not the claim's says nothing about it.
        assert.equal(await store.claimItem(it.id, WEB, 'release', undefined, { host: A.host, pid: 1, deadLocal: 9999 }), undefined, 'another pid');
        const taken = (await store.claimItem(it.id, WEB, 'release', undefined, { host: A.host, pid: 1, deadLocal: A.pid }))!;
        assert.ok(taken, 'its own host, knowing the pid gone: at once');
        await assert.rejects(first.finish('released'), { name: 'StoreError' });
        await taken.finish('released');
        const done = (await store.getItem(it.id))!;
        assert.equal(done.claimHost, undefined, 'no claim once done');
        assert.equal(done.claimPid, undefined);
        // `any`: the claimer holds the files, which a live process on its host would hold.
        const other = item();
        await store.addItem(other);
        await store.claimItem(other.id, CLI, 'delete', undefined, A);
        // Holding the files says nothing about a claim that names a live process (one working from the bytes).
        assert.equal(await store.claimItem(other.id, CLI, 'delete', undefined, { host: A.host, pid: 2, deadLocal: 'any' }), undefined);
        assert.ok(await store.claimItem(other.id, CLI, 'delete', undefined, { host: A.host, pid: 2, deadLocal: A.pid }));
        // A claim that names no host (made before claims did) counts as the claimer's own host's.
        const old = item();
        await store.addItem(old);
        await store.claimItem(old.id, CLI, 'delete');
        assert.ok(await store.claimItem(old.id, CLI, 'delete', undefined, { ...B, deadLocal: 'any' }));
        // Abandoned: held again, no claim left on it.
        const back = item();
        await store.addItem(back);
        await (await store.claimItem(back.id, CLI, 'release', undefined, A))!.abandon();
        const b = (await store.getItem(back.id))!;
        assert.deepEqual([b.status, b.claimHost, b.claimPid], ['held', undefined, undefined]);
      }));

    test('a lease is one holder\'s until it expires or is given back; the holder renews it', () =>
      use(async (t) => {
        const other = await t.another();
        try {
          assert.equal(await t.store.takeLease('digest', 'mx1', 60_000), true);
          assert.equal(await other.takeLease('digest', 'mx2', 60_000), false, 'held by mx1');
          assert.equal(await t.store.takeLease('digest', 'mx1', 60_000), true, 'renewed by its holder');
          assert.equal(await other.takeLease('other-job', 'mx2', 60_000), true, 'leases are by name');
          await other.dropLease('digest', 'mx2');
          assert.equal(await other.takeLease('digest', 'mx2', 60_000), false, 'only the holder gives it back');
          await t.store.dropLease('digest', 'mx1');
          assert.equal(await other.takeLease('digest', 'mx2', 30), true, 'given back: free');
          await new Promise((r) => setTimeout(r, 60));
          assert.equal(await t.store.takeLease('digest', 'mx1', 60_000), true, 'expired: free');
          // Many at once: one gets it.
          const all = [t.store, other, await t.another(), await t.another()];
          const got = await Promise.all(all.flatMap((s, i) => [0, 1].map((k) => s.takeLease('race', `h${i}.${k}`, 60_000))));
          assert.equal(got.filter(Boolean).length, 1);
          for (const s of all.slice(2)) await s.close();
        } finally {
          await other.close();
        }
      }));

    test('a site secret: the first candidate stored is the one every connection gets, byte for byte', () =>
      use(async (t) => {
        const others = [await t.another(), await t.another()];
        try {
          const candidates = [0, 1, 2].map((i) => Buffer.from([i, 0, 0xff, ...Buffer.alloc(29, i + 1)]));
          const got = await Promise.all([t.store, ...others].map((s, i) => s.siteSecret('link-key', candidates[i]!)));
          assert.ok(candidates.some((c) => c.equals(got[0]!)), 'one of the candidates');
          for (const g of got) assert.ok(g.equals(got[0]!), 'the same for all');
          assert.ok((await t.store.siteSecret('link-key', Buffer.from('later')))!.equals(got[0]!), 'kept');
          assert.ok((await t.store.siteSecret('other', Buffer.from('x'))).equals(Buffer.from('x')), 'by name');
        } finally {
          for (const o of others) await o.close();
        }
      }));

    test('message bytes: kept with the item where the store shares them (and gone once it is done); none otherwise', () =>
      use(async ({ store }) => {
        const bytes = Buffer.concat([Buffer.from('Subject: x\n\n'), Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]), Buffer.alloc(200_000, 0x41)]);
        const it = item({ size: bytes.length });
        const gone = item();
        if (!store.shared) {
          await store.addItem(it);
          assert.equal(await store.itemBytes(it.id), undefined);
          return;
        }
        await store.addItem(it, bytes);
        await store.addItem(gone, bytes);
        assert.ok((await store.itemBytes(it.id))!.equals(bytes), 'byte for byte');
        await store.addItem(it, Buffer.from('other'));
        assert.ok((await store.itemBytes(it.id))!.equals(bytes), 'adding again changes nothing');
        const c = (await store.claimItem(it.id, CLI, 'release'))!;
        assert.ok((await store.itemBytes(it.id))!.equals(bytes), 'still there while claimed');
        await c.finish('released');
        assert.equal(await store.itemBytes(it.id), undefined, 'done with: gone');
        await store.forgetItem(gone.id);
        assert.equal(await store.itemBytes(gone.id), undefined, 'forgotten: gone');
        assert.equal(await store.itemBytes(newId()), undefined);
      }));

    test('close: a second close is fine; a closed store refuses work with a StoreError', () =>
      use(async ({ store }) => {
        await store.close();
        await store.close();
        await assert.rejects(store.getItem(newId()), { name: 'StoreError' });
        await assert.rejects(store.addItem(item()), { name: 'StoreError' });
      }));

    rollupSuite(use);
    listsSuite(use);
  });
}
