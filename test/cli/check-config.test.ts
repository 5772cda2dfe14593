// `nqqueue check-config`: one deliberate mistake per case, each reported once, at the file and line
// where it was written, with what to write instead; and every problem of every file in one run.

import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { pluginDir, setupsForThisFile, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();

/** A configuration that check-config finds right: each case adds one mistake to it. */
function good(): Setup {
  const s = make();
  s.write('nqqueue.conf', 'deadline = 60s\n[clamav]\nsocket = /run/clamav/clamd.ctl\n[spamassassin]\nhost = 127.0.0.1:783\nhits = 5\n');
  s.write('general.cfb', ':clamav;black=spammer@bad.example\n');
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=pass\nexample.com:spamassassin;quarantine=spamassassin\n');
  return s;
}

function check(s: Setup): { code: number | null; problems: string[]; stdout: string } {
  const r = s.command(['check-config']);
  const lines = r.stderr.trim() === '' ? [] : r.stderr.trim().split('\n');
  if (lines.length > 0) assert.match(lines.at(-1)!, /^nqqueue check-config: \d+ problems?$/);
  return { code: r.code, problems: lines.slice(0, -1).map((l) => l.replace(`${s.control}/`, '')), stdout: r.stdout };
}

/** Exactly one problem, exit 1. */
function one(s: Setup): string {
  const r = check(s);
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.problems.length, 1, r.problems.join('\n'));
  return r.problems[0]!;
}

test('the baseline configuration is right', () => {
  const r = check(good());
  assert.equal(r.code, 0, r.problems.join('\n'));
  assert.match(r.stdout, /OK/);
});

test('an unknown PARAMS key, with its did-you-mean', () => {
  const s = good();
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=pass,hist=3\nexample.com:spamassassin;quarantine=spamassassin\n');
  assert.equal(one(s), 'nqqueue.cfb:1: plugin spamassassin: unknown key "hist" (did you mean "host=" or "hits="?)');
});

test('an unknown bare word', () => {
  const s = good();
  s.write('general.cfb', ':clamav=pas;black=spammer@bad.example\n');
  assert.equal(one(s), 'general.cfb:1: plugin clamav: unknown word "pas" (did you mean "pass"?)');
});

test('a wrong case: spamassassin=PASS', () => {
  const s = good();
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=PASS\nexample.com:spamassassin;quarantine=spamassassin\n');
  assert.equal(one(s), 'nqqueue.cfb:1: plugin spamassassin: unknown word "PASS" (did you mean "pass"? names are lower-case)');
});

test('a key written in capitals: Hits=3', () => {
  const s = good();
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=Hits=3\nexample.com:spamassassin;quarantine=spamassassin\n');
  assert.equal(one(s), 'nqqueue.cfb:1: plugin spamassassin: "Hits=3": keys are lower-case (hits=3)');
});

test('an unknown [section]', () => {
  const s = good();
  // Its keys belong to no plugin: not to the section before it either.
  s.write('nqqueue.conf', 'deadline = 60s\n[clamav]\nsocket = /run/clamav/clamd.ctl\n[clamv]\nsocket = relative\n');
  assert.equal(one(s), 'nqqueue.conf:4: unknown section [clamv]: no plugin of that name (did you mean [clamav]?)');
});

