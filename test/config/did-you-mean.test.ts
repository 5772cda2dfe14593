import assert from 'node:assert/strict';
import { test } from 'node:test';

import { closest, didYouMean, editDistance } from '../../src/config/did-you-mean.js';

test('edit distance counts an adjacent transposition as one edit', () => {
  assert.equal(editDistance('hits', 'hits'), 0);
  assert.equal(editDistance('hist', 'hits'), 1);
  assert.equal(editDistance('sockett', 'socket'), 1);
  assert.equal(editDistance('', 'abc'), 3);
});

test('did you mean: close names only, every name equally close, and a case-only difference said so', () => {
  assert.equal(didYouMean('deadlin', ['deadline', 'timeout']), ' (did you mean "deadline"?)');
  assert.equal(didYouMean('hist', ['host', 'hits', 'user']), ' (did you mean "host" or "hits"?)');
  assert.equal(didYouMean('PASS', ['pass']), ' (did you mean "pass"? names are lower-case)');
  assert.equal(didYouMean('colour', ['tag', 'url']), '');
  assert.deepEqual(closest('hits', ['host']), [], 'two edits are too many for a short name');
  assert.deepEqual(closest('spamasassin', ['spamassassin', 'rspamd']), ['spamassassin']);
});
