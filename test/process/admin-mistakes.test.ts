// Mistakes an administrator makes that the program accepts (they are allowed by the contract) must at
// least be visible where the admin looks: explain and check-config.

import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { DAEMON_MODE, pluginDir, setupsForThisFile } from '../helpers/nqq.js';

const make = setupsForThisFile();

test('explain: an NQQFILE whose file does not exist is named, with the file that applies instead', () => {
  const s = make();
  s.write('nqqueue.cfb', ':black=bad@example.org\n');
  s.write('strict.cfb', ':black=worse@example.org\n');
  const typo = s.command(['explain', '--from', 'a@client.example', '--to', 'rcpt@example.com', '--env', 'NQQFILE=strickt']);
  assert.equal(typo.code, 0, typo.stderr);
  assert.match(typo.stdout, /NQQFILE=strickt, but \S*\/strickt\.cfb does not exist: the next file applies/);
  assert.match(typo.stdout, /per-user stage \(\S*\/nqqueue\.cfb\)/);
  const right = s.command(['explain', '--from', 'a@client.example', '--to', 'rcpt@example.com', '--env', 'NQQFILE=strict']);
  assert.equal(right.code, 0, right.stderr);
  assert.doesNotMatch(right.stdout, /does not exist/);
  assert.match(right.stdout, /per-user stage \(\S*\/strict\.cfb\)/);
});

test('check-config: an rcpthosts with only comments says that per-user files never apply', () => {
  const s = make();
  s.write('rcpthosts', '# example.com\n\n');
  s.write('nqqueue.cfb', ':black=bad@example.org\n');
  const r = s.command(['check-config']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: \S*\/rcpthosts lists no domain .*every recipient with a domain is remote .*nqqueue\.cfb never apply/);
  s.write('rcpthosts', 'example.com\n');
  assert.doesNotMatch(s.command(['check-config']).stdout, /lists no domain/);
});

test('maxsize = 0 (elsewhere "no limit") is refused where it is written: it would leave every message unscanned', async () => {
  const s = make();
  // A clamd that does not exist: a message that reached it would be deferred, one skipped would pass.
  s.write('general.cfb', ':clamav=socket=/nonexistent/clamd.ctl,maxsize=0\n');
  const r = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r.code, 71, r.stderr);
  assert.equal(s.standIn.calls().length, 0);
  assert.match(r.logLines.join('\n'), /code=NQQ_ERR_CONFIG reason="\S*general\.cfb:1: plugin clamav: maxsize=0: 0 would leave every message unscanned/);
  s.write('general.cfb', ':clamav=socket=/nonexistent/clamd.ctl\n');
  s.write('nqqueue.conf', '[clamav]\nmaxsize = 0\n');
  const r2 = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r2.code, 71, r2.stderr);
  assert.equal(s.standIn.calls().length, 0);
  assert.match(r2.logLines.join('\n'), /code=NQQ_ERR_CONFIG reason="\S*nqqueue\.conf:2: maxsize: 0 would leave every message unscanned/);
  const c = s.command(['check-config']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /nqqueue\.conf:2: maxsize: 0 would leave every message unscanned/);
});

