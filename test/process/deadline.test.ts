// The message deadline covers delivery: a qmail-queue call still running at the deadline is stopped;
// copies not yet queued then go to the retry spool (exit 0) — or, when none was queued yet, the
// message is deferred (71: nothing was queued, so the client's retry duplicates nothing).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { pluginDir, rcptsOf, setupsForThisFile, withoutTrace } from '../helpers/nqq.js';

const make = setupsForThisFile();

const spooled = (home: string) => {
  try {
    return readdirSync(join(home, 'spool', 'new'));
  } catch {
    return [];
  }
};

function twoCopies() {
  const s = make({ standIn: { hangOn: [2] }, files: { 'nqqueue.conf': 'deadline = 5s\nqueue_timeout = 100s\n' } });
  const tag = s.script('tag.sh', "#!/bin/sh\ncat >/dev/null\nprintf 'X-Tag: yes\\n'\n");
  s.write('nqqueue.cfb', `tagged@example.com:exec=${tag}\n`);
  return s;
}

test('a qmail-queue hanging past the deadline for a later copy: that copy is spooled, exit 0 at the deadline', async () => {
  const s = twoCopies();
  const r = await s.run({ to: ['tagged@example.com', 'other@remote.example'], timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.ms < 25_000, `answered at the deadline, not at queue_timeout (${r.ms} ms)`);
  assert.equal(r.deliveries.length, 1);
  assert.deepEqual(rcptsOf(r.deliveries[0]!), ['tagged@example.com']);
  assert.match(r.logLines[0]!, /stopped at the message deadline/);
  const entries = spooled(s.home);
  assert.equal(entries.length, 1);
  assert.ok(readFileSync(join(s.home, 'spool', 'new', entries[0]!)).includes('Tother@remote.example\0'));
  // The spooled copy is delivered by a later flush, once.
  s.standIn.setOptions({});
  const f = s.command(['flush']);
  assert.equal(f.code, 0, f.stderr);
  const all = s.standIn.deliveries();
  assert.equal(all.length, 2);
  assert.deepEqual(rcptsOf(all[1]!), ['other@remote.example']);
  assert.doesNotMatch(withoutTrace(all[1]!.message).toString(), /X-Tag/);
  assert.deepEqual(spooled(s.home), []);
});

test('past the deadline before any copy was queued: deferred (71), nothing spooled', async () => {
  const s = make({ standIn: { hangOn: [1] }, files: { 'nqqueue.conf': 'deadline = 4s\nqueue_timeout = 100s\n' } });
  const r = await s.run({ to: ['a@example.com', 'b@remote.example'], errorFd: 'none', timeoutMs: 60_000 });
  assert.equal(r.code, 71, r.stderr);
  assert.ok(r.ms < 25_000, `deferred at the deadline, not at queue_timeout (${r.ms} ms)`);
  assert.equal(r.deliveries.length, 0);
  assert.deepEqual(spooled(s.home), []);
  assert.match(r.logLines[0]!, /result=defer/);
});

test('a plugin whose onCommit never finishes: deferred (71) at the deadline, nothing queued', async () => {
  const s = make({ files: { 'nqqueue.conf': 'deadline = 3s\n' } });
  const dir = pluginDir(s, {
    keeper:
      "export default { name: 'keeper', version: '1', stages: ['per-user'], configure() { return {}; },\n" +
      "  async run(ctx) { ctx.onCommit(() => new Promise(() => {})); return { verdict: 'drop', reason: 'kept' }; } };\n",
  });
  s.write('nqqueue.conf', `deadline = 3s\nplugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', 'kept@example.com:keeper\n');
  const r = await s.run({ to: ['kept@example.com', 'other@example.com'], errorFd: 'none', timeoutMs: 60_000 });
  assert.equal(r.code, 71, r.stderr);
  assert.ok(r.ms < 20_000, `deferred at the deadline (${r.ms} ms)`);
  assert.equal(r.deliveries.length, 0);
  assert.match(r.logLines.join('\n'), /code=NQQ_ERR_DEADLINE reason="message deadline of 3000 ms passed at the commit point/);
});
