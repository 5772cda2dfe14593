// Learning is a room of its own: a message through bin/nqqueue in queue mode — scanned by dspam, with
// a [learn] section that turns every learner on — loads nothing of src/learn and not the store.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { makeDspamStandIn } from '../helpers/dspam.js';
import { learnSettings } from '../helpers/learn.js';
import { moduleRecorder } from '../helpers/modules.js';
import { setupsForThisFile } from '../helpers/nqq.js';

const make = setupsForThisFile();

test('queue mode loads nothing of the learners', { timeout: 60_000 }, async () => {
  const s = make();
  const dspam = makeDspamStandIn(s.dir);
  s.write('nqqueue.conf', learnSettings({ dspam: dspam.path, spamd: '127.0.0.1:1', controller: 'http://127.0.0.1:1' }, 'every = 1h\nmaildirs = /nonexistent\n'));
  s.write('nqqueue.cfb', `:dspam=pass,bin=${dspam.path}\n`);
  const modules = moduleRecorder(s.dir);
  const list = join(s.dir, 'modules.txt');
  const r = await s.run({ to: ['alice@example.com'], extraEnv: modules.env(list) });
  assert.equal(r.code, 0, r.stderr);
  const mods = modules.read(list);
  assert.ok(mods.some((m) => m.endsWith('/dist/plugins/dspam.js')), 'the hook sees the modules');
  assert.deepEqual(mods.filter((m) => /\/dist\/learn\/|\/dist\/cli\/commands\/learn\.js|\/dist\/store\//.test(m)), []);
});
