// The console is a room of its own: a message through bin/nqqueue in queue mode — plain or quarantined,
// with a [web] section in the settings — loads nothing of src/web and not fastify.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { setupsForThisFile } from '../helpers/nqq.js';
import { installConsole } from '../helpers/web.js';

const make = setupsForThisFile();

test('queue mode loads nothing of the console, for a plain message or a quarantined one', { timeout: 60_000 }, async () => {
  const s = make();
  installConsole(s);
  // Only example.com's own recipients are flagged and held; another local domain passes plainly.
  s.write('rcpthosts', 'example.com\nplain.example\n');
  s.write('nqqueue.cfb', 'example.com:flagger;quarantine=all\n');
  const hook = join(s.dir, 'modules-hook.mjs');
  writeFileSync(
    hook,
    [
      "import { registerHooks } from 'node:module';",
      "import { appendFileSync } from 'node:fs';",
      'const out = process.env.NQQ_TEST_MODULES;',
      'registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); appendFileSync(out, r.url + "\\n"); return r; } });',
      '',
    ].join('\n'),
  );
  const run = async (to: string, list: string) => {
    const r = await s.run({ to: [to], extraEnv: { NODE_OPTIONS: `--import=${pathToFileURL(hook).href}`, NQQ_TEST_MODULES: list } });
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(list, 'utf8').split('\n').filter(Boolean);
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