test('the [web] and [digest] sections: their own keys, checked where written', () => {
  const s = good();
  s.write(
    'nqqueue.conf',
    'quarantine_expire = 14d\n[web]\nlisten = 127.0.0.1:8025\ncheckpassword = /home/vpopmail/bin/vchkpw\nadmins = postmaster@example.com\nurl = https://q.example.com\n[digest]\ncadence = hourly\nlink_ttl = 3d\n',
  );
  assert.equal(check(s).code, 0, check(s).problems.join('\n'));
  s.write('nqqueue.conf', '[web]\nlisen = 127.0.0.1:8025\n');
  assert.equal(one(s), 'nqqueue.conf:2: [web] has no setting "lisen" (did you mean "listen"?)');
  s.write('nqqueue.conf', '[web]\nlisten = 0.0.0.0\n');
  assert.match(one(s), /^nqqueue\.conf:2: \[web\] listen: use HOST:PORT/);
  s.write('nqqueue.conf', '[web]\ncheckpassword = vchkpw\n');
  assert.match(one(s), /^nqqueue\.conf:2: \[web\] checkpassword: the program must be an absolute path/);
  s.write('nqqueue.conf', '[digest]\ncadence = weekly\n');
  assert.equal(one(s), 'nqqueue.conf:2: [digest] cadence: must be never, daily or hourly');
  s.write('nqqueue.conf', '[digest]\nfrom = quarantine@example.com, postmaster@example.com\n');
  assert.match(one(s), /^nqqueue\.conf:2: \[digest\] from: one address, not 2/);
  s.write('nqqueue.conf', 'quarantine_expire = 30\n');
  assert.match(one(s), /^nqqueue\.conf:1: quarantine_expire: not an age: "30"/);
});

test('a key in a section that its plugin does not take', () => {
  const s = good();
  s.write('nqqueue.conf', 'deadline = 60s\n[clamav]\nsocket = /run/clamav/clamd.ctl\nhits = 5\n');
  assert.equal(one(s), 'nqqueue.conf:4: unknown key "hits" in [clamav]');
});

test('a global key written after a section (it would silently be a key of that section)', () => {
  const s = good();
  s.write('nqqueue.conf', 'deadline = 60s\n[rspamd]\nurl = http://127.0.0.1:11333\nplugin_dir = /usr/local/lib/nqqueue\n');
  assert.equal(one(s), 'nqqueue.conf:4: "plugin_dir" is a global setting, but here it is in [rspamd] (from line 2): move it above the first [section]');
});

test('an unknown global setting, with its did-you-mean', () => {
  const s = good();
  s.write('nqqueue.conf', 'deadlin = 60s\n');
  assert.equal(one(s), 'nqqueue.conf:1: unknown setting "deadlin" (did you mean "deadline"?)');
});

test('a bad value in a plugin section is reported where it was written, not at the routing lines using it', () => {
  const s = good();
  s.write('nqqueue.conf', 'deadline = 60s\n[spamassassin]\nhost = 127.0.0.1:783\nhits = lots\n');
  assert.equal(one(s), 'nqqueue.conf:4: hits="lots": not a number');
});

test('a key given twice on a line where it takes one value', () => {
  const s = good();
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=hits=3,hits=4\nexample.com:spamassassin;quarantine=spamassassin\n');
  assert.equal(one(s), 'nqqueue.cfb:1: plugin spamassassin: "hits" is given twice');
});

test('a .example.com: pattern (the rcpthosts habit)', () => {
  const s = good();
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=pass\n.example.com:spamassassin;quarantine=spamassassin\n');
  assert.equal(
    one(s),
    'nqqueue.cfb:2: pattern ".example.com" never matches: a domain line covers exactly that domain, not its subdomains as in rcpthosts (write "example.com"; for its subdomains a regex such as /.*@.*\\.example\\.com/)',
  );
});

test('a *@example.com: pattern', () => {
  const s = good();
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=pass\n*@example.com:spamassassin;quarantine=spamassassin\n');
  assert.equal(one(s), 'nqqueue.cfb:2: pattern "*@example.com" never matches: patterns have no wildcards (write "example.com" for every address in that domain, or a /regex/ line)');
});

test('a domain with a trailing dot', () => {
  const s = good();
  s.write('nqqueue.cfb', 'vip@example.com:spamassassin=pass\nexample.com.:spamassassin;quarantine=spamassassin\n');
  assert.equal(one(s), 'nqqueue.cfb:2: pattern "example.com." never matches: addresses have no trailing dot (write "example.com")');
});

