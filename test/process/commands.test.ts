// SPEC §2: the subcommands, run as a user would run them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { REPO, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();

test('--version prints "nqqueue X.Y.Z" and exits 0', () => {
  const pkg = JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8'));
  const r = spawnSync(NQQUEUE_BIN, ['--version'], { env: {}, encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, `nqqueue ${pkg.version}\n`);
});

test('an unknown command is a usage error, not a stack trace', () => {
  const r = spawnSync(NQQUEUE_BIN, ['frobnicate'], { env: {}, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});

test('explain: file and line for the sender and each recipient, the chain and where each plugin comes from', () => {
  const s = make({ rcpthosts: ['example.com', 'example.org'] });
  s.write('general.cfb', ':black=x@y.example;attach=.exe\nboss@example.com:\n');
  s.write('example.org.cfb', '# org\nvip@example.org:header=Subject:/x/\n:black=z@y.example\n');
  s.write('nqqueue.cfb', ':nosuch\n');
  const r = s.command(['explain', '--from', 'someone@remote.example', '--to', 'vip@example.org', '--to', 'a@example.com', '--to', 'far@remote.example']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /sender <someone@remote\.example> \(not local: fallback line\)/);
  assert.match(out, /general\.cfb:1 +pattern \(fallback\)/);
  assert.match(out, /- black=x@y\.example +\[built-in, v[\d.]+, timeout 60000 ms, onerror tempfail\]/);
  assert.match(out, /- attach=\.exe +\[built-in/);
  assert.match(out, /recipient <vip@example\.org> \(local\)\n.*example\.org\.cfb\):\n.*example\.org\.cfb:2 +pattern vip@example\.org \(address\)\n +- header=Subject:\/x\//);
  assert.match(out, /nqqueue\.cfb:1 .*\n +- nosuch +ERROR: unknown plugin "nosuch".*deferred/);
  assert.match(out, /recipient <far@remote\.example> \(remote: general plugins only\)/);
  const boss = s.command(['explain', '--from', 'boss@example.com', '--to', 'a@example.org'], '', { RELAYCLIENT: '' });
  assert.match(boss.stdout, /general\.cfb:2 +pattern boss@example\.com \(address\)\n +\(empty chain: no plugins\)/);
  const usage = s.command(['explain', '--to', 'a@b']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--from is required/);
});

test('test: a dry run prints verdicts, headers and the qmail-queue calls, and makes none', () => {
  const s = make({ rcpthosts: ['example.com'] });
  const tag = s.script('tag.sh', '#!/bin/sh\ncat >/dev/null\necho "X-Tag: $NQQ_RECIPIENT"\n');
  s.write('general.cfb', ':black=x@y.example\n');
  s.write('nqqueue.cfb', `a@example.com:exec=${tag}\nb@example.com:black=sender@client.example\n`);
  const r = s.command(['test', '--from', 'sender@client.example', '--to', 'a@example.com', '--to', 'b@example.com', '--to', 'c@remote.example'], SAMPLE);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /black=x@y\.example -> accept/);
  assert.match(r.stdout, /<a@example\.com> \(.*nqqueue\.cfb:1\): deliver\n +exec=.* -> accept \+1 header/);
  assert.match(r.stdout, /<b@example\.com> \(.*nqqueue\.cfb:2\): reject - mail from this sender is not accepted/);
  assert.match(r.stdout, /qmail-queue call \d: \d+ bytes to <a@example\.com>\n(.*\n)*? +\| X-Tag: a@example\.com/);
  assert.match(r.stdout, /qmail-queue call \d: \d+ bytes to <c@remote\.example>/);
  assert.match(r.stdout, /would exit 0/);
  assert.equal(s.standIn.calls().length, 0, 'nothing queued');
  const rej = s.command(['test', '--from', 'sender@client.example', '--to', 'b@example.com'], SAMPLE);
  assert.match(rej.stdout, /would refuse: 554 mail from this sender is not accepted/);
  assert.equal(s.standIn.calls().length, 0);
});

test('check-config: OK on a good configuration, every problem as file:line with exit 1', () => {
  const s = make();
  s.write('general.cfb', ':black=x@y.example\n');
  s.write('nqqueue.cfb', 'example.com:header=Subject:/x/\n');
  const ok = s.command(['check-config']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /OK/);
  s.write('general.cfb', ':black=x@y.example\nno colon\n:nosuch\n');
  s.write('nqqueue.cfb', 'a@example.com:black\nb@example.com:attach=.e x e\n/(unclosed/:black=x@y.z\n');
  s.write('nqqueue.conf', 'deadline = 5s\n[clamav]\ntimeout = never\n');
  const bad = s.command(['check-config']);
  assert.equal(bad.code, 1);
  const lines = bad.stderr.trim().split('\n');
  const c = s.control;
  for (const want of [
    `${c}/nqqueue.conf:3: timeout: not a duration`,
    `${c}/general.cfb:2: expected PATTERN:PLUGIN`,
    `${c}/general.cfb:3: unknown plugin "nosuch"`,
    `${c}/nqqueue.cfb:1: plugin black: no senders listed`,
    `${c}/nqqueue.cfb:2: plugin attach: invalid extension`,
    `${c}/nqqueue.cfb:3: invalid regular expression`,
  ]) {
    assert.ok(lines.some((l) => l.startsWith(want)), `missing: ${want}\n${bad.stderr}`);
  }
  assert.match(lines.at(-1)!, /\d+ problems/);
});

test('check-config: a plugin in the wrong stage is an error', () => {
  const s = make();
  const dir = `${s.dir}/p`;
  spawnSync('/bin/mkdir', ['-m', '755', dir]);
  spawnSync('/bin/sh', ['-c', `printf '%s' "export default { name: 'gen', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: 'accept' }; } };" > ${dir}/gen.js; chmod 644 ${dir}/gen.js`]);
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', ':gen\n');
  const r = s.command(['check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nqqueue\.cfb:1: plugin gen cannot run in the per-user stage/);
});

test('demo: sample messages through the real pipeline, readable output, no daemons', () => {
  const r = spawnSync(NQQUEUE_BIN, ['demo'], { env: {}, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /NQqueue demo: 7 messages/);
  assert.match(out, /1\. a clean message.*\n.*\n +SMTP answer: 250 ok\n +queued \d+ bytes for <alice@example\.com>/);
  assert.match(out, /2\. a message from a blacklisted sender\n.*\n +SMTP answer: 554 mail from this sender is not accepted/);
  assert.match(out, /3\. an \.exe attachment.*\n.*\n +SMTP answer: 554 message refused: attachments of type \.exe/);
  assert.match(out, /X-Demo-Filter: checked for carol@example\.com/);
  assert.match(out, /7\. a bounce.*\n.*\n +SMTP answer: 250 ok/);
  assert.match(out, /log: nqqueue: .*result=accept/);
});
