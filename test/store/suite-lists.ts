// The allow and block lists, as every store engine must keep them: one entry per value and list
// (a second put replaces it), removal only from the list named, and lookups that find exactly the
// entries of the lists asked for that match the sender or the client's network.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseListValue } from '../../src/lists/entry.js';
import type { ListEntry, ListHolder, NewListEntry, Store } from '../../src/store/types.js';
import type { StoreUnderTest } from './suite.js';

const GLOBAL: ListHolder = { scope: 'global', owner: '' };
const DOMAIN: ListHolder = { scope: 'domain', owner: 'example.com' };
const BOB: ListHolder = { scope: 'user', owner: 'bob@example.com' };

function entry(holder: ListHolder, action: 'allow' | 'block', text: string, more: Partial<NewListEntry> = {}): NewListEntry {
  return { ...holder, action, ...parseListValue(text), by: 'root', ...more };
}

async function matched(store: Store, sender: string, ip: string | undefined, holders: readonly ListHolder[] = [BOB, DOMAIN, GLOBAL]): Promise<string[]> {
  const found = await store.matchListEntries({ sender, ...(ip === undefined ? {} : { ip }), holders });
  return found.map((e) => `${e.scope}:${e.action}:${e.kind}:${e.value}`).sort();
}

export function listsSuite(use: (fn: (t: StoreUnderTest) => Promise<void>) => Promise<void>): void {
  test('lists: an entry is kept as given, found by id and by list; a second put of its value replaces it, keeping its id', () =>
    use(async ({ store }) => {
      const note = `o'brien "100%" _x_ \\ Grüße \u{1F600}`;
      const a = await store.putListEntry(entry(BOB, 'allow', 'Alice@Example.ORG', { skip: ['spamassassin'], note }));
      assert.equal(a.replaced, undefined);
      assert.match(a.entry.id, /^[0-9a-f]{16}$/);
      assert.ok(!Number.isNaN(Date.parse(a.entry.added)));
      const want: ListEntry = { scope: 'user', owner: 'bob@example.com', action: 'allow', kind: 'address', value: 'alice@example.org', skip: ['spamassassin'], note, by: 'root', id: a.entry.id, added: a.entry.added };
      assert.deepEqual(a.entry, want);
      assert.deepEqual(await store.getListEntry(a.entry.id), want);
      // The same value in another list is another entry.
      const g = await store.putListEntry(entry(GLOBAL, 'block', 'alice@example.org'));
      assert.notEqual(g.entry.id, a.entry.id);
      // The same value in the same list: replaced (allow becomes block), same id, the old one reported.
      const b = await store.putListEntry(entry(BOB, 'block', 'alice@example.org', { by: 'bob@example.com' }));
      assert.equal(b.entry.id, a.entry.id);
      assert.deepEqual(b.replaced, want);
      const now = await store.getListEntry(a.entry.id);
      assert.equal(now?.action, 'block');
      assert.equal(now?.skip, undefined);
      assert.equal(now?.note, undefined);
      assert.equal(now?.by, 'bob@example.com');
      const bobs = await store.findListEntries({ scope: 'user', owner: 'bob@example.com' });
      assert.equal(bobs.total, 1);
      assert.deepEqual(bobs.entries.map((e) => e.id), [a.entry.id]);
      assert.equal((await store.findListEntries({})).total, 2);
      assert.equal((await store.findListEntries({ action: 'allow' })).total, 0);
      assert.equal((await store.findListEntries({ scope: 'user', owner: "bob@example.com' OR '1'='1" })).total, 0);
      assert.equal(await store.getListEntry('0000000000000000'), undefined);
    }));

  test('lists: an entry is removed only from the list named; removing it twice finds nothing', () =>
    use(async ({ store }) => {
      const { entry: e } = await store.putListEntry(entry(BOB, 'allow', 'alice@example.org'));
      assert.equal(await store.deleteListEntry(e.id, { scope: 'user', owner: 'carol@example.com' }), undefined);
      assert.equal(await store.deleteListEntry(e.id, DOMAIN), undefined);
      assert.ok(await store.getListEntry(e.id));
      assert.equal((await store.deleteListEntry(e.id, BOB))?.id, e.id);
      assert.equal(await store.getListEntry(e.id), undefined);
      assert.equal(await store.deleteListEntry(e.id), undefined);
    }));

  test('lists: lookups match the address, the domain only, a domain with its subdomains, and IPv4/IPv6 networks, in the lists asked for only', () =>
    use(async ({ store }) => {
      await store.putListEntries([
        entry(BOB, 'allow', 'alice@example.org'),
        entry(BOB, 'block', 'example.org'),
        entry(DOMAIN, 'block', '.spam.example'),
        entry(GLOBAL, 'block', '192.0.2.0/24'),
        entry(GLOBAL, 'allow', '192.0.2.128/25'),
        entry(GLOBAL, 'block', '2001:db8::/32'),
        entry({ scope: 'user', owner: 'carol@example.com' }, 'block', 'alice@example.org'),
      ]);
      // Entries added at once are listed in the order given.
      assert.deepEqual((await store.findListEntries({ scope: 'global' })).entries.map((e) => e.value), ['192.0.2.0/24', '192.0.2.128/25', '2001:db8::/32']);
      assert.deepEqual(await matched(store, 'Alice@Example.org', undefined), ['user:allow:address:alice@example.org', 'user:block:domain:example.org']);
      // The domain-only entry does not cover a subdomain; the with-subdomains one covers it and itself.
      assert.deepEqual(await matched(store, 'x@mail.example.org', undefined), []);
      assert.deepEqual(await matched(store, 'x@spam.example', undefined), ['domain:block:subdomains:spam.example']);
      assert.deepEqual(await matched(store, 'x@a.b.spam.example', undefined), ['domain:block:subdomains:spam.example']);
      assert.deepEqual(await matched(store, 'x@notspam.example', undefined), []);
      // Networks: every prefix that contains the client; IPv4-mapped IPv6 is the IPv4 address.
      assert.deepEqual(await matched(store, 'x@y.example', '192.0.2.7'), ['global:block:network:192.0.2.0/24']);
      assert.deepEqual(await matched(store, 'x@y.example', '192.0.2.200'), ['global:allow:network:192.0.2.128/25', 'global:block:network:192.0.2.0/24']);
      assert.deepEqual(await matched(store, 'x@y.example', '::ffff:192.0.2.7'), ['global:block:network:192.0.2.0/24']);
      assert.deepEqual(await matched(store, 'x@y.example', '192.0.3.1'), []);
      assert.deepEqual(await matched(store, 'x@y.example', '2001:db8:1::5'), ['global:block:network:2001:db8::/32']);
      assert.deepEqual(await matched(store, 'x@y.example', '2001:db9::5'), []);
      // A bounce matches networks only.
      assert.deepEqual(await matched(store, '', '192.0.2.7'), ['global:block:network:192.0.2.0/24']);
      // Only the lists asked for.
      assert.deepEqual(await matched(store, 'alice@example.org', '192.0.2.7', [GLOBAL]), ['global:block:network:192.0.2.0/24']);
      assert.deepEqual(await matched(store, 'alice@example.org', undefined, [{ scope: 'user', owner: 'carol@example.com' }]), ['user:block:address:alice@example.org']);
      assert.deepEqual(await matched(store, 'alice@example.org', undefined, []), []);
      // Hostile senders are only looked up, never interpreted.
      assert.deepEqual(await matched(store, "x' OR '1'='1@example.org", undefined), ['user:block:domain:example.org']);
      assert.deepEqual(await matched(store, '%@%', '999.1.1.1'), []);
    }));

  test('lists: a network removed no longer matches, in another connection too; an import with a bad entry keeps none', () =>
    use(async ({ store, another }) => {
      const { entry: net } = await store.putListEntry(entry(GLOBAL, 'block', '198.51.100.0/24'));
      await store.putListEntry(entry(GLOBAL, 'block', '203.0.113.0/24'));
      const other = await another();
      try {
        assert.deepEqual(await matched(other, 'x@y.example', '198.51.100.9'), ['global:block:network:198.51.100.0/24']);
        await store.deleteListEntry(net.id);
        assert.deepEqual(await matched(other, 'x@y.example', '198.51.100.9'), []);
        assert.deepEqual(await matched(other, 'x@y.example', '203.0.113.9'), ['global:block:network:203.0.113.0/24']);
        const before = (await other.findListEntries({})).total;
        await assert.rejects(other.putListEntries([entry(GLOBAL, 'allow', 'new@example.net'), { ...entry(GLOBAL, 'allow', 'x@example.net'), kind: 'nonsense' as never }]));
        assert.equal((await store.findListEntries({})).total, before);
        assert.equal(await other.putListEntries([entry(GLOBAL, 'allow', 'new@example.net'), entry(GLOBAL, 'block', '203.0.113.0/24')]), 1);
        assert.equal((await store.findListEntries({})).total, before + 1);
      } finally {
        await other.close();
      }
    }));
}
