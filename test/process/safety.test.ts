// SPEC §7, rule by rule.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { envelopeOf, pluginDir, setupsForThisFile, traceOf, withoutTrace, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();

test('never a shell: program paths and addresses with shell syntax are not interpreted', async () => {
  const s = make();
  const pwned = join(s.dir, 'pwned');
  const weird = s.script('prog $(touch pwned) | x && y', `#!/bin/sh\ncat >/dev/null\nprintf 'X-Ran: %s\\n' "$NQQ_RECIPIENT"\n`);
  s.write('nqqueue.cfb', `:exec=${weird}\n`);
  const rcpt = `$(touch ${pwned})\`touch ${pwned}\`@example.com`;
  const r = await s.run({ to: [rcpt], cwd: s.dir });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(pwned), false);
  assert.equal(existsSync('/pwned'), false);
  assert.match(r.deliveries[0]!.message.toString(), new RegExp(`X-Ran: \\$\\(touch`));
});

test('addresses with control characters are refused with 91, over 1000 bytes with 11', async () => {
  const s = make();
  for (const c of ['\r', '\n', '\x01', '\x7f', '\t']) {
    const r = await s.run({ envelope: envelopeOf('sender@client.example', [`a${c}b@example.com`]) });
    assert.equal(r.code, 91, JSON.stringify(c));
  }
  const r = await s.run({ to: [`${'x'.repeat(1100)}@example.com`] });
  assert.equal(r.code, 11);
  assert.equal(s.standIn.calls().length, 0);
});

test('over 10,000 recipients: refused, nothing queued', async () => {
  const s = make();
  const many = Array.from({ length: 10_001 }, (_, i) => `r${i}@remote.example`);
  const r = await s.run({ to: many });
  assert.equal(r.code, 82);
  assert.match(r.errorText.toString(), /^Dtoo many recipients/);
  assert.equal(s.standIn.calls().length, 0);
  const ok = await s.run({ to: many.slice(0, 10_000) });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.deliveries[0]!.recipients.length, 10_000);
});

