// Every row of the SPEC §3 exit table, through bin/nqqueue started the way qmail-smtpd starts it.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { envelopeOf, rcptsOf, SAMPLE, setupsForThisFile, withoutTrace } from '../helpers/nqq.js';

const make = setupsForThisFile();

test('0: accepted, handed to qmail-queue byte for byte below one trace header', async () => {
  const s = make({ files: { 'general.cfb': ':black=nobody@nowhere.example\n' } });
  const r = await s.run({ from: 'sender@client.example', to: ['rcpt@example.com', 'other@remote.example'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.errorText.length, 0);
  assert.equal(r.deliveries.length, 1);
  const d = r.deliveries[0]!;
  assert.deepEqual(withoutTrace(d.message), Buffer.from(SAMPLE));
  assert.equal(d.sender.toString(), 'sender@client.example');
  assert.deepEqual(rcptsOf(d), ['rcpt@example.com', 'other@remote.example']);
});

test('0: a bounce (empty sender) is accepted', async () => {
  const s = make({ files: { 'general.cfb': ':black=nobody@nowhere.example\n' } });
  const r = await s.run({ from: '', to: ['rcpt@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  assert.equal(r.deliveries[0]!.sender.length, 0);
});

test('0: zero recipients go on as qmail-queue takes them', async () => {
  const s = make();
  const r = await s.run({ envelope: Buffer.from('Fsender@client.example\0\0') });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  assert.deepEqual(r.deliveries[0]!.recipients, []);
});

test('11: an address of 1003 bytes; 1002 is accepted', async () => {
  const s = make();
  const long = (n: number) => `${'a'.repeat(n - 12)}@example.com`;
  assert.equal(long(1003).length, 1003);
  const bad = await s.run({ to: [long(1003)] });
  assert.equal(bad.code, 11);
  assert.equal(bad.deliveries.length, 0);
  const badSender = await s.run({ from: long(1003) });
  assert.equal(badSender.code, 11);
  const ok = await s.run({ to: [long(1002)] });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(rcptsOf(ok.deliveries[0]!)[0], long(1002));
});

test('31: a policy refusal when the custom channel is not used', async () => {
  const s = make({ files: { 'general.cfb': ':black=sender@client.example\n' } });
  const plain = await s.run({ errorFd: 'none' });
  assert.equal(plain.code, 31);
  assert.equal(plain.deliveries.length, 0);
  const forced = await s.run({ errorFd: 6, extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(forced.code, 31);
  assert.equal(forced.errorText.length, 0, 'plain writes nothing on fd 6');
  assert.match(forced.stderr, /not accepted/, 'the text goes to the log');
});

test('54: the envelope ends before its final \\0, or is empty', async () => {
  const s = make();
  for (const envelope of [Buffer.alloc(0), Buffer.from('Fsender@client.example\0Trcpt@example.com\0'), Buffer.from('Fsend')]) {
    const r = await s.run({ envelope });
    assert.equal(r.code, 54, JSON.stringify(envelope.toString()));
  }
  assert.equal(s.standIn.calls().length, 0, 'nothing queued');
});

test('54: a truncated message with an unterminated envelope (caller over DATABYTES)', async () => {
  const s = make();
  const r = await s.run({ message: 'x'.repeat(100_000), closeMessageEarly: 5000, envelope: Buffer.from('Fa@b\0') });
  assert.equal(r.code, 54);
  assert.equal(s.standIn.calls().length, 0);
});

test('71: a temporary failure (plugin tempfail) with the plain channel', async () => {
  const s = make();
  const prog = s.script('tempfail.sh', '#!/bin/sh\necho "backend busy"\nexit 111\n');
  s.write('general.cfb', `:exec=${prog}\n`);
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71);
  assert.equal(r.deliveries.length, 0);
});

test('71: a broken configuration defers, naming file and line', async () => {
  const s = make({ files: { 'general.cfb': '# first\n:nosuchplugin\n' } });
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71);
  assert.match(r.stderr, /general\.cfb:2: .*unknown plugin \\?"nosuchplugin/);
  const bad = make({ files: { 'nqqueue.conf': 'deadline = 5s\nconcurrency = lots\n' } });
  const r2 = await bad.run({ errorFd: 'none' });
  assert.equal(r2.code, 71);
  assert.match(r2.stderr, /nqqueue\.conf:2: concurrency/);
  assert.equal(r2.deliveries.length, 0);
});

test('81: a bug is exit 81 with one log line, never a stack trace', async () => {
  const s = make();
  const plugins = `${s.dir}/plugins`;
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(plugins, { mode: 0o755 });
  writeFileSync(
    `${plugins}/buggy.js`,
    "export default { name: 'buggy', version: '1', stages: ['general'], configure() { return {}; }, async run() { setImmediate(() => { null.boom(); }); await new Promise(r => setTimeout(r, 1000)); return { verdict: 'accept' }; } };\n",
    { mode: 0o644 },
  );
  s.write('nqqueue.conf', `plugin_dir = ${plugins}\n`);
  s.write('general.cfb', ':buggy\n');
  const r = await s.run({});
  assert.equal(r.code, 81);
  assert.equal(r.deliveries.length, 0);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(r.logLines.length, 1);
  assert.match(r.logLines[0]!, /NQQ_ERR_BUG/);
});

test('82: the refusal text on fd 6 (D for permanent, Z for temporary), no newline, at most 255 bytes', async () => {
  const s = make();
  const prog = s.script('reject.sh', `#!/bin/sh\nprintf '%s\\n' "${'very long reason '.repeat(30)}"\nexit 100\n`);
  s.write('general.cfb', `:exec=${prog}\n`);
  const r = await s.run({ errorFd: 6 });
  assert.equal(r.code, 82);
  assert.equal(r.errorText[0], 0x44); // D
  assert.ok(r.errorText.length <= 255);
  assert.ok(!r.errorText.includes(0x0a) && !r.errorText.includes(0x0d));
  assert.match(r.errorText.toString(), /^Dvery long reason/);

  const t = make();
  const tf = t.script('tempfail.sh', '#!/bin/sh\necho "try later please"\nexit 111\n');
  t.write('general.cfb', `:exec=${tf}\n`);
  const r2 = await t.run({ errorFd: 6 });
  assert.equal(r2.code, 82);
  assert.equal(r2.errorText.toString(), 'Ztry later please');
});

test('82: fd 4 (the older patch) and no channel at all', async () => {
  const s = make({ files: { 'general.cfb': ':black=sender@client.example\n' } });
  const fd4 = await s.run({ errorFd: 4 });
  assert.equal(fd4.code, 82);
  assert.match(fd4.errorText.toString(), /^Dmail from this sender is not accepted/);
  const forced4 = await s.run({ errorFd: 4, extraEnv: { NQQUEUE_REJECT: 'fd4' } });
  assert.equal(forced4.code, 82);
  const wrong = await s.run({ errorFd: 4, extraEnv: { NQQUEUE_REJECT: 'fd6' } });
  assert.equal(wrong.code, 31, 'fd6 asked for, but qmail gave fd 4 only: plain code');
  assert.equal(wrong.errorText.length, 0);
  const none = await s.run({ errorFd: 'none' });
  assert.equal(none.code, 31);
});

test('91: envelope format errors and control characters in addresses', async () => {
  const s = make();
  const cases: Buffer[] = [
    Buffer.from('Xsender@client.example\0Trcpt@example.com\0\0'),
    Buffer.from('Fsender@client.example\0Rrcpt@example.com\0\0'),
    Buffer.from('Fsender@client.example\0Trcpt@example.com\0\0extra'),
    envelopeOf('sender@client.example', ['rcpt@exa\rmple.com']),
    envelopeOf('sender@client.example', ['rcpt@example.com\nBcc: x@y']),
    envelopeOf('send\ter@client.example', ['rcpt@example.com']),
  ];
  for (const envelope of cases) {
    const r = await s.run({ envelope });
    assert.equal(r.code, 91, JSON.stringify(envelope.toString()));
  }
  assert.equal(s.standIn.calls().length, 0);
});

test("qmail-queue's own code is passed on when its first call fails", async () => {
  const s = make({ standIn: { failOn: [{ call: 1, code: 53 }] } });
  const r = await s.run({});
  assert.equal(r.code, 53);
  assert.equal(r.deliveries.length, 0);
});

test('a qmail-queue killed by a signal is a deferral, never a success', async () => {
  const s = make({ standIn: { killOn: [1] } });
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71);
  assert.match(r.stderr, /killed by SIGKILL/);
});

test('a hung qmail-queue is killed at queue_timeout and the message deferred', async () => {
  const s = make({ standIn: { hangOn: [1] }, files: { 'nqqueue.conf': 'queue_timeout = 1s\n' } });
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71);
  assert.equal(r.timedOut, false);
  assert.match(r.stderr, /timed out/);
});

test('the envelope may arrive in any number of reads', async () => {
  const s = make();
  const envelope = envelopeOf('sender@client.example', ['a@example.com', 'b@example.com']);
  const r = await s.run({ envelope, envelopeChunks: Array.from({ length: envelope.length - 1 }, (_, i) => i + 1), envelopeDelayMs: 1 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(rcptsOf(r.deliveries[0]!), ['a@example.com', 'b@example.com']);
});
