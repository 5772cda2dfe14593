// The measured memory needs: one table in src/ops/limits.ts and the same figures in bin/nqqueue's check.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { addressNeed, checkLimits, readLimits, RECOMMENDED, START } from '../../src/ops/limits.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const MB = 1024 * 1024;
/** The Node.js line this suite runs on (npm test runs it on the node the build recorded). */
const LINE = Number(process.versions.node.split('.')[0]) >= 24 ? 24 : 22;

test("bin/nqqueue checks the same START figures as src/ops/limits.ts", () => {
  const text = readFileSync(NQQUEUE_BIN, 'utf8');
  const rows = [...text.matchAll(/need_d=(\d+) base=(\d+) stacks=(\d+)/g)].map((m) => m.slice(1).map(Number));
  // Newest line first, as the launcher tests them.
  assert.deepEqual(rows, [24, 22].map((v) => [START[v]!.data, START[v]!.addressBase, START[v]!.stacks]));
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
  const lines = checkLimits(l, process.versions.node);
  assert.equal(lines.length, 2);
  const want = RECOMMENDED[LINE]!;
  assert.match(lines[0]!, new RegExp(`^limits: data size \\(ulimit -d, softlimit -d or -m\\) is 11 MB; Node\\.js ${LINE} needs ${want.data / MB} MB`));
  assert.match(
    lines[1]!,
    new RegExp(`^limits: address space \\(ulimit -v, softlimit -a or -m\\) is 11 MB; Node\\.js ${LINE} needs ${Math.round(addressNeed(want, 12000000) / MB)} MB with a 11 MB stack limit`),
  );
  // Each supported line by its own figures; a newer line than measured by the newest.
  assert.match(checkLimits(l, '22.13.0')[0]!, /Node\.js 22 needs 150 MB/);
  assert.match(checkLimits(l, '24.1.0')[0]!, /Node\.js 24 needs 1000 MB/);
  assert.match(checkLimits(l, '26.0.0')[0]!, /Node\.js 26 needs 1000 MB/);
  assert.deepEqual(checkLimits(readLimits('Max data size unlimited unlimited bytes\n'), '24.1.0'), []);
  assert.deepEqual(checkLimits({ data: 2000 * MB, address: undefined, stack: undefined }, '24.1.0'), []);
  assert.equal(checkLimits({ data: 500 * MB, address: undefined, stack: undefined }, '24.1.0').length, 1);
  assert.equal(addressNeed(START[22]!, undefined), START[22]!.addressBase + 5 * 8 * MB);
  assert.equal(addressNeed(START[24]!, undefined), START[24]!.addressBase + 12 * 8 * MB);
});
