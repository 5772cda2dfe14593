// The measured memory needs: one table in src/ops/limits.ts and the same figures in bin/nqqueue's check.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { addressNeed, checkLimits, readLimits, START } from '../../src/ops/limits.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const MB = 1024 * 1024;

test("bin/nqqueue checks the same START figures as src/ops/limits.ts", () => {
  const text = readFileSync(NQQUEUE_BIN, 'utf8');
  const rows = [...text.matchAll(/need_d=(\d+) base=(\d+) stacks=(\d+)/g)].map((m) => m.slice(1).map(Number));
  // Newest line first, as the launcher tests them.
  assert.deepEqual(rows, [24, 22, 20].map((v) => [START[v]!.data, START[v]!.addressBase, START[v]!.stacks]));
});

test('readLimits parses /proc/self/limits; checkLimits names each limit that is too low, with the fix', () => {
  const text = [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max stack size            12000000             unlimited            bytes     ',
    'Max data size             12000000             unlimited            bytes     ',
    'Max address space         12000000             unlimited            bytes     ',
  ].join('\n');
  const l = readLimits(text);
  assert.deepEqual(l, { data: 12000000, address: 12000000, stack: 12000000 });
  const lines = checkLimits(l, '20.20.2');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^limits: data size \(ulimit -d, softlimit -d or -m\) is 11 MB; Node\.js 20 needs 150 MB/);
  assert.match(lines[1]!, /^limits: address space \(ulimit -v, softlimit -a or -m\) is 11 MB; Node\.js 20 needs \d+ MB with a 11 MB stack limit/);
  assert.deepEqual(checkLimits(readLimits('Max data size unlimited unlimited bytes\n'), '24.1.0'), []);
  assert.deepEqual(checkLimits({ data: 2000 * MB, address: undefined, stack: undefined }, '24.1.0'), []);
  assert.equal(checkLimits({ data: 500 * MB, address: undefined, stack: undefined }, '24.1.0').length, 1);
  assert.equal(addressNeed(START[20]!, undefined), START[20]!.addressBase + 5 * 8 * MB);
});
