// `nqqueue serve` delivers the retry spool itself: once before it listens, then every flush_interval,
// and logs what it did — a daemon-mode site needs no cron entry.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { rcptsOf, setupsForThisFile } from '../helpers/nqq.js';
import { NQQUEUE_BIN, runSmtpd, envelopeOf } from '../helpers/smtpd.js';

const make = setupsForThisFile();

async function waitFor(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('serve flushes the spool at start and every flush_interval, logging each entry', async () => {
  // Calls: 1 ok, 2 fails (spooled), 3 = the flush at start, 4 ok, 5 fails (spooled), 6 = a periodic flush.
  const s = make({ rcpthosts: ['example.com'], standIn: { failOn: [{ call: 2, code: 53 }, { call: 5, code: 53 }] } });
  s.write('nqqueue.cfb', 'a@example.com:header=X-A:/never/\n');
  const send = () =>
    runSmtpd({ bin: NQQUEUE_BIN, message: 'Subject: x\n\nhi\n', envelope: envelopeOf('s@client.example', ['a@example.com', 'b@example.com']), env: s.env });
  const first = await send();
  assert.equal(first.code, 0, first.stderr);
  const spoolNew = join(s.home, 'spool', 'new');
  assert.equal(readdirSync(spoolNew).length, 1);

  s.write('nqqueue.conf', 'flush_interval = 1s\n');
  const daemon = spawn(NQQUEUE_BIN, ['serve'], { env: s.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  try {
    await waitFor('listening', () => /listening on/.test(log));
    // The pass at start came before the daemon listened.
    assert.match(log, /nqqueue serve: flush: spool \S+: delivered\nnqqueue serve: flush: 1 delivered, 0 kept\n(.|\n)*listening on/);
    assert.deepEqual(readdirSync(spoolNew), []);
    assert.deepEqual(s.standIn.deliveries().flatMap(rcptsOf).sort(), ['a@example.com', 'b@example.com']);

    const second = await send();
    assert.equal(second.code, 0, second.stderr);
    await waitFor('a periodic flush', () => (log.match(/flush: 1 delivered, 0 kept/g) ?? []).length === 2);
    assert.deepEqual(readdirSync(spoolNew), []);
    assert.equal(s.standIn.deliveries().length, 4);
    assert.deepEqual(s.standIn.deliveries().flatMap(rcptsOf).sort(), ['a@example.com', 'a@example.com', 'b@example.com', 'b@example.com'], 'each copy once');
    // Empty passes say nothing (one line every interval would drown the log).
    await sleep(1500);
    assert.equal((log.match(/0 delivered, 0 kept/g) ?? []).length, 0, log);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  assert.match(log, /nqqueue serve: stopped/);
});

test('a bad flush_interval is a settings error with file:line', () => {
  const s = make();
  s.write('nqqueue.conf', 'flush_interval = often\n');
  const r = s.command(['check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nqqueue\.conf:1: flush_interval: not a duration: "often"/);
});
