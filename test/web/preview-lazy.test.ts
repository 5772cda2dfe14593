// nqqueue web does not load the sanitizer and its parsers before it listens: the preview module comes
// on the first preview (over 100 ms of loading saved at every start).

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { moduleRecorder } from '../helpers/modules.js';
import { setupsForThisFile } from '../helpers/nqq.js';
import { Browser, hold, installConsole, startWeb } from '../helpers/web.js';

const make = setupsForThisFile();

test('the preview module and sanitize-html are loaded on the first preview, not at start', { timeout: 60_000 }, async () => {
  const s = make();
  installConsole(s, { tcp: true });
  const [id] = await hold(s, { to: ['alice@example.com'], headers: 'Content-Type: text/html\n', body: '<p>hi</p>\n' });
  const modules = moduleRecorder(s.dir);
  const list = join(s.dir, 'modules.txt');
  writeFileSync(list, '');
  const web = await startWeb(s, modules.env(list));
  try {
    const loaded = () => modules.read(list);
    const preview = (mods: string[]) => mods.filter((m) => /\/dist\/web\/(preview|html-sanitize|html-text)\.js|\/node_modules\/(sanitize-html|htmlparser2|postcss)\//.test(m));
    assert.ok(loaded().some((m) => m.endsWith('/dist/web/server.js')), 'the hook sees the modules');
    assert.deepEqual(preview(loaded()), []);
    const alice = new Browser(web);
    await alice.login('alice@example.com', 'alice-secret');
    assert.equal((await alice.get(`/item/${id}?html=1`)).status, 200);
    const after = preview(loaded());
    assert.ok(after.some((m) => m.endsWith('/dist/web/preview.js')));
    assert.ok(after.some((m) => m.includes('/node_modules/sanitize-html/')));
  } finally {
    await web.stop();
  }
});
