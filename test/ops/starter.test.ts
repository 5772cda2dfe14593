// The starter configuration's single source: etc/examples/ is what src/ops/starter.ts renders for its
// example host (regenerate with `node scripts/examples.js`), the files check-config passes for any host,
// and clamd.conf is read for the addresses clamd really listens on.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { clamdConfAddresses } from '../../src/ops/discover.js';
import { EXAMPLE_BACKENDS, STARTER_FILES, starterFiles, USUAL, type Backends } from '../../src/ops/starter.js';
import { REPO, setupsForThisFile } from '../helpers/nqq.js';

const make = setupsForThisFile();

test('etc/examples/ holds exactly what nqqueue init writes for the example host (node scripts/examples.js)', () => {
  const files = starterFiles(EXAMPLE_BACKENDS);
  for (const name of STARTER_FILES) {
    assert.equal(readFileSync(join(REPO, 'etc', 'examples', name), 'utf8'), files[name], `etc/examples/${name} is stale: run node scripts/examples.js`);
  }
});

test('the starter files pass check-config whatever answered, over a TCP clamd too; an odd error text stays a comment', () => {
  const cases: Backends[] = [
    EXAMPLE_BACKENDS,
    {
      clamd: { address: '127.0.0.1:3310', answered: true, source: 'TCPAddr:TCPSocket in /etc/clamd.d/scan.conf' },
      spamd: { address: USUAL.spamd, answered: false, why: 'line one\nsocket = /etc/passwd' },
      rspamd: { address: USUAL.rspamd, answered: true },
    },
  ];
  for (const b of cases) {
    const s = make();
    const files = starterFiles(b);
    for (const name of STARTER_FILES) s.write(name, files[name]);
    const r = s.command(['check-config']);
    assert.equal(r.code, 0, r.stderr);
    // Every line is a comment, blank, a section, a key, or a routing line.
    for (const line of files['nqqueue.conf'].split('\n')) assert.match(line, /^(#.*|\[[a-z]+\]|[a-z_]+ = \S+|)$/, line);
  }
  const tcp = starterFiles(cases[1]!)['nqqueue.conf'];
  assert.match(tcp, /^\[clamav\]\nhost = 127\.0\.0\.1:3310$/m);
  assert.match(tcp, /^\[rspamd\]\nurl = http:\/\/127\.0\.0\.1:11333$/m);
  assert.match(tcp, /^# \(line one\\x0asocket = \/etc\/passwd\)\.$/m);
});

test('clamd.conf: LocalSocket, TCPAddr:TCPSocket (first TCPAddr; 127.0.0.1 for none or any), comments and quotes', () => {
  assert.deepEqual(clamdConfAddresses('# LocalSocket /commented\nLocalSocket /var/run/clamav/clamd.ctl\nFixStaleSocket true\n'), { socket: '/var/run/clamav/clamd.ctl' });
  assert.deepEqual(clamdConfAddresses('TCPSocket 3310\nTCPAddr 192.0.2.1\nTCPAddr 127.0.0.1\n'), { tcp: '192.0.2.1:3310' });
  assert.deepEqual(clamdConfAddresses('TCPSocket 3310\n'), { tcp: '127.0.0.1:3310' });
  assert.deepEqual(clamdConfAddresses('TCPSocket 3310\nTCPAddr 0.0.0.0\n'), { tcp: '127.0.0.1:3310' });
  assert.deepEqual(clamdConfAddresses('TCPSocket 3310\nTCPAddr ::1\n'), { tcp: '[::1]:3310' });
  assert.deepEqual(clamdConfAddresses('  LocalSocket "/run/clamd.scan/clamd.sock"\n'), { socket: '/run/clamd.scan/clamd.sock' });
  assert.deepEqual(clamdConfAddresses('LocalSocket relative.sock\nTCPSocket none\n'), {});
});
