// SPEC §5, rule by rule, through bin/nqqueue and the qmail-queue stand-in: bytes checked as received.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { envelopeOf, pluginDir, rcptsOf, SAMPLE, setupsForThisFile, traceOf, withoutTrace, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();

const DROPPER = "export default { name: 'dropper', version: '1.0', stages: ['per-user'], configure() { return {}; }, scope(_c, r) { return r; }, async run() { return { verdict: 'drop', reason: 'kept aside' }; } };\n";

function byRecipients(s: { deliveries: ReturnType<Setup['standIn']['deliveries']> }) {
  return new Map(s.deliveries.map((d) => [rcptsOf(d).join(','), d]));
}

test('5 local recipients in 3 domains: one rejects, one drops, one adds a header — exact bytes for each', async () => {
  const s = make({ rcpthosts: ['example.com', 'example.org', 'example.net'] });
  const dir = pluginDir(s, { dropper: DROPPER });
  const tag = s.script('tag.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Tag: tagged for %s\\n" "$NQQ_RECIPIENT"\n');
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':black=nobody@nowhere.example\n');
  s.write('example.com.cfb', 'rejecter@example.com:black=sender@client.example\ndropper@example.com:dropper\n');
  s.write('example.org.cfb', `tagger@example.org:exec=${tag}\nexample.org:header=X-Nothing:/never/\n`);
  s.write('nqqueue.cfb', ':black=nobody@nowhere.example\n');
  const to = ['rejecter@example.com', 'dropper@example.com', 'tagger@example.org', 'plain@example.org', 'other@example.net', 'far@remote.example'];
  const r = await s.run({ to });
  assert.equal(r.code, 0, r.stderr);
  const got = byRecipients(r);
  assert.deepEqual([...got.keys()].sort(), ['far@remote.example', 'other@example.net', 'plain@example.org', 'tagger@example.org']);
  const sample = Buffer.from(SAMPLE);
  // The tagger's copy: trace header, the plugin's header, then the message unchanged.
  const tagged = got.get('tagger@example.org')!.message;
  assert.deepEqual(withoutTrace(tagged), Buffer.concat([Buffer.from('X-Tag: tagged for tagger@example.org\n'), sample]));
  assert.match(traceOf(tagged).replace(/\n\t/g, ' '), /general: black=accept; per-user: exec=accept\)/);
  for (const rcpt of ['plain@example.org', 'other@example.net', 'far@remote.example']) {
    assert.deepEqual(withoutTrace(got.get(rcpt)!.message), sample, rcpt);
  }
  assert.match(traceOf(got.get('plain@example.org')!.message).replace(/\n\t/g, ' '), /per-user: header=accept\)/);
  assert.match(traceOf(got.get('other@example.net')!.message).replace(/\n\t/g, ' '), /per-user: black=accept\)/);
  assert.doesNotMatch(traceOf(got.get('far@remote.example')!.message), /per-user/);
  for (const d of r.deliveries) assert.equal(d.sender.toString(), 'sender@client.example');
  assert.equal(r.logLines.length, 1);
  assert.match(r.logLines[0]!, /rejecter@example\.com=reject/);
  assert.match(r.logLines[0]!, /dropper@example\.com=drop/);
  assert.match(r.logLines[0]!, /removed=2/);
});

test('recipients receiving identical bytes share one qmail-queue call', async () => {
  const s = make({ rcpthosts: ['example.com', 'example.org'] });
  s.write('nqqueue.cfb', 'example.org:header=X-Nothing:/never/\n');
  const r = await s.run({ to: ['a@example.org', 'x@remote.example', 'b@example.org', 'c@example.com', 'y@remote.example'] });
  assert.equal(r.code, 0, r.stderr);
  const groups = r.deliveries.map((d) => rcptsOf(d).sort().join(',')).sort();
  // c@example.com has no per-user line: it shares the general-stage copy with the remote recipients.
  assert.deepEqual(groups, ['a@example.org,b@example.org', 'c@example.com,x@remote.example,y@remote.example']);
});

test('every recipient rejecting refuses the message with the first reject text', async () => {
  const s = make({ rcpthosts: ['example.com', 'example.org'] });
  s.write('example.com.cfb', ':black=sender@client.example,text=example.com refuses you\n');
  s.write('example.org.cfb', ':black=sender@client.example,text=example.org refuses you\n');
  const r = await s.run({ to: ['a@example.org', 'b@example.com'] });
  assert.equal(r.code, 82);
  assert.equal(r.errorText.toString(), 'Dexample.org refuses you');
  assert.equal(s.standIn.calls().length, 0);
});