test('a missing rcpthosts', () => {
  const s = good();
  unlinkSync(join(s.control, 'rcpthosts'));
  assert.match(one(s), /^rcpthosts:0: .*rcpthosts does not exist: without it no recipient is local/);
});

test('several problems in several files come out together, in file and line order', () => {
  const s = good();
  s.write('nqqueue.conf', 'deadline = soon\n[clamav]\nsockt = /x\n[spamassassin]\nhits = 5\nplugin_dir = /x\n');
  s.write('general.cfb', ':clamav=PASS;black=spammer@bad.example\nno colon\n');
  s.write('nqqueue.cfb', '.example.com:spamassassin\nexample.com:spamassassin=hitz=3;quarantine=spamasassin\n');
  s.write('example.org.cfb', ':header=Subject:/x/,txt=no\n');
  const r = check(s);
  assert.equal(r.code, 1);
  assert.deepEqual(
    r.problems.map((p) => p.replace(/: .*/, '')),
    ['example.org.cfb:1', 'general.cfb:1', 'general.cfb:2', 'nqqueue.cfb:1', 'nqqueue.cfb:2', 'nqqueue.cfb:2', 'nqqueue.conf:1', 'nqqueue.conf:3', 'nqqueue.conf:6'],
    r.problems.join('\n'),
  );
  assert.match(r.problems[5]!, /quarantine: unknown word "spamasassin" \(did you mean "spamassassin"\?\)/);
});

test('a third-party plugin that declares no PARAMS takes only the common keys; check-config says so', () => {
  const s = make();
  const dir = pluginDir(s, {
    plain: "export default { name: 'plain', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: 'accept' }; } };\n",
    tagged:
      "export default { name: 'tagged', version: '1', stages: ['general'], params: { keys: { tag: {} }, words: ['loud'] }, configure({ params }) { return { tag: params.get('tag') }; }, async run() { return { verdict: 'accept' }; } };\n",
  });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
  s.write('general.cfb', ':plain=timeout=5s;tagged=tag=x,loud\n');
  const ok = check(s);
  assert.equal(ok.code, 0, ok.problems.join('\n'));
  assert.match(ok.stdout, /note: plugin plain \(.*plain\.js\) declares no PARAMS: only timeout, onerror and maxsize are accepted for it/);
  assert.doesNotMatch(ok.stdout, /plugin tagged/);
  s.write('general.cfb', ':plain=tag=x;tagged=tag=x,quiet\n');
  const bad = check(s);
  assert.deepEqual(bad.problems, [
    'general.cfb:1: plugin plain: unknown key "tag" (plugin plain declares no PARAMS: it takes only timeout, onerror, maxsize)',
    'general.cfb:1: plugin tagged: unknown word "quiet" (it takes the words: loud)',
  ]);
  s.write('nqqueue.conf', `plugin_dir = ${dir}\n[tagged]\ntag = y\ncolour = red\n`);
  s.write('general.cfb', ':tagged\n');
  assert.deepEqual(check(s).problems, ['nqqueue.conf:4: unknown key "colour" in [tagged]']);
});

test('notes, not errors: a general.cfb without a fallback line, a domain file for a domain that is not local', () => {
  const s = good();
  s.write('general.cfb', 'boss@example.com:clamav\n');
  s.write('example.net.cfb', ':black=spammer@bad.example\n');
  s.write('example.com.cfb', ':black=spammer@bad.example\n');
  const r = check(s);
  assert.equal(r.code, 0, r.problems.join('\n'));
  assert.match(r.stdout, /note: general\.cfb has no fallback line: mail from senders that are not local, or not on a trusted submission, gets no general plugins/);
  assert.match(r.stdout, /note: example\.net\.cfb: example\.net is not a local domain \(rcpthosts, morercpthosts\.cdb\), so this file applies only as an NQQFILE/);
  assert.doesNotMatch(r.stdout, /example\.com\.cfb/);
});
