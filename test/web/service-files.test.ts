// The console's service files: the daemontools run scripts parse and are executable, and they and the
// systemd unit start `nqqueue web` as the same user with the same environment as serve's.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { REPO } from '../helpers/nqq.js';

const etc = join(REPO, 'etc');

test('etc/daemontools-web: run and log/run are executable sh scripts starting nqqueue web as qmaild', () => {
  for (const f of ['daemontools-web/run', 'daemontools-web/log/run']) {
    const p = join(etc, f);
    assert.equal(statSync(p).mode & 0o111, 0o111, `${f} is executable`);
    const r = spawnSync('/bin/sh', ['-n', p], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
  const run = readFileSync(join(etc, 'daemontools-web/run'), 'utf8');
  assert.match(run, /setuidgid qmaild \/opt\/nqqueue\/bin\/nqqueue web\n/);
  for (const v of ['NQQUEUE_CONTROLDIR', 'NQQUEUE_HOME', 'NQQUEUE_QMAILQUEUE']) assert.match(run, new RegExp(`${v}=`));
  assert.match(readFileSync(join(etc, 'daemontools-web/log/run'), 'utf8'), /multilog t \.\/main/);
});

test('etc/systemd/nqqueue-web.service starts nqqueue web as serve\'s user, with serve\'s environment', () => {
  const unit = readFileSync(join(etc, 'systemd/nqqueue-web.service'), 'utf8');
  const serve = readFileSync(join(etc, 'systemd/nqqueue.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/opt\/nqqueue\/bin\/nqqueue web$/m);
  for (const key of ['User', 'Group']) assert.equal(new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1], new RegExp(`^${key}=(.*)$`, 'm').exec(serve)?.[1], key);
  const envOf = (t: string) => [...t.matchAll(/^Environment=(.*)$/gm)].map((m) => m[1]).sort();
  assert.deepEqual(envOf(unit), envOf(serve));
  assert.match(unit, /^Restart=always$/m);
  assert.match(unit, /^\[Install\]\nWantedBy=multi-user\.target$/m);
});