test('when the only copies left were dropped, the message is accepted (exit 0) and nothing queued', async () => {
  const s = make();
  const dir = pluginDir(s, { dropper: DROPPER });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', 'a@example.com:dropper\nb@example.com:black=sender@client.example\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.standIn.calls().length, 0);
});

test('a general reject refuses the whole message and runs no per-user chain', async () => {
  const s = make();
  const count = join(s.dir, 'count');
  const counter = s.script('count.sh', `#!/bin/sh\ncat >/dev/null\necho run >> ${count}\n`);
  s.write('general.cfb', ':black=sender@client.example\n');
  s.write('nqqueue.cfb', `:exec=${counter}\n`);
  const r = await s.run({ to: ['a@example.com'] });
  assert.equal(r.code, 82);
  assert.match(r.errorText.toString(), /^D/);
  assert.equal(existsSync(count), false);
});

test('any per-user tempfail defers the whole message, and nothing is delivered before every chain has finished', async () => {
  const s = make();
  const slow = s.script('slow-tempfail.sh', '#!/bin/sh\ncat >/dev/null\nsleep 1\necho "scanner busy"\nexit 111\n');
  s.write('nqqueue.cfb', `slow@example.com:exec=${slow}\n`);
  const r = await s.run({ to: ['fast@example.com', 'slow@example.com', 'x@remote.example'] });
  assert.equal(r.code, 82);
  assert.equal(r.errorText.toString(), 'Zscanner busy');
  assert.equal(s.standIn.calls().length, 0, 'the fast recipient was not delivered first');
});

test('the first qmail-queue call failing: its code, nothing spooled', async () => {
  const s = make({ rcpthosts: ['example.com'], standIn: { failOn: [{ call: 1, code: 53 }] } });
  s.write('nqqueue.cfb', 'a@example.com:header=X-A:/never/\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 53);
  assert.equal(s.standIn.calls().length, 1, 'no second call after the first failed');
  assert.deepEqual(existsSync(join(s.home, 'spool', 'new')) ? readdirSync(join(s.home, 'spool', 'new')) : [], []);
});

test('a later qmail-queue call failing: spooled (0600, fsynced), exit 0, flush delivers once, no duplicate', async () => {
  const s = make({ rcpthosts: ['example.com'], standIn: { failOn: [{ call: 2, code: 53 }] } });
  s.write('nqqueue.cfb', 'a@example.com:header=X-A:/never/\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  const spoolNew = join(s.home, 'spool', 'new');
  const waiting = readdirSync(spoolNew);
  assert.equal(waiting.length, 1);
  assert.equal(statSync(join(spoolNew, waiting[0]!)).mode & 0o777, 0o600);
  assert.equal(statSync(spoolNew).mode & 0o777, 0o700);
  assert.match(r.logLines[0]!, /spooled/);
  const firstRcpt = rcptsOf(r.deliveries[0]!);

  const f = s.command(['flush']);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stderr, /1 delivered, 0 kept/);
  const all = s.standIn.deliveries();
  assert.equal(all.length, 2);
  const delivered = all.flatMap(rcptsOf).sort();
  assert.deepEqual(delivered, ['a@example.com', 'b@example.com'], 'each recipient exactly once');
  assert.notDeepEqual(rcptsOf(all[1]!), firstRcpt);
  assert.deepEqual(withoutTrace(all[1]!.message), Buffer.from(SAMPLE));
  assert.deepEqual(readdirSync(spoolNew), []);
  const again = s.command(['flush']);
  assert.equal(again.code, 0);
  assert.equal(s.standIn.deliveries().length, 2, 'a second flush delivers nothing again');
});

test('flush keeps an entry whose delivery fails again', async () => {
  const s = make({ rcpthosts: ['example.com'], standIn: { failOn: [{ call: 2, code: 53 }, { call: 3, code: 71 }] } });
  s.write('nqqueue.cfb', 'a@example.com:header=X-A:/never/\n');
  const r = await s.run({ to: ['a@example.com', 'b@example.com'] });
  assert.equal(r.code, 0);
  const f1 = s.command(['flush']);
  assert.equal(f1.code, 1);
  assert.match(f1.stderr, /0 delivered, 1 kept/);
  const f2 = s.command(['flush']);
  assert.equal(f2.code, 0);
  assert.deepEqual(s.standIn.deliveries().flatMap(rcptsOf).sort(), ['a@example.com', 'b@example.com']);
});

test('a plugin that hangs past its timeout: failure policy (tempfail), nothing delivered', async () => {
  const s = make();
  const hang = s.script('hang.sh', '#!/bin/sh\nexec sleep 60\n');
  s.write('nqqueue.cfb', `:exec=${hang},timeout=1s\n`);
  const r = await s.run({ to: ['a@example.com'] });
  assert.equal(r.code, 82);
  assert.match(r.errorText.toString(), /^Z.*timed out/);
  assert.equal(r.timedOut, false);
  assert.equal(s.standIn.calls().length, 0);
  assert.match(r.logLines[0]!, /exec:tempfail!/);
  assert.match(r.logLines[0]!, /notes="exec failed: timed out after 1000 ms"/);
});

test('maxsize: a message over it is not given to the plugin, and the log says so', async () => {
  const s = make();
  const count = join(s.dir, 'count');
  const counter = s.script('count.sh', `#!/bin/sh\ncat >/dev/null\necho run >> ${count}\n`);
  s.write('general.cfb', `:exec=${counter},maxsize=100\n`);
  const r = await s.run({});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(count), false, 'not run');
  assert.match(r.logLines[0]!, /notes="exec skipped: message of \d+ bytes is over maxsize 100: not scanned"/);
  s.write('general.cfb', `:exec=${counter},maxsize=1M\n`);
  await s.run({});
  assert.equal(readFileSync(count, 'utf8'), 'run\n');
});

