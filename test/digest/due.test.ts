// When a digest is due (src/digest/run.ts isDue) and the one-run-at-a-time lock (src/digest/lock.ts).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { LOCK_FILE, takeDigestLock } from '../../src/digest/lock.js';
import { EARLY_MS, isDue } from '../../src/digest/run.js';

const MIN = 60_000;
const now = new Date(Date.UTC(2026, 11, 2, 12, 0, 0));
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();

test('isDue: never is never; the first digest at once; hourly and daily up to 5 minutes early', () => {
  assert.equal(EARLY_MS, 5 * MIN);
  for (const last of [undefined, ago(10 * 365 * 24 * 60 * MIN)]) assert.equal(isDue('never', last, now), false);
  assert.equal(isDue('hourly', undefined, now), true);
  assert.equal(isDue('daily', undefined, now), true);
  assert.equal(isDue('hourly', ago(54 * MIN), now), false);
  assert.equal(isDue('hourly', ago(55 * MIN), now), true);
  assert.equal(isDue('hourly', ago(59 * MIN + 58_000), now), true, 'cron at the same minute every hour');
  assert.equal(isDue('daily', ago(23 * 60 * MIN + 54 * MIN), now), false);
  assert.equal(isDue('daily', ago(23 * 60 * MIN + 55 * MIN), now), true);
  assert.equal(isDue('daily', ago(2 * 60 * MIN), now), false);
  assert.equal(isDue('hourly', ago(-10 * MIN), now), false, 'a last digest in the future (a clock set back) is not due');
  assert.equal(isDue('daily', 'not a date', now), true, 'unreadable bookkeeping does not stop digests');
});

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function home(): string {
  const d = mkdtempSync(join(tmpdir(), 'nqq-lock-'));
  dirs.push(d);
  return d;
}

test('the lock: one holder; given back; a dead holder or one silent for an hour is taken over', () => {
  const h = home();
  const a = takeDigestLock(h);
  assert.ok(!('heldBy' in a));
  assert.equal(readFileSync(join(h, LOCK_FILE), 'latin1'), `${process.pid}\n`);
  assert.equal(statSync(join(h, LOCK_FILE)).mode & 0o777, 0o600);
  a.release();
  assert.equal(existsSync(join(h, LOCK_FILE)), false);
  // Held by a live process (pid 1 is always there).
  writeFileSync(join(h, LOCK_FILE), '1\n');
  assert.deepEqual(takeDigestLock(h), { heldBy: 1 });
  // ... but silent for more than an hour: a PID reused by another program.
  const old = new Date(Date.now() - 2 * 3600_000);
  utimesSync(join(h, LOCK_FILE), old, old);
  const b = takeDigestLock(h);
  assert.ok(!('heldBy' in b));
  b.release();
  // A dead holder.
  writeFileSync(join(h, LOCK_FILE), '999999999\n');
  const c = takeDigestLock(h);
  assert.ok(!('heldBy' in c));
  // Releasing a lock someone else took over leaves theirs.
  writeFileSync(join(h, LOCK_FILE), '1\n');
  c.release();
  assert.equal(readFileSync(join(h, LOCK_FILE), 'latin1'), '1\n');
});
