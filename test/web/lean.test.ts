// The console is a room of its own: a message through bin/nqqueue in queue mode — plain or quarantined,
// with a [web] section in the settings — loads nothing of src/web and not fastify.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { moduleRecorder } from '../helpers/modules.js';
import { setupsForThisFile } from '../helpers/nqq.js';
import { installConsole } from '../helpers/web.js';

const make = setupsForThisFile();

test('queue mode loads nothing of the console, for a plain message or a quarantined one', { timeout: 60_000 }, async () => {
  const s = make();
  installConsole(s);
  // Only example.com's own recipients are flagged and held; another local domain passes plainly.
  s.write('rcpthosts', 'example.com\nplain.example\n');
  s.write('nqqueue.cfb', 'example.com:flagger;quarantine=all\n');
  const modules = moduleRecorder(s.dir);
  const run = async (to: string, list: string) => {
    const r = await s.run({ to: [to], extraEnv: modules.env(list) });
    assert.equal(r.code, 0, r.stderr);
    return modules.read(list);
  };
  const consoleModules = (mods: string[]) => mods.filter((m) => /\/dist\/web\/|\/dist\/cli\/commands\/web\.js|\/node_modules\/(fastify|@fastify|find-my-way|light-my-request|avvio)\//.test(m));
  const plain = await run('someone@plain.example', join(s.dir, 'plain.txt'));
  assert.ok(plain.some((m) => m.endsWith('/dist/cli/queue-mode.js')), 'the hook sees the modules');
  assert.deepEqual(consoleModules(plain), []);
  const held = await run('alice@example.com', join(s.dir, 'held.txt'));
  assert.ok(held.some((m) => m.endsWith('/dist/plugins/quarantine.js')), 'the quarantine ran');
  assert.deepEqual(consoleModules(held), []);
  assert.equal(s.standIn.deliveries().length, 1, 'the plain one was queued, the other held');
});