test('a third-party plugin that never settles and ignores its signal is cut off at its timeout', async () => {
  const s = make();
  const dir = pluginDir(s, {
    stuck: "export default { name: 'stuck', version: '1', stages: ['general'], configure() { return {}; }, run() { return new Promise(() => {}); } };\n",
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n[stuck]\ntimeout = 500ms\n`);
  s.write('general.cfb', ':stuck\n');
  const r = await s.run({ errorFd: 'none' });
  assert.equal(r.code, 71);
  assert.equal(s.standIn.calls().length, 0);
});

test('failure policy: onerror=accept delivers, onerror=reject refuses, default defers', async () => {
  const s = make();
  const broken = s.script('broken.sh', '#!/bin/sh\ncat >/dev/null\nexit 3\n');
  s.write('general.cfb', `:exec=${broken},onerror=accept\n`);
  const accept = await s.run({});
  assert.equal(accept.code, 0, accept.stderr);
  assert.match(traceOf(accept.deliveries[0]!.message), /exec=accept\/failed/);
  s.write('general.cfb', `:exec=${broken},onerror=reject\n`);
  const reject = await s.run({});
  assert.equal(reject.code, 82);
  assert.match(reject.errorText.toString(), /^D/);
  s.write('general.cfb', `:exec=${broken}\n`);
  const defer = await s.run({});
  assert.equal(defer.code, 82);
  assert.match(defer.errorText.toString(), /^Z/);
  s.write('nqqueue.conf', 'onerror = accept\n');
  const global = await s.run({});
  assert.equal(global.code, 0, 'the settings file sets the default policy');
});

test('results of earlier plugins are visible to later ones, general results to per-user chains', async () => {
  const s = make();
  const show = s.script('show.sh', '#!/bin/sh\ncat >/dev/null\nprintf "X-Seen-%s: %s\\n" "$NQQ_STAGE" "$NQQ_RESULTS"\n');
  s.write('general.cfb', `:black=nobody@nowhere.example;exec=${show}\n`);
  s.write('nqqueue.cfb', `:header=X-Never:/x/;exec=${show}\n`);
  const r = await s.run({ to: ['a@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  const text = r.deliveries[0]!.message.toString();
  const general = JSON.parse(/^X-Seen-general: (.*)$/m.exec(text)![1]!);
  assert.deepEqual(general.map((x: { plugin: string }) => x.plugin), ['black']);
  const perUser = JSON.parse(/^X-Seen-per-user: (.*)$/m.exec(text)![1]!);
  assert.deepEqual(perUser.map((x: { plugin: string; verdict: string }) => `${x.plugin}:${x.verdict}`), ['black:accept', 'exec:accept', 'header:accept']);
});

test('each plugin sees the message as the plugins before it left it; a replacement message is delivered', async () => {
  const s = make();
  const dir = pluginDir(s, {
    replacer: "export default { name: 'replacer', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: 'accept', replace: Buffer.from('Subject: replaced\\n\\nnew body\\n') }; } };\n",
  });
  const peek = s.script('peek.sh', '#!/bin/sh\nsubj=$(sed -n "s/^Subject: //p" | head -1)\nprintf "X-Saw-Subject: %s\\n" "$subj"\n');
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', `:replacer;exec=${peek}\n`);
  const r = await s.run({});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(withoutTrace(r.deliveries[0]!.message).toString(), 'X-Saw-Subject: replaced\nSubject: replaced\n\nnew body\n');
});

/** The most chains that ran at once by `log` ("+ rcpt" at a start, "- rcpt" at an end); the log is emptied for the next run. */
function maxOverlap(log: string): number {
  let cur = 0;
  let max = 0;
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    cur += line.startsWith('+') ? 1 : -1;
    max = Math.max(max, cur);
  }
  writeFileSync(log, '');
  return max;
}

test('per-user chains run concurrently, never more than the concurrency setting', async () => {
  const s = make();
  const log = join(s.dir, 'overlap.log');
  const work = s.script('work.sh', `#!/bin/sh\ncat >/dev/null\necho "+ $NQQ_RECIPIENT" >> ${log}\nsleep 0.4\necho "- $NQQ_RECIPIENT" >> ${log}\n`);
  s.write('nqqueue.cfb', `:exec=${work}\n`);
  const to = ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com', 'e@example.com'];
  s.write('nqqueue.conf', 'concurrency = 2\n');
  const r1 = await s.run({ to });
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(maxOverlap(log), 2);
  s.write('nqqueue.conf', 'concurrency = 5\n');
  const r2 = await s.run({ to });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(maxOverlap(log), 5);
});

test('concurrency = auto (the default) runs as many chains at once as their plugins declare, 8 for one that declares none', async () => {
  const s = make();
  const log = join(s.dir, 'overlap.log');
  writeFileSync(log, '');
  // A plugin whose backend takes 3 at once; exec declares nothing.
  const dir = pluginDir(s, {
    three:
      `import { appendFileSync } from 'node:fs';\nexport default { name: 'three', version: '1', stages: ['per-user'], concurrency: 3, configure() { return {}; }, ` +
      `async run(ctx) { appendFileSync(${JSON.stringify(log)}, '+ ' + ctx.recipient + '\\n'); await new Promise((r) => setTimeout(r, 300)); appendFileSync(${JSON.stringify(log)}, '- ' + ctx.recipient + '\\n'); return { verdict: 'accept' }; } };\n`,
  });
  const work = s.script('work.sh', `#!/bin/sh\ncat >/dev/null\necho "+ $NQQ_RECIPIENT" >> ${log}\nsleep 0.4\necho "- $NQQ_RECIPIENT" >> ${log}\n`);
  const to = Array.from({ length: 10 }, (_, i) => `u${i}@example.com`);
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('nqqueue.cfb', ':three\n');
  const r1 = await s.run({ to });
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(maxOverlap(log), 3, 'the plugin declares 3');
  s.write('nqqueue.cfb', `:exec=${work}\n`);
  const r2 = await s.run({ to });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(maxOverlap(log), 8, 'a plugin that declares nothing: 8');
  // The smallest declaration of the message's chains bounds them all; a number in the settings wins.
  s.write('nqqueue.cfb', `u0@example.com:exec=${work}\n:three\n`);
  const r3 = await s.run({ to });
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(maxOverlap(log), 3);
  s.write('nqqueue.conf', `plugin_dir = ${dir}\nconcurrency = 5\n`);
  s.write('nqqueue.cfb', ':three\n');
  const r4 = await s.run({ to });
  assert.equal(r4.code, 0, r4.stderr);
  assert.equal(maxOverlap(log), 5, 'the setting overrides what the plugin declares');
});

test('recipients whose chains are identical and independent of the recipient are analysed once', async () => {
  const s = make();
  const count = join(s.dir, 'count');
  const counter = s.script('count.sh', `#!/bin/sh\ncat >/dev/null\necho run >> ${count}\n`);
  s.write('nqqueue.cfb', `:exec=${counter},recipient=no\nvip@example.com:exec=${counter}\n`);
  const r = await s.run({ to: ['a@example.com', 'b@example.com', 'c@example.com', 'vip@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(count, 'utf8').trim().split('\n').length, 2, 'one run for a, b, c; one for vip');
  s.write('nqqueue.cfb', `:exec=${counter}\n`);
  writeFileSync(count, '');
  await s.run({ to: ['a@example.com', 'b@example.com', 'c@example.com'] });
  assert.equal(readFileSync(count, 'utf8').trim().split('\n').length, 3, 'recipient-dependent: one run each');
});

test('the general line is chosen by a local sender on a trusted submission, else the fallback', async () => {
  const s = make();
  s.write('general.cfb', ':black=x@nowhere.example\nboss@example.com:\n');
  const local = await s.run({ from: 'boss@example.com', extraEnv: { RELAYCLIENT: '' } });
  assert.doesNotMatch(traceOf(local.deliveries.at(-1)!.message), /black/);
  const remote = await s.run({ from: 'boss@remote.example' });
  assert.match(traceOf(remote.deliveries.at(-1)!.message), /black=accept/);
});

test('per-user file: $NQQFILE.cfb, else <domain>.cfb, else nqqueue.cfb', async () => {
  const s = make({ rcpthosts: ['example.com', 'example.org'] });
  s.write('special.cfb', ':header=X-Special:/never/\n');
  s.write('example.org.cfb', ':header=X-Org:/never/\n');
  s.write('nqqueue.cfb', ':header=X-Default:/never/\n');
  const viaDomain = await s.run({ to: ['a@example.org'] });
  assert.match(s.command(['explain', '--from', 'x@y.z', '--to', 'a@example.org']).stdout, /example\.org\.cfb:1/);
  assert.match(traceOf(viaDomain.deliveries.at(-1)!.message), /header=accept/);
  const ex = s.command(['explain', '--from', 'x@y.z', '--to', 'a@example.com']);
  assert.match(ex.stdout, /nqqueue\.cfb:1/);
  const nqq = s.command(['explain', '--from', 'x@y.z', '--to', 'a@example.org'], '', { NQQFILE: 'special' });
  assert.match(nqq.stdout, /special\.cfb:1/);
  const bad = await s.run({ extraEnv: { NQQFILE: '../etc/passwd' }, errorFd: 'none' });
  assert.equal(bad.code, 71, 'an NQQFILE that is not a plain name defers');
});

test('RELAYCLIENT: stripped for the local check and lookups, passed to qmail-queue unchanged', async () => {
  const s = make();
  s.write('nqqueue.cfb', 'a@example.com:header=X-A:/never/\n');
  const r = await s.run({ to: ['a@example.com.relay', 'x@remote.example.relay'], extraEnv: { RELAYCLIENT: '.relay' } });
  assert.equal(r.code, 0, r.stderr);
  const got = byRecipients(r);
  assert.ok(got.has('a@example.com.relay'));
  assert.ok(got.has('x@remote.example.relay'));
  assert.match(traceOf(got.get('a@example.com.relay')!.message), /per-user: header=accept/);
});

test('a large message is spilled to a private file, delivered intact, and no working file is left', async () => {
  const s = make({ files: { 'nqqueue.conf': 'spill = 64K\n' } });
  const stale = join(s.home, 'tmp');
  mkdirSync(stale, { recursive: true, mode: 0o700 });
  // A working file from a run that was killed (its PID is gone) and an old one of unknown origin.
  writeFileSync(join(stale, '999999999.abc.def.msg'), 'left behind');
  writeFileSync(join(stale, 'foreign.msg'), 'old');
  const old = new Date(Date.now() - 7 * 3600_000);
  utimesSync(join(stale, 'foreign.msg'), old, old);
  const seen = join(s.dir, 'seen');
  const look = s.script('look.sh', `#!/bin/sh\nls ${stale} > ${seen}\nwc -c > ${seen}.size\n`);
  s.write('general.cfb', `:exec=${look}\n`);
  const big = Buffer.concat([Buffer.from('Subject: big\n\n'), Buffer.alloc(3 * 1024 * 1024, 'abcdefghij\n')]);
  const r = await s.run({ message: big });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(withoutTrace(r.deliveries[0]!.message), big);
  const during = readFileSync(seen, 'utf8').trim().split('\n');
  assert.equal(during.length, 1, 'only this run\'s spill file existed while it ran');
  assert.match(during[0]!, new RegExp(`^\\d+\\..*\\.msg$`));
  assert.equal(Number(readFileSync(`${seen}.size`, 'utf8').trim()), big.length);
  assert.deepEqual(readdirSync(stale), [], 'nothing left after the run');
});

test('working files are removed whatever the outcome (refused, deferred, bug)', async () => {
  const s = make({ files: { 'nqqueue.conf': 'spill = 1K\n', 'general.cfb': ':black=sender@client.example\n' } });
  const big = 'Subject: x\n\n' + 'y'.repeat(10_000) + '\n';
  const r = await s.run({ message: big });
  assert.equal(r.code, 82);
  assert.deepEqual(readdirSync(join(s.home, 'tmp')), []);
  const t = await s.run({ message: big, envelope: Buffer.from('Fsender@client.example\0Tx@example.com\0') });
  assert.equal(t.code, 54);
  assert.deepEqual(readdirSync(join(s.home, 'tmp')), []);
});

test('the whole message has a deadline: past it the message is deferred', async () => {
  const s = make({ files: { 'nqqueue.conf': 'deadline = 1s\ntimeout = 60s\n' } });
  const slow = s.script('slow.sh', '#!/bin/sh\nexec sleep 30\n');
  s.write('general.cfb', `:exec=${slow}\n`);
  const r = await s.run({});
  assert.equal(r.code, 82);
  assert.match(r.errorText.toString(), /^Z/);
  assert.ok(r.ms < 10_000, `deferred at the deadline, not after the plugin (${r.ms} ms)`);
  assert.match(r.logLines[0]!, /NQQ_ERR_DEADLINE/);
});

test('the trace header is valid RFC 5322: a Received field, folded lines under 78 columns, a date', async () => {
  const s = make();
  s.write('general.cfb', ':black=a@b.example;black=c@d.example;header=X-Foo:/bar/;attach=.exe;black=e@f.example\n');
  s.write('nqqueue.cfb', ':header=X-Baz:/qux/;black=g@h.example\n');
  const r = await s.run({ to: ['a@example.com'] });
  const trace = traceOf(r.deliveries[0]!.message);
  const lines = trace.replace(/\n$/, '').split('\n');
  for (const [i, l] of lines.entries()) {
    assert.ok(l.length <= 78, `line ${i} is ${l.length} long`);
    if (i > 0) assert.match(l, /^\t\S/);
  }
  const unfolded = trace.replace(/\n\t/g, ' ').trimEnd();
  assert.match(
    unfolded,
    /^Received: by mx\.example\.com \(NQqueue \d+\.\d+\.\d+; general: black=accept, black=accept, header=accept, attach=accept, black=accept; per-user: header=accept, black=accept\) id [a-z0-9]+; (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000$/,
  );
  assert.equal(trace.split('(').length, trace.split(')').length, 'balanced comment');
});

test('one log line per message with result, sender, recipients, client IP, verdicts and times', async () => {
  const s = make({ files: { 'general.cfb': ':black=nobody@nowhere.example\n' } });
  const r = await s.run({ to: ['a@example.com', 'x@remote.example'] });
  assert.equal(r.logLines.length, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, 'nothing else on stderr');
  const line = r.logLines[0]!;
  for (const re of [/result=accept/, /from=<sender@client\.example>/, /rcpts=2/, /ip=192\.0\.2\.7/, /general=black:accept:[\d.]+ms/, /groups=2:queued/, /ms=\d+/, /exit=0/]) {
    assert.match(line, re);
  }
  const d = await s.run({ extraEnv: { NQQUEUE_DEBUG: '2' } });
  assert.ok(d.stderr.trim().split('\n').length > 1, 'NQQUEUE_DEBUG gives more');
  assert.match(d.stderr, /debug: .*black -> accept/);
});

test('envelope and message arrive intact when addresses carry any non-control bytes', async () => {
  const s = make();
  const odd = Buffer.from([0x75, 0xc3, 0xa9, 0xff, 0x22, 0x24, 0x28, 0x40, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d]);
  const r = await s.run({ envelope: envelopeOf('s"$(x)@client.example', [odd]) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.deliveries[0]!.recipients[0], odd);
  assert.equal(r.deliveries[0]!.sender.toString(), 's"$(x)@client.example');
});
