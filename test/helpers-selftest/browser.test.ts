import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';

import { browserTest, startBrowser } from '../helpers/browser.js';

const fixture = join(import.meta.dirname, '..', 'fixtures', 'browser-missing.js');

function runFixture(env: Record<string, string>) {
  const { CI: _ci, NODE_TEST_CONTEXT: _ctx, ...rest } = process.env;
  return spawnSync(process.execPath, ['--test', '--test-reporter=tap', fixture], {
    env: { ...rest, NQQ_CHROMIUM: '/nonexistent/chromium', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('without Chromium a browser test is skipped with the reason, and fails under CI=true', () => {
  const skipped = runFixture({});
  assert.equal(skipped.status, 0, skipped.stdout + skipped.stderr);
  assert.match(skipped.stdout, /# SKIP browser test skipped: \/nonexistent\/chromium is not installed/);
  const failed = runFixture({ CI: 'true' });
  assert.equal(failed.status, 1, failed.stdout + failed.stderr);
  assert.match(failed.stdout, /not ok 1 - needs the browser/);
  assert.match(failed.stdout, /CI=true but \/nonexistent\/chromium is not installed/);
});

browserTest('the browser records every request (page and frames), console message, dialog and error, and lets nothing out', async () => {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    if (req.url === '/') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!DOCTYPE html><title>t</title>
<script>console.log('hello from the page'); alert('a dialog'); fetch('http://203.0.113.7/fetched').catch(() => {});</script>
<img src="http://203.0.113.7/img.png">
<iframe srcdoc="<img src='http://203.0.113.8/in-frame.png'>"></iframe>
<script>setTimeout(() => { throw new Error('uncaught one') }, 0)</script>`);
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await startBrowser();
  try {
    const p = await browser.newPage(origin);
    await p.page.goto(`${origin}/`);
    await p.page.waitForTimeout(500);
    const outside = p.requestsOutside(origin).map((r) => r.url);
    assert.ok(outside.includes('http://203.0.113.7/fetched'), outside.join(' '));
    assert.ok(outside.includes('http://203.0.113.7/img.png'));
    assert.ok(outside.includes('http://203.0.113.8/in-frame.png'));
    assert.deepEqual(
      p.subframeRequests().map((r) => r.url),
      ['http://203.0.113.8/in-frame.png'],
    );
    assert.deepEqual(p.dialogs, [{ type: 'alert', message: 'a dialog' }]);
    assert.ok(p.console.some((m) => m.text === 'hello from the page'));
    assert.ok(p.errors.some((e) => e.includes('uncaught one')));
    // The page itself was fetched from the server, the rest was stopped in the browser.
    assert.ok(hits >= 1);
  } finally {
    await browser.stop();
    server.close();
  }
});
