// Memory limits too low for Node.js (qmail run scripts wrap qmail-smtpd in `softlimit -m`): the message is
// deferred (71) with a log line that says why — never a silent crash ("451 qq crashed", nothing logged)
// or a hang. In daemon mode the C client itself needs little; its standalone fallback says why the same way.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { DAEMON_MODE, PROGRAM, setupsForThisFile } from '../helpers/nqq.js';
import { envelopeOf, runSmtpd } from '../helpers/smtpd.js';

const make = setupsForThisFile();

/** What `softlimit -m 12000000` sets (data, stack, address space; KiB for ulimit), then exec the program. */
const SOFTLIMIT_M = ['-c', 'ulimit -d 11718; ulimit -s 11718; ulimit -v 11718; exec "$0"'];

test('under softlimit -m 12000000: deferred with a log line naming the limit, nothing queued', async () => {
  const s = make();
  const r = await s.run({ bin: '/bin/sh', args: [...SOFTLIMIT_M, PROGRAM], timeoutMs: 20_000 });
  assert.equal(r.timedOut, false, 'it must not hang');
  assert.equal(r.signal, null, 'a crash is what it must not do');
  assert.deepEqual(r.deliveries, []);
  if (DAEMON_MODE) {
    // The client reached the daemon; the qmail-queue stand-in (a node script, unlike the real one) could
    // not start under the limit: a failed first delivery, deferred (with the text on fd 6) and logged.
    assert.equal(r.code, 82, r.stderr);
    assert.match(r.errorText.toString(), /^Z/);
    assert.match(r.stderr, /nqqueue: .*via=daemon/);
  } else {
    assert.equal(r.code, 71, r.stderr);
    assert.match(
      r.stderr,
      /^nqqueue: result=defer code=NQQ_ERR_RUNTIME reason="memory limits too low for Node\.js: address space, data and stack limits are all 11999232 bytes, as softlimit -m sets them; each of node's threads reserves a whole stack of the stack limit, so no -m value lets node start; see the README, Limits: use softlimit -d instead of -m, or daemon mode" exit=71$/m,
    );
  }
});

test('an address-space limit node cannot start in (ulimit -v 600000 KiB): 71 and the figure it needs', async () => {
  const s = make();
  const r = await s.run({ bin: '/bin/sh', args: ['-c', 'ulimit -s 8192; ulimit -v 600000; exec "$0"', PROGRAM], timeoutMs: 20_000 });
  assert.equal(r.signal, null);
  assert.equal(r.code, DAEMON_MODE ? 82 : 71, r.stderr);
  assert.deepEqual(r.deliveries, []);
  if (!DAEMON_MODE) {
    assert.match(r.stderr, /code=NQQ_ERR_RUNTIME reason="memory limit too low for Node\.js \d+: the address space limit is 614400000 bytes \(softlimit -a or -m, ulimit -v\), it needs at least \d+ to start with a stack limit of 8388608 /);
  }
});

/** The run script's data limit for the Node.js line the suite runs on (the README's figures). */
const ENOUGH = Number(process.versions.node.split('.')[0]) >= 24 ? 1_100_000_000 : 200_000_000;

test(`a data limit that is enough (softlimit -d ${ENOUGH}): delivered as usual`, async () => {
  const s = make();
  const r = await s.run({ bin: '/bin/sh', args: ['-c', `ulimit -d ${Math.floor(ENOUGH / 1024)}; exec "$0"`, PROGRAM], timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
});

test('daemon-mode fallback under softlimit -m: the standalone program says why, 71', async () => {
  const s = make();
  // A home with no daemon listening: nqqueue-qq runs the standalone program on its input.
  const home = join(s.dir, 'no-daemon-home');
  mkdirSync(home, { mode: 0o700 });
  const qq = PROGRAM.endsWith('nqqueue-qq') ? PROGRAM : PROGRAM.replace(/nqqueue$/, 'nqqueue-qq');
  const r = await runSmtpd({
    bin: '/bin/sh',
    args: [...SOFTLIMIT_M, qq],
    message: 'Subject: x\n\nhi\n',
    envelope: envelopeOf('a@client.example', ['rcpt@example.com']),
    env: { ...s.env, NQQUEUE_HOME: home },
    timeoutMs: 20_000,
  });
  assert.equal(r.signal, null);
  assert.equal(r.code, 71, r.stderr);
  assert.deepEqual(s.standIn.deliveries(), []);
  assert.match(r.stderr, /running the standalone program/);
  assert.match(r.stderr, /^nqqueue: result=defer code=NQQ_ERR_RUNTIME reason="memory limits too low for Node\.js: address space, data and stack limits are all 11999232 bytes, as softlimit -m sets them/m);
});