test('nothing from a plugin reaches a header unchecked: a header with a line break is refused', async () => {
  const s = make();
  const inject = s.script('inject.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Ok: fine\\nBcc: victim@example.org\\n"\n');
  // "Bcc: victim..." is a well-formed header line of its own: it is added as a header, not smuggled.
  s.write('general.cfb', `:exec=${inject}\n`);
  const fine = await s.run({});
  assert.equal(fine.code, 0);
  const bad = s.script('bad.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Bad: a\\rInjected: b\\n"\n');
  s.write('general.cfb', `:exec=${bad}\n`);
  const r = await s.run({});
  assert.equal(r.code, 82, 'a bare CR in a header value is a plugin failure: tempfail');
  assert.match(r.errorText.toString(), /^Z/);
  const notHeader = s.script('nothdr.sh', '#!/bin/sh\ncat >/dev/null\nprintf "this is not a header\\n"\n');
  s.write('general.cfb', `:exec=${notHeader}\n`);
  assert.equal((await s.run({})).code, 82);
  const dir = pluginDir(s, {
    smuggle:
      "export default { name: 'smuggle', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: 'accept', headers: [{ name: 'X-A', value: 'x\\nBcc: victim@example.org' }] }; } };\n",
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':smuggle\n');
  const sm = await s.run({ errorFd: 'none' });
  assert.equal(sm.code, 71);
  assert.equal(s.standIn.deliveries().every((d) => !/^Bcc: victim/m.test(withoutTrace(d.message).toString()) || d.call === 1), true);
});

test('an address never becomes a path: a domain with ../ does not pick a file outside the control directory', async () => {
  const s = make({ rcpthosts: ['.example.com'] });
  // A file one level above the control directory that a naive "<domain>.cfb" would reach.
  writeFileSync(join(s.dir, 'evil.example.com.cfb'), ':black=sender@client.example\n');
  s.write('nqqueue.cfb', ':header=X-Default:/never/\n');
  const r = await s.run({ to: ['u@../evil.example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(traceOf(r.deliveries[0]!.message), /per-user: header=accept/);
});

test('working and spool files are 0600 in 0700 directories; a symlinked working directory is refused', async () => {
  const s = make({ files: { 'nqqueue.conf': 'spill = 1K\n' } });
  const probe = join(s.dir, 'modes');
  const look = s.script('look.sh', `#!/bin/sh\ncat >/dev/null\nstat -c '%a %n' ${s.home}/tmp ${s.home}/tmp/* > ${probe}\n`);
  s.write('general.cfb', `:exec=${look}\n`);
  const r = await s.run({ message: 'Subject: x\n\n' + 'z'.repeat(5000) });
  assert.equal(r.code, 0, r.stderr);
  const modes = readFileSync(probe, 'utf8').trim().split('\n');
  assert.match(modes[0]!, /^700 /);
  assert.match(modes[1]!, /^600 .*\.msg$/);

  const t = make({ files: { 'nqqueue.conf': 'spill = 1K\n' } });
  const elsewhere = join(t.dir, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  mkdirSync(t.home, { mode: 0o700 });
  symlinkSync(elsewhere, join(t.home, 'tmp'));
  const sym = await t.run({ message: 'Subject: x\n\n' + 'z'.repeat(5000), errorFd: 'none' });
  assert.equal(sym.code, 71);
  assert.match(sym.stderr, /symlink/);
  assert.deepEqual(readdirSync(elsewhere), []);
  assert.equal(t.standIn.calls().length, 0);
});

test('an over-permissive working directory is tightened to 0700', async () => {
  const s = make({ files: { 'nqqueue.conf': 'spill = 1K\n' } });
  mkdirSync(join(s.home, 'tmp'), { recursive: true });
  chmodSync(join(s.home, 'tmp'), 0o777);
  const r = await s.run({ message: 'Subject: x\n\n' + 'z'.repeat(5000) });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(join(s.home, 'tmp')).mode & 0o777, 0o700);
});

test('plugin directories (and plugin files) that are group- or world-writable are refused', async () => {
  const s = make();
  const dir = join(s.dir, 'plugins');
  mkdirSync(dir, { mode: 0o755 });
  writeFileSync(join(dir, 'noop.js'), "export default { name: 'noop', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: 'accept' }; } };\n", { mode: 0o644 });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':noop\n');
  assert.equal((await s.run({})).code, 0);
  chmodSync(dir, 0o777);
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71);
  assert.match(r.stderr, /group- or world-writable/);
  const cc = s.command(['check-config']);
  assert.equal(cc.code, 1);
  assert.match(cc.stderr, /general\.cfb:1: .*world-writable/);
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'noop.js'), 0o666);
  assert.equal((await s.run({ errorFd: 'none' })).code, 71);
  rmSync(join(dir, 'noop.js'));
});

test('the error descriptor is never inherited by child programs', async () => {
  const s = make();
  // A plugin program that leaves a background process behind: if fd 6 leaked into it, qmail-smtpd
  // (reading fd 6 to EOF before waiting) would wait for that process.
  const leaky = s.script('leaky.sh', '#!/bin/sh\ncat >/dev/null\nfor fd in 4 6; do [ -e /proc/self/fd/$fd ] && echo "X-Open-Fd: $fd"; done\n( sleep 5 ) >/dev/null 2>&1 &\nexit 0\n');
  s.write('general.cfb', `:exec=${leaky}\n`);
  for (const errorFd of [6, 4] as const) {
    const r = await s.run({ errorFd, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.timedOut, false);
    assert.ok(r.ms < 4000, `qmail-smtpd was not kept waiting (${r.ms} ms)`);
    assert.doesNotMatch(r.deliveries.at(-1)!.message.toString(), /X-Open-Fd/);
  }
});

test('refusal text from a plugin is cleaned: no CR/LF, no trailing newline, printable, at most 255 bytes', async () => {
  const s = make();
  const dir = pluginDir(s, {
    loud: "export default { name: 'loud', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: 'reject', text: 'line one\\r\\n\\x00line two é ' + 'x'.repeat(400) + '\\n' }; } };\n",
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':loud\n');
  const r = await s.run({});
  assert.equal(r.code, 82);
  const t = r.errorText;
  assert.ok(t.length <= 255);
  assert.ok([...t].every((b) => b >= 0x20 && b < 0x7f), 'printable ASCII only');
  assert.match(t.toString(), /^Dline one \?line two \? x+$/);
});
