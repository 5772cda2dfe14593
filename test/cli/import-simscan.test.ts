// `nqqueue import-simscan`: simcontrol files from simscan's own README and from installation guides,
// and one with every option, turned into routing files that check-config accepts; the report names
// every option; wrong lines are reported with their line number (exit 1); a site with only the
// compiled simcontrol.cdb; nothing is ever overwritten.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { makeCdb } from '../../src/config/locals.js';
import { setupsForThisFile, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();

/** simscan's README, "Enable Per Domain processing". */
const README = ['postmaster@example.com:clam=yes,spam=no,attach=.txt:.com', 'example.com:clam=no,spam=yes,attach=.mp3', ':clam=yes,spam=yes,trophie=yes,spam_hits=20.1', ''].join('\n');

/** The routing lines of a written file, without its comments. */
function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

function checkConfig(s: Setup, control = s.control): { code: number | null; out: string } {
  const r = s.command(['check-config'], undefined, { NQQUEUE_CONTROLDIR: control });
  return { code: r.code, out: r.stdout + r.stderr };
}

test('the README example: printed, not written, by default; --write writes what check-config accepts', () => {
  const s = make();
  s.write('simcontrol', README);
  const dry = s.command(['import-simscan']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(existsSync(join(s.control, 'general.cfb')), false);
  assert.equal(existsSync(join(s.control, 'nqqueue.cfb')), false);
  assert.match(dry.stdout, /=== nqqueue\.cfb \(would be written to .*nqqueue\.cfb\)\n/);
  // Every option met is in the report with its mapping.
  for (const re of [
    /line 1: postmaster@example\.com\n {2}clam=yes: mapped: clamav on the fallback line of general\.cfb/,
    /spam=no: mapped: no spamassassin on the postmaster@example\.com line/,
    /attach=\.txt:\.com: mapped: attach=\.txt:\.com on the postmaster@example\.com line of nqqueue\.cfb \(per recipient/,
    /line 2: example\.com\n {2}clam=no: not mapped: NQqueue never skips the virus scan for a recipient/,
    /line 3: \(default line\)/,
    /trophie=yes: not mapped: NQqueue has no trophie plugin/,
    /spam_hits=20\.1: mapped: hits=20\.1 on spamassassin/,
    /several recipients: simscan applied one set of settings to the whole message/,
    /sender lines: simscan also applied a line when its address or domain was the sender/,
    /--enable-received: /,
    /--enable-spam-hits=N \/ --enable-spam-passthru: /,
  ]) {
    assert.match(dry.stdout, re);
  }

  const r = s.command(['import-simscan', '--write']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*general\.cfb\n/);
  assert.deepEqual(lines(join(s.control, 'general.cfb')), [':clamav']);
  // The domain inherits the default's spam_hits; the user line spells out what it inherited (nothing
  // of spam: spam=no), as NQqueue does not merge a user line with its domain's.
  assert.deepEqual(lines(join(s.control, 'nqqueue.cfb')), ['postmaster@example.com:attach=.txt:.com', 'example.com:spamassassin=hits=20.1;attach=.mp3', ':spamassassin=hits=20.1']);
  const c = checkConfig(s);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /check-config: OK/);
  // What the routing does with it, per recipient.
  const e = s.command(['explain', '--from', 'someone@remote.example', '--to', 'postmaster@example.com', '--to', 'bob@example.com']);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /attach=\.txt:\.com/);
  assert.match(e.stdout, /spamassassin=hits=20\.1/);
});

test('every option: spam_passthru, spamuser, regex, size_limit, qmailqueue, avira, a default attach list', () => {
  const s = make({ rcpthosts: ['example.com', 'example.org'] });
  s.write(
    'simcontrol',
    [
      // From the qmailtoaster guide: the whole site, attachments refused for everyone.
      ':clam=yes,spam=yes,spam_passthru=yes,attach=.vbs:.lnk:.scr:.wsh:.hta:.pif,size_limit=20000000',
      'example.org:spam=yes,spam_passthru=no,spamuser=vpopmail,qmailqueue=/var/qmail/bin/qmail-queue-dk,avira=yes',
      'vip@example.com:spam=no,regex=^X-Mailer.*Bulk:viagra',
      'list-owner@example.com:spam=yes',
      '',
    ].join('\n'),
  );
  const r = s.command(['import-simscan', '--write']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(join(s.control, 'general.cfb')), [':clamav=maxsize=20000000;attach=.vbs:.lnk:.scr:.wsh:.hta:.pif']);
  assert.deepEqual(lines(join(s.control, 'nqqueue.cfb')), [
    'example.org:spamassassin=user=vpopmail,maxsize=20000000',
    // regex= is per recipient once one line has its own; the body pattern cannot be said. simscanmk
    // lower-cased the line, and simscan matched what it kept, case-sensitively.
    'vip@example.com:header=x-mailer:/bulk/',
    'list-owner@example.com:spamassassin=pass,maxsize=20000000',
    ':spamassassin=pass,maxsize=20000000',
  ]);
  for (const re of [
    /spam_passthru=yes: mapped: spamassassin=pass/,
    /spam_passthru=no: mapped: spam is refused/,
    /spamuser=vpopmail: mapped: user=vpopmail on spamassassin \(simscan used it only for mail with one recipient/,
    /qmailqueue=\/var\/qmail\/bin\/qmail-queue-dk: not mapped: NQqueue hands every message to one qmail-queue \(NQQUEUE_QMAILQUEUE\)/,
    /avira=yes: not mapped: NQqueue has no avira plugin/,
    /regex=\^x-mailer\.\*bulk|regex=\^X-Mailer/i,
    /regex=viagra: not mapped: simscan matched it against every line of the message, headers and body alike/,
    /size_limit=20000000: mapped: maxsize=20000000 on spamassassin and clamav/,
    /attach=\.vbs:\.lnk:\.scr:\.wsh:\.hta:\.pif: mapped: attach=\.vbs:\.lnk:\.scr:\.wsh:\.hta:\.pif on the fallback line of general\.cfb \(every message\)/,
  ]) {
    assert.match(r.stdout, re);
  }
  // simscanmk lower-cased the line: what simscan really matched, and that NQqueue now matches it.
  assert.match(r.stdout, /simscanmk lower-cased this line and simscan matched case-sensitively/);
  const c = checkConfig(s);
  assert.equal(c.code, 0, c.out);
});

test('spam_hits and spam_passthru on one line: hits is mapped, passthru is said to be ignored', () => {
  const s = make();
  s.write('simcontrol', ':clam=yes,spam=yes,spam_hits=8,spam_passthru=yes\n');
  const r = s.command(['import-simscan', '--write']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(join(s.control, 'nqqueue.cfb')), [':spamassassin=hits=8']);
  assert.match(r.stdout, /spam_passthru=yes: not mapped: spam_hits applies to this line too, and simscan built with --enable-spam-hits ignores spam_passthru/);
});

test('wrong lines: each with its line number, exit 1, the rest still mapped', () => {
  const s = make();
  s.write(
    'simcontrol',
    [
      '# simcontrol for example.com',
      'example.com:clam=yes, spam=yes',
      'bob@example.com:spam=maybe,spam_hit=5',
      'no colon here',
      'example.com:spam=no',
      ':clam=yes,spam=yes,spam_hits=ten,attach=',
      '',
    ].join('\n'),
  );
  const r = s.command(['import-simscan', '--write']);
  assert.equal(r.code, 1, r.stdout);
  const file = join(s.control, 'simcontrol');
  const problems = r.stderr.trim().split('\n');
  assert.equal(problems.at(-1), `nqqueue import-simscan: 7 problems in ${file}`);
  assert.deepEqual(
    problems.slice(0, -1).map((l) => l.replace(`${file}:`, '').slice(0, 40)),
    [
      '2: simscan reads this line as clam=yes,=',
      '3: spam=maybe: simscan knows only yes an',
      '3: spam_hit=5: not a simscan option (sim',
      "4: no ':' (simcontrol lines are PATTERN:",
      '5: "example.com": already on line 2, and',
      "6: spam_hits=ten: not a number (simscan'",
      '6: attach=: an empty list (simscan then ',
    ],
  );
  assert.match(r.stderr, /:2: simscan reads this line as clam=yes,=spam \(a space, quote or "=" inside an item shifts its reading\): write clam=yes,spam=yes\n/);
  // What could be read is mapped, as written (the space after the comma is what simscan misread);
  // bob's spam=maybe is ignored, as simscan did, so he keeps his domain's spam=yes.
  assert.deepEqual(lines(join(s.control, 'nqqueue.cfb')), ['example.com:spamassassin', 'bob@example.com:spamassassin', ':spamassassin']);
  assert.equal(checkConfig(s).code, 0);
});

test('a site with only simcontrol.cdb (compiled by simscanmk): read from the cdb, records named by number', () => {
  const s = make();
  // As simscanmk writes it: the default line as written, the others lower-cased, in file order.
  const records: [string, string][] = [
    ['postmaster@example.com', 'clam=yes,spam=no,attach=.txt:.com'],
    ['example.com', 'clam=no,spam=yes,attach=.mp3'],
    ['', 'clam=yes,spam=yes,trophie=yes,spam_hits=20.1'],
    ['bad.example.com', 'clam=sometimes'],
  ];
  writeFileSync(join(s.control, 'simcontrol.cdb'), makeCdb(records.map(([k, v]) => [Buffer.from(k), Buffer.from(v)])));
  const r = s.command(['import-simscan', '--write']);
  assert.equal(r.code, 1, r.stderr);
  const cdb = join(s.control, 'simcontrol.cdb');
  assert.match(r.stderr, new RegExp(`^${cdb.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: clam=sometimes: simscan knows only yes and no`, 'm'));
  assert.match(r.stderr, /numbers are cdb records, in the order simscanmk wrote the lines/);
  assert.match(r.stdout, /=== report \(.*simcontrol\.cdb\)\nrecord 1: postmaster@example\.com/);
  assert.deepEqual(lines(join(s.control, 'nqqueue.cfb')), ['postmaster@example.com:attach=.txt:.com', 'example.com:spamassassin=hits=20.1;attach=.mp3', 'bad.example.com:spamassassin=hits=20.1', ':spamassassin=hits=20.1']);
  assert.equal(checkConfig(s).code, 0);
  // --simcontrol names the file; the same result.
  const again = s.command(['import-simscan', '--simcontrol', cdb]);
  assert.match(again.stdout, /example\.com:spamassassin=hits=20\.1;attach=\.mp3/);
});

test('a simcontrol edited since simscanmk last ran: said, and the text is followed', () => {
  const s = make();
  s.write('simcontrol', ':clam=yes,spam=yes\n');
  writeFileSync(join(s.control, 'simcontrol.cdb'), makeCdb([[Buffer.from(''), Buffer.from('clam=yes,spam=no')]]));
  const r = s.command(['import-simscan']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: .*simcontrol\.cdb differs from .*simcontrol \(simscanmk not run since the last edit\?\)/);
  assert.match(r.stdout, /\n:spamassassin\n/);
});

test('never overwrites: an existing file is left alone and the new version goes next to it', () => {
  const s = make();
  s.write('simcontrol', README);
  s.write('general.cfb', ':black=spammer@bad.example\n');
  const r = s.command(['import-simscan', '--write']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /left .*\/general\.cfb alone \(it exists\); the new version is .*\/general\.cfb\.simscan-import/);
  assert.equal(readFileSync(join(s.control, 'general.cfb'), 'utf8'), ':black=spammer@bad.example\n');
  assert.deepEqual(lines(join(s.control, 'general.cfb.simscan-import')), [':clamav']);
  const second = s.command(['import-simscan', '--write']);
  assert.match(second.stdout, /general\.cfb\.simscan-import\.2/);
  assert.match(second.stdout, /nqqueue\.cfb\.simscan-import: compare/);
  assert.equal(checkConfig(s).code, 0);
});

test('--out DIR writes there, not into the control directory; usage errors are exit 2', () => {
  const s = make();
  s.write('simcontrol', README);
  const dir = join(mkdtempSync(join(tmpdir(), 'nqq-simscan-')), 'new');
  const r = s.command(['import-simscan', '--out', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(join(dir, 'nqqueue.cfb')), ['postmaster@example.com:attach=.txt:.com', 'example.com:spamassassin=hits=20.1;attach=.mp3', ':spamassassin=hits=20.1']);
  assert.equal(existsSync(join(s.control, 'nqqueue.cfb')), false);
  const both = s.command(['import-simscan', '--out', dir, '--write']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--write \(into the control directory\) or --out DIR, not both/);
  const missing = s.command(['import-simscan', '--simcontrol', join(dir, 'nothing-here')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nothing-here: no such file/);
});
