import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HostRangeError, satisfies } from '../../src/plugin-api/host-range.js';

test('host ranges as npm writes them', () => {
  const cases: [string, string, boolean][] = [
    ['0.1.0', '>=0.1 <1', true],
    ['1.0.0', '>=0.1 <1', false],
    ['0.0.9', '>=0.1 <1', false],
    ['0.1.0', '>= 0.1.0', true],
    ['0.1.0', '^0.1', true],
    ['0.2.0', '^0.1', false],
    ['0.1.7', '^0.1.3', true],
    ['0.1.2', '^0.1.3', false],
    ['1.9.0', '^1.2', true],
    ['2.0.0', '^1.2', false],
    ['0.0.3', '^0.0.3', true],
    ['0.0.4', '^0.0.3', false],
    ['1.2.9', '~1.2.3', true],
    ['1.3.0', '~1.2.3', false],
    ['1.9.0', '~1', true],
    ['0.1.5', '0.1.x', true],
    ['0.2.0', '0.1.x', false],
    ['0.1.5', '0.1', true],
    ['0.1.0', '*', true],
    ['0.1.0', '', true],
    ['0.1.0', '>0.1', false],
    ['0.2.0', '>0.1', true],
    ['0.1.1', '>0.1.0', true],
    ['0.1.9', '<=0.1', true],
    ['0.2.0', '<=0.1', false],
    ['0.1.0', '<0.1', false],
    ['0.1.0', '>=2 || 0.1.x', true],
    ['0.1.0', '>=2 || >=3', false],
    ['0.1.0', '=0.1.0', true],
    ['0.1.0', 'v0.1.0', true],
  ];
  for (const [v, r, want] of cases) assert.equal(satisfies(v, r), want, `${v} in ${JSON.stringify(r)}`);
});

test('a range that cannot be read is an error that says so', () => {
  for (const bad of ['soon', '>=a.b', '1.2 - 2', '>=0.1-beta', '!0.1']) {
    assert.throws(() => satisfies('0.1.0', bad), HostRangeError, bad);
  }
});