test('a plugin with an async configure: its value is the config, and its rejection is a configuration error with file:line', async () => {
  const s = make();
  const dir = pluginDir(s, {
    // Refuses mail from the senders its (asynchronously read) configuration lists.
    deny: "export default { name: 'deny', version: '1', stages: ['general'], params: { keys: { who: {} } }, async configure({ params }) { await new Promise((r) => setTimeout(r, 5)); return { who: params.get('who') }; }, async run(ctx) { return ctx.sender === ctx.config.who ? { verdict: 'reject', text: 'denied by list' } : { verdict: 'accept' }; } };\n",
    broken: "export default { name: 'broken', version: '1', stages: ['general'], async configure() { throw new Error('cannot open the list'); }, async run() { return { verdict: 'accept' }; } };\n",
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':deny=who=sender@client.example\n');
  const denied = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(denied.code, 31, denied.stderr);
  assert.equal(s.standIn.calls().length, 0);

  s.write('general.cfb', ':black=nobody@example.org\nboss@example.com:broken\n');
  s.write('nqqueue.cfb', ':black=nobody@example.org\n');
  const r = await s.run({ from: 'boss@example.com', extraEnv: { NQQUEUE_REJECT: 'plain', RELAYCLIENT: '' } });
  assert.equal(r.code, 71, r.stderr);
  assert.equal(s.standIn.calls().length, 0);
  assert.match(r.logLines.join('\n'), /code=NQQ_ERR_CONFIG reason="\S*general\.cfb:2: plugin broken: cannot open the list"/);
  // The daemon is still there for the next message.
  const next = await s.run({ from: 'other@client.example', extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(next.code, 0, next.stderr);
  if (DAEMON_MODE) assert.match(next.logLines.join('\n'), /via=daemon/);

  const c = s.command(['check-config']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /general\.cfb:2: plugin broken: cannot open the list\n/);
  assert.doesNotMatch(c.stderr, /\n\s+at /, 'no stack trace');
});

test('a control file that is a symlink to nothing defers (71), naming it: it never means "no plugins" or "all defaults"', async () => {
  const s = make();
  s.write('nqqueue.cfb', ':black=bad@example.org\n');
  // Configuration managed elsewhere, its file moved away: general.cfb would silently scan nothing.
  symlinkSync(join(s.dir, 'gone', 'general.cfb'), join(s.control, 'general.cfb'));
  const r = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r.code, 71, r.stderr);
  assert.equal(s.standIn.calls().length, 0);
  assert.match(r.logLines.join('\n'), /code=NQQ_ERR_CONFIG reason="\S*\/control\/general\.cfb is a symlink to \S*\/gone\/general\.cfb, which does not exist/);
  symlinkSync(join(s.dir, 'gone', 'nqqueue.conf'), join(s.control, 'nqqueue.conf'));
  const c = s.command(['check-config']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /general\.cfb is a symlink to \S+, which does not exist/);
  assert.match(c.stderr, /nqqueue\.conf is a symlink to \S+, which does not exist/);
  const r2 = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r2.code, 71, r2.stderr);
  assert.match(r2.logLines.join('\n'), /nqqueue\.conf is a symlink to \S+, which does not exist/);
  assert.equal(s.standIn.calls().length, 0);
});

test('black: entries that can never match a sender (a bare domain, a glob, a trailing dot) are refused with what to write', async () => {
  const s = make();
  const cases: [string, RegExp][] = [
    ['spammer.example', /"spammer\.example" never matches a sender: an address has an @ \(write "@spammer\.example"/],
    ['*@spammer.example', /"\*@spammer\.example" never matches: entries have no wildcards \(write "@spammer\.example"/],
    ['@spammer.example.', /"@spammer\.example\." never matches: addresses have no trailing dot \(write "@spammer\.example"\)/],
    ['"spammer"@spammer.example', /never matches: qmail-smtpd takes the quotes off an address \(write "spammer@spammer\.example"\)/],
  ];
  for (const [entry, why] of cases) {
    s.write('general.cfb', `:black=${entry}\n`);
    const r = await s.run({ extraEnv: { NQQUEUE_REJECT: 'plain' } });
    assert.equal(r.code, 71, `${entry}: ${r.stderr}`);
    // The log line's value is a quoted string: its own quotes come escaped.
    assert.match(r.logLines.join('\n').replace(/\\"/g, '"'), why);
  }
  // In a list file: the file and line are named.
  const list = join(s.dir, 'black.txt');
  writeFileSync(list, '# spammers\r\nbad@spam.example\r\nspammer.example\r\n');
  s.write('general.cfb', `:black=file:${list}\n`);
  const c = s.command(['check-config']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /general\.cfb:1: plugin black: \S*black\.txt:3: "spammer\.example" never matches a sender/);
  // A sender without a domain (MAIL FROM:<root>) can still be listed.
  s.write('general.cfb', ':black=root,<>\n');
  assert.equal(s.command(['check-config']).code, 0);
  assert.equal(s.standIn.calls().length, 0);
});

test('check-config: a routing pattern with a quoted local part never matches (qmail-smtpd takes the quotes off): it says what to write', () => {
  const s = make();
  s.write('general.cfb', ':black=bad@example.org\n"boss"@example.com:\n');
  const c = s.command(['check-config']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /general\.cfb:2: pattern "\\"boss\\"@example\.com" never matches: qmail-smtpd takes the quotes off an address \(write "boss@example\.com"\)/);
});
