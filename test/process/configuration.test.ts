// Configuration mistakes fail closed, the way qmail runs the program: a missing control directory or
// rcpthosts defers (and `serve` refuses to start), a strict settings file defers with its first
// problem, qmail extension addresses get the line of the address they extend, and a forged local
// sender chooses nothing.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { envelopeOf, PROGRAM, rcptsOf, SAMPLE, setupsForThisFile, traceOf } from '../helpers/nqq.js';
import { NQQUEUE_BIN, runSmtpd } from '../helpers/smtpd.js';

const make = setupsForThisFile();

test('a missing control directory defers every message (71) with a log line that names it', async () => {
  const s = make();
  s.write('general.cfb', ':black=nobody@nowhere.example\n');
  // First a message on a working configuration (in daemon mode this starts the daemon on it).
  const before = await s.run({ errorFd: 'none' });
  assert.equal(before.code, 0, before.stderr);
  const queued = s.standIn.calls().length;
  rmSync(s.control, { recursive: true, force: true });
  const r = await s.run({ errorFd: 'none', to: ['a@example.com', 'b@remote.example'] });
  assert.equal(r.code, 71, r.stderr);
  assert.equal(s.standIn.calls().length, queued, 'nothing queued: not even the remote recipient, unscanned');
  assert.equal(r.logLines.length, 1, r.stderr);
  assert.match(r.logLines[0]!, /result=defer/);
  assert.ok(r.logLines[0]!.includes(`control directory ${s.control} does not exist`), r.logLines[0]);
  assert.match(r.logLines[0]!, /code=NQQ_ERR_CONTROL_MISSING/);
  // Even a message that looks nothing up: a bounce to no recipient at all.
  const bounce = await s.run({ errorFd: 'none', envelope: Buffer.from('F\0\0') });
  assert.equal(bounce.code, 71, bounce.stderr);
  assert.equal(s.standIn.calls().length, queued);
});

test('a control directory without rcpthosts defers (71), naming it: recipients never silently become remote', async () => {
  const s = make();
  s.write('nqqueue.cfb', ':black=sender@client.example\n');
  const before = await s.run({ errorFd: 'none' });
  assert.equal(before.code, 31, 'the per-user line refuses while rcpthosts says the recipient is local');
  unlinkSync(join(s.control, 'rcpthosts'));
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71, r.stderr);
  assert.equal(s.standIn.calls().length, 0);
  assert.ok(r.logLines[0]!.includes(`${s.control}/rcpthosts does not exist`), r.stderr);
});

test('a morercpthosts.cdb that is not a cdb file defers (71), naming it, instead of a crash', async () => {
  const s = make();
  const before = await s.run({ errorFd: 'none' });
  assert.equal(before.code, 0, before.stderr);
  s.write('morercpthosts.cdb', 'example.org\n');
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71, r.stderr);
  assert.match(r.logLines[0]!, /code=NQQ_ERR_CONFIG/);
  assert.ok(r.logLines[0]!.includes(`${s.control}/morercpthosts.cdb: not a cdb file`), r.stderr);
});

test('serve refuses to start (exit 111, so the supervisor retries) without its control directory or rcpthosts', () => {
  const s = make();
  const serve = (control: string) =>
    spawnSync(NQQUEUE_BIN, ['serve'], {
      env: { NQQUEUE_CONTROLDIR: control, NQQUEUE_HOME: s.home, NQQUEUE_QMAILQUEUE: s.standIn.path },
      encoding: 'utf8',
      timeout: 30_000,
    });
  const noDir = serve(join(s.dir, 'no-such-control'));
  assert.equal(noDir.status, 111, noDir.stderr);
  assert.match(noDir.stderr, new RegExp(`cannot start: NQQ_ERR_CONTROL_MISSING: control directory ${s.dir}/no-such-control does not exist`));
  assert.equal(existsSync(join(s.home, 'nqqueue.sock')), false, 'no socket: clients take the standalone program');
  const bare = join(s.dir, 'bare-control');
  mkdirSync(bare);
  const noRcpthosts = serve(bare);
  assert.equal(noRcpthosts.status, 111, noRcpthosts.stderr);
  assert.match(noRcpthosts.stderr, new RegExp(`cannot start: NQQ_ERR_CONTROL_MISSING: ${bare}/rcpthosts does not exist`));
  assert.equal(existsSync(join(s.home, 'nqqueue.sock')), false);
});

test('a settings file with problems defers with the first one (file:line), wherever the others are', async () => {
  const s = make();
  s.write('nqqueue.conf', 'deadline = 30s\n[clamav]\nsockett = /run/clamd.sock\nconcurrency = 2\n');
  s.write('general.cfb', ':black=nobody@nowhere.example\n');
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71, r.stderr);
  assert.equal(s.standIn.calls().length, 0);
  assert.ok(r.logLines[0]!.includes(`${s.control}/nqqueue.conf:3: unknown key \\"sockett\\" in [clamav] (did you mean \\"socket\\"?)`), r.stderr);
});

