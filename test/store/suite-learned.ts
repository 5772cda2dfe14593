// The learning part of the store suite (what `nqqueue learn` remembers): every engine must pass it.
// Called from suite.ts with the same factory as the rest.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';

import type { StoreUnderTest } from './suite.js';

const digest = (s: string) => createHash('sha256').update(s).digest('hex');

export function learnedSuite(use: (fn: (t: StoreUnderTest) => Promise<void>) => Promise<void>): void {
  describe('learned', () => {
    test('a key is unknown until marked; then its class, per user and learner', () =>
      use(async ({ store }) => {
        const key = { digest: digest('m1'), user: 'alice@example.com', learner: 'spamassassin' };
        assert.equal(await store.learnedClass(key), undefined);
        await store.markLearned({ ...key, class: 'spam', at: '2026-12-01T10:00:00.000Z' });
        assert.equal(await store.learnedClass(key), 'spam');
        // The same message for another user, another learner: not learned.
        assert.equal(await store.learnedClass({ ...key, user: 'bob@example.com' }), undefined);
        assert.equal(await store.learnedClass({ ...key, learner: 'rspamd' }), undefined);
        assert.equal(await store.learnedClass({ ...key, digest: digest('m2') }), undefined);
        // Users are case-insensitive (addresses as the store keeps them).
        assert.equal(await store.learnedClass({ ...key, user: 'Alice@Example.COM' }), 'spam');
      }));

    test('taught again as the other class replaces the class; counts per learner and class', () =>
      use(async ({ store }) => {
        const key = { digest: digest('m3'), user: 'alice@example.com', learner: 'rspamd' };
        await store.markLearned({ ...key, class: 'spam', at: '2026-12-01T10:00:00.000Z' });
        await store.markLearned({ ...key, class: 'ham', at: '2026-12-01T11:00:00.000Z' });
        assert.equal(await store.learnedClass(key), 'ham');
        await store.markLearned({ ...key, digest: digest('m4'), class: 'spam', at: '2026-12-01T11:00:00.000Z' });
        await store.markLearned({ ...key, digest: digest('m4'), learner: 'dspam', class: 'spam', at: '2026-12-01T11:00:00.000Z' });
        await store.markLearned({ ...key, digest: digest('m5'), user: 'bob@example.com', class: 'spam', at: '2026-12-01T11:00:00.000Z' });
        assert.deepEqual(await store.learnedCounts('alice@example.com'), [
          { learner: 'dspam', class: 'spam', count: 1 },
          { learner: 'rspamd', class: 'ham', count: 1 },
          { learner: 'rspamd', class: 'spam', count: 1 },
        ]);
        assert.deepEqual(await store.learnedCounts(), [
          { learner: 'dspam', class: 'spam', count: 1 },
          { learner: 'rspamd', class: 'ham', count: 1 },
          { learner: 'rspamd', class: 'spam', count: 2 },
        ]);
      }));

    test('another connection sees what one marked; bad values are refused, not stored', () =>
      use(async (t) => {
        const key = { digest: digest('m6'), user: "o'brien%_@example.com", learner: 'dspam' };
        await t.store.markLearned({ ...key, class: 'ham', at: '2026-12-01T10:00:00.000Z' });
        const other = await t.another();
        try {
          assert.equal(await other.learnedClass(key), 'ham');
        } finally {
          await other.close();
        }
        await assert.rejects(t.store.markLearned({ ...key, class: 'eggs' as 'spam', at: '2026-12-01T10:00:00.000Z' }), TypeError);
        await assert.rejects(t.store.markLearned({ ...key, digest: "x' OR 1=1", class: 'spam', at: '2026-12-01T10:00:00.000Z' }), TypeError);
        await assert.rejects(t.store.markLearned({ ...key, class: 'spam', at: 'yesterday' }), TypeError);
        assert.equal(await t.store.learnedClass(key), 'ham');
      }));
  });
}