test('an unknown PARAMS word or key on the line that applies defers, naming that line', async () => {
  const s = make();
  s.write('general.cfb', '# general\n:black=nobody@nowhere.example,txt=go away\n');
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71, r.stderr);
  assert.ok(r.logLines[0]!.includes(`${s.control}/general.cfb:2: plugin black: unknown key \\"txt\\" (did you mean \\"text=\\"?)`), r.stderr);
  assert.equal(s.standIn.calls().length, 0);
});

test('qmail extension addresses: alice-lists@ gets alice@\'s line when it has none of its own', async () => {
  const s = make();
  s.write('nqqueue.cfb', 'alice@example.com:black=sender@client.example\nexample.com:header=X-Nothing:/never/\n');
  const r = await s.run({ to: ['alice-lists@example.com', 'bob-lists@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.deliveries.map(rcptsOf), [['bob-lists@example.com']], "alice's own line refuses her extension address");
  assert.match(traceOf(r.deliveries[0]!.message).replace(/\n\t/g, ' '), /per-user: header=accept/);
  assert.match(r.logLines[0]!, /alice-lists@example\.com=reject/);
  const ex = s.command(['explain', '--from', 'x@remote.example', '--to', 'alice-lists@example.com']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /nqqueue\.cfb:1 +pattern alice@example\.com \(address\), by the extension rule: <alice-lists@example\.com> has no line of its own, <alice@example\.com> has\n +- black=sender@client\.example/);
});

test('extension_separator = +: alice+lists@ gets alice@\'s line, alice-lists@ does not', async () => {
  const s = make();
  s.write('nqqueue.conf', 'extension_separator = +\n');
  s.write('nqqueue.cfb', 'alice@example.com:black=sender@client.example\nexample.com:header=X-Nothing:/never/\n');
  const r = await s.run({ to: ['alice+lists@example.com', 'alice-lists@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.deliveries.map(rcptsOf), [['alice-lists@example.com']]);
  assert.match(r.logLines[0]!, /alice\+lists@example\.com=reject/);
});

test('a forged local sender chooses nothing: from TCPREMOTEIP without RELAYCLIENT it gets the fallback line', async () => {
  const s = make();
  // boss@'s own general line has no plugins; the fallback refuses boss@ — so each answer shows the line.
  s.write('general.cfb', ':black=boss@example.com\nboss@example.com:\n');
  const forged = await s.run({ from: 'boss@example.com' });
  assert.equal(forged.code, 82, forged.stderr);
  assert.equal(forged.errorText.toString(), 'Dmail from this sender is not accepted (#5.7.1)');
  assert.equal(s.standIn.calls().length, 0);
  const trustedEnvs: Record<string, string>[] = [{ RELAYCLIENT: '' }, { RELAYCLIENT: '.relay' }, { SMTPAUTHUSER: 'boss' }, { AUTHUSER: 'boss' }];
  for (const trusted of trustedEnvs) {
    const r = await s.run({ from: 'boss@example.com', extraEnv: trusted });
    assert.equal(r.code, 0, `${JSON.stringify(trusted)}: ${r.stderr}`);
    assert.doesNotMatch(traceOf(r.deliveries.at(-1)!.message), /black/, JSON.stringify(trusted));
  }
  const empty = await s.run({ from: 'boss@example.com', extraEnv: { SMTPAUTHUSER: '' } });
  assert.equal(empty.code, 82, 'an empty SMTPAUTHUSER authenticates nobody');
  // Local injection (qmail-inject, sendmail): no TCPREMOTEIP at all.
  const { TCPREMOTEIP: _ip, TCPREMOTEHOST: _host, TCPLOCALIP: _l, PROTO: _p, ...local } = s.env;
  const injected = await runSmtpd({ bin: PROGRAM, message: SAMPLE, envelope: envelopeOf('boss@example.com', ['rcpt@example.com']), env: local });
  assert.equal(injected.code, 0, injected.stderr);
  assert.doesNotMatch(traceOf(s.standIn.deliveries().at(-1)!.message), /black/);
});

test('explain shows which rule chose the general line, from its own environment and --env', () => {
  const s = make();
  s.write('general.cfb', ':black=boss@example.com\nboss@example.com:\n');
  const forged = s.command(['explain', '--from', 'boss@example.com', '--to', 'a@example.com']);
  assert.equal(forged.code, 0, forged.stderr);
  assert.match(forged.stdout, /sender <boss@example\.com> \(local, but TCPREMOTEIP=192\.0\.2\.7 without RELAYCLIENT, SMTPAUTHUSER or AUTHUSER \(not a trusted submission\): fallback line\)\n.*\n +\S+general\.cfb:1 +pattern \(fallback\)/);
  const relay = s.command(['explain', '--from', 'boss@example.com', '--to', 'a@example.com', '--env', 'RELAYCLIENT=']);
  assert.match(relay.stdout, /\(local, trusted submission: RELAYCLIENT is set \(a relay client\): line chosen by the sender\)\n.*\n +\S+general\.cfb:2 +pattern boss@example\.com/);
  const auth = s.command(['explain', '--from', 'boss@example.com', '--to', 'a@example.com'], '', { SMTPAUTHUSER: 'boss' });
  assert.match(auth.stdout, /trusted submission: SMTPAUTHUSER is set/);
  const bad = s.command(['explain', '--from', 'boss@example.com', '--to', 'a@example.com', '--env', 'NOEQUALS']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--env wants NAME=VALUE/);
});
