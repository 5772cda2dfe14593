// `nqqueue lists`: add, replace, del (by id and by value), show and export, import of SpamAssassin
// (whitelist_from & co.) and simscan (simcontrol spam=no) files and of its own export, all or nothing;
// bad values and options are usage errors (exit 2) that change nothing; every change is audited.

import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { setupsForThisFile, type Setup } from '../helpers/nqq.js';

const make = setupsForThisFile();

function home(): Setup {
  const s = make();
  mkdirSync(s.home, { recursive: true, mode: 0o700 });
  return s;
}

function ok(s: Setup, ...args: string[]): string {
  const r = s.command(['lists', ...args]);
  assert.equal(r.code, 0, `lists ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** show, without the ids: list, action, value, skip, note. */
function shown(s: Setup, ...args: string[]): string[] {
  return ok(s, 'show', ...args)
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t').slice(1).join(' | '));
}

test('lists add, replace, show, del by id and by value; each change in the audit log', () => {
  const s = home();
  const added = ok(s, 'add', 'allow', 'Friend@Partner.Example', '--user', 'Bob@Example.com', '--skip', 'spamassassin,rspamd', '--note', "o'brien's");
  const id = /^added ([0-9a-f]{16}): user bob@example\.com: allow address friend@partner\.example \(skips spamassassin, rspamd\)\n$/.exec(added)?.[1];
  assert.ok(id, added);
  ok(s, 'add', 'block', '.spam.example', '--domain', '@example.com');
  ok(s, 'add', 'block', '2001:DB8:0:0::/32', '--global');
  ok(s, 'add', 'allow', '192.0.2.7', '--global', '--skip', 'none');
  assert.deepEqual(shown(s), [
    'domain example.com | block | .spam.example | - | ',
    'global | block | 2001:db8::/32 | - | ',
    'global | allow | 192.0.2.7/32 | skips nothing | ',
    "user bob@example.com | allow | friend@partner.example | skips spamassassin,rspamd | o'brien's",
  ]);
  assert.deepEqual(shown(s, '--global', '--action', 'allow'), ['global | allow | 192.0.2.7/32 | skips nothing | ']);
  // The same value again in the same list: replaced, same id.
  assert.match(ok(s, 'add', 'block', 'friend@partner.example', '--user', 'bob@example.com'), new RegExp(`^replaced ${id}: user bob@example\\.com: block address friend@partner\\.example\\n$`));
  assert.deepEqual(shown(s, '--user', 'bob@example.com'), ['user bob@example.com | block | friend@partner.example | - | ']);
  const json = JSON.parse(ok(s, 'show', '--json', '--user', 'bob@example.com')) as { total: number; entries: { id: string; action: string }[] };
  assert.equal(json.total, 1);
  assert.equal(json.entries[0]!.id, id);
  // del by id, del by value in its list; a second del finds nothing (exit 1).
  assert.match(ok(s, 'del', id!), /^removed /);
  assert.match(ok(s, 'del', '.spam.example', '--domain', 'example.com'), /^removed [0-9a-f]{16}: domain example\.com: block domain with subdomains \.spam\.example\n$/);
  const again = s.command(['lists', 'del', id!]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^nqqueue lists: no list entry /);
  const notThere = s.command(['lists', 'del', '.spam.example', '--domain', 'example.com']);
  assert.equal(notThere.code, 1);
  assert.match(notThere.stderr, /no entry for \.spam\.example in the domain example\.com list/);
  const audit = s.command(['quarantine', 'audit']).stdout.split('\n').filter(Boolean).map((l) => l.split('\t').slice(3).join(' '));
  assert.deepEqual(audit.slice(0, 6), [
    'list-add - user bob@example.com: allow address friend@partner.example (skips spamassassin, rspamd)',
    'list-add - domain example.com: block domain with subdomains .spam.example',
    'list-add - global: block network 2001:db8::/32',
    'list-add - global: allow network 192.0.2.7/32 (skips nothing)',
    'list-add - user bob@example.com: block address friend@partner.example (was allow)',
    'list-del - user bob@example.com: block address friend@partner.example',
  ]);
});

test('lists: bad values and options are usage errors (exit 2) and change nothing', () => {
  const s = home();
  const cases: [string[], RegExp][] = [
    [['add', 'allow', 'friend@partner.example'], /which list: --global, --domain DOMAIN or --user ADDRESS/],
    [['add', 'allow', 'friend@partner.example', '--global', '--user', 'bob@example.com'], /name one list/],
    [['add', 'permit', 'friend@partner.example', '--global'], /add allow or add block/],
    [['add', 'block', 'not an address', '--global'], /is not a domain/],
    [['add', 'block', '192.0.2.1/24', '--global'], /has host bits set: did you mean 192\.0\.2\.0\/24\?/],
    [['add', 'block', '192.0.2.0/33', '--global'], /prefix length must be 0 to 32/],
    [['add', 'block', 'x@y.example', '--user', 'nobody'], /is not an address/],
    [['add', 'block', 'x@y.example', '--global', '--skip', 'spamassassin'], /--skip is for allow entries/],
    [['add', 'allow', 'x@y.example', '--global', '--skip', 'clamav'], /clamav is never skipped \(a virus check runs for every message\)/],
    [['add', 'allow', 'x@y.example', '--global', '--skip', 'Spam Assassin!'], /is not a plugin name/],
    [['add', 'allow', 'x\u001b[2J@y.example', '--global'], /control characters/],
    [['del', 'x@y.example'], /del VALUE needs its list/],
    [['show', '--action', 'maybe'], /--action allow or --action block/],
    [['import', '/dev/null', '--global'], /--format spamassassin, simscan, nqqueue/],
    [['import', '--format', 'spamassassin', '/dev/null'], /which list the entries go into/],
    [['frobnicate'], /unknown subcommand/],
  ];
  for (const [args, want] of cases) {
    const r = s.command(['lists', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
    assert.doesNotMatch(r.stderr, /\x1b/);
    assert.doesNotMatch(r.stderr, /    at /, 'no stack trace');
  }
  assert.equal(ok(s, 'show'), '');
});

test('lists import --format spamassassin: whitelist_from/welcomelist_from allow, blacklist_from/blocklist_from block, un... takes back; what a sender entry cannot say is listed, not imported', () => {
  const s = home();
  const file = join(s.dir, 'user_prefs');
  writeFileSync(
    file,
    [
      '# SpamAssassin user preferences file',
      'required_score 5',
      'whitelist_from joe@example.com fred@example.com',
      'welcomelist_from *@partner.example   # a comment',
      'whitelist_from *@*.partner.example',
      'blacklist_from *@spammer.example',
      'blocklist_from bad\\@worse.example',
      'whitelist_from_rcvd joe@relay.example relay.example',
      'whitelist_auth *@bank.example',
      'whitelist_from joe*@example.org',
      'whitelist_from old@example.com',
      'unwhitelist_from old@example.com',
      'score BAYES_99 4',
      '',
    ].join('\n'),
  );
  const r = s.command(['lists', 'import', '--format', 'spamassassin', file, '--user', 'bob@example.com']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'imported 6 entries (6 new, 0 replaced); 4 lines not imported (above)\n');
  assert.deepEqual(
    r.stderr.trim().split('\n').map((l) => l.replace(`${file}: `, '')),
    [
      'nqqueue lists: line 5: *@*.partner.example imported as .partner.example, which also covers partner.example itself',
      'nqqueue lists: line 8: whitelist_from_rcvd is not imported (a sender entry cannot say what it also requires)',
      'nqqueue lists: line 9: whitelist_auth is not imported (a sender entry cannot say what it also requires)',
      'nqqueue lists: line 10: "joe*@example.org": only addresses, *@domain and *@*.domain can be list entries',
    ],
  );
  assert.deepEqual(shown(s).sort(), [
    'user bob@example.com | allow | .partner.example | default policy | imported from whitelist_from',
    'user bob@example.com | allow | fred@example.com | default policy | imported from whitelist_from',
    'user bob@example.com | allow | joe@example.com | default policy | imported from whitelist_from',
    'user bob@example.com | allow | partner.example | default policy | imported from welcomelist_from',
    'user bob@example.com | block | bad@worse.example | - | imported from blocklist_from',
    'user bob@example.com | block | spammer.example | - | imported from blacklist_from',
  ]);
  // A bare domain is a glob that matches no address in SpamAssassin: not imported as a whole domain.
  writeFileSync(file, 'whitelist_from partner.example @other.example *@fine.example\n');
  const bare = s.command(['lists', 'import', '--format', 'spamassassin', file, '--user', 'carol@example.com']);
  assert.equal(bare.code, 0, bare.stderr);
  assert.match(bare.stderr, /line 1: "partner\.example": not an address, so SpamAssassin matches no sender with it/);
  assert.match(bare.stderr, /line 1: "@other\.example": not an address/);
  assert.deepEqual(shown(s, '--user', 'carol@example.com'), ['user carol@example.com | allow | fine.example | default policy | imported from whitelist_from']);
  // A wrong line imports nothing.
  writeFileSync(file, 'whitelist_from ok@example.com\nblacklist_from\nwhitelist_from not..valid@@x\n');
  const bad = s.command(['lists', 'import', '--format', 'spamassassin', file, '--global']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /line 2: blacklist_from without an address/);
  assert.match(bad.stderr, /nothing imported: 2 wrong lines/);
  assert.deepEqual(shown(s, '--global'), []);
});

test('lists import --format simscan: a spam=no line goes into that recipient\'s (or domain\'s) list, allowing every sender and skipping spamassassin; clam=no and the default line are listed, not imported', () => {
  const s = home();
  const file = join(s.dir, 'simcontrol');
  writeFileSync(file, ['postmaster@example.com:clam=yes,spam=no,attach=.txt:.com', 'example.org:clam=no,spam=no', 'example.net:clam=no,spam=yes', ':clam=yes,spam=no,spam_hits=20.1', ''].join('\n'));
  // simcontrol is looked up by recipient: a target list would put it in the wrong one.
  const wrong = s.command(['lists', 'import', '--format', 'simscan', file, '--domain', 'example.com']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /each simcontrol line names the recipient or domain whose list it goes into/);
  const r = s.command(['lists', 'import', '--format', 'simscan', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'imported 4 entries (4 new, 0 replaced); 3 lines not imported (above)\n');
  assert.match(r.stderr, /line 2: clam=no is not imported: NQqueue never skips a virus check/);
  assert.match(r.stderr, /line 3: clam=no is not imported/);
  assert.match(r.stderr, /line 4: the default line \(no pattern\) is not a list entry/);
  assert.deepEqual(shown(s), [
    'domain example.org | allow | 0.0.0.0/0 | skips spamassassin | imported from simcontrol: example.org spam=no (every sender)',
    'domain example.org | allow | ::/0 | skips spamassassin | imported from simcontrol: example.org spam=no (every sender)',
    'user postmaster@example.com | allow | 0.0.0.0/0 | skips spamassassin | imported from simcontrol: postmaster@example.com spam=no (every sender)',
    'user postmaster@example.com | allow | ::/0 | skips spamassassin | imported from simcontrol: postmaster@example.com spam=no (every sender)',
  ]);
  // Never a sender entry: mail claiming to come from those names is checked as any other.
  assert.deepEqual(shown(s, '--global'), []);
});

test('lists export, then import --format nqqueue into an empty store: the same entries', () => {
  const s = home();
  ok(s, 'add', 'allow', 'friend@partner.example', '--user', 'bob@example.com', '--skip', 'rspamd', '--note', 'a friend');
  ok(s, 'add', 'block', '.spam.example', '--domain', 'example.com');
  ok(s, 'add', 'allow', '2001:db8::/48', '--global', '--skip', 'none');
  ok(s, 'add', 'allow', 'news.example', '--global');
  const exported = ok(s, 'export');
  assert.equal(
    exported,
    [
      '# nqqueue lists export: scope\towner\taction\tvalue\tskip\tnote',
      'domain\texample.com\tblock\t.spam.example\t-\t',
      'global\t-\tallow\t2001:db8::/48\tnone\t',
      'global\t-\tallow\tnews.example\t-\t',
      'user\tbob@example.com\tallow\tfriend@partner.example\trspamd\ta friend',
      '',
    ].join('\n'),
  );
  const t = home();
  const r = t.command(['lists', 'import', '--format', 'nqqueue', '-'], exported);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ok(t, 'export'), exported);
  assert.deepEqual(shown(t), shown(s));
  const wrong = t.command(['lists', 'import', '--format', 'nqqueue', '-'], 'galaxy\t-\tallow\tx@y.example\n');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /\(stdin\): line 1: unknown scope "galaxy"/);
  // A note is what `add --note` takes: no control characters (a NUL would cut it short in the store).
  const hostile = t.command(['lists', 'import', '--format', 'nqqueue', '-'], 'user\tbob@example.com\tallow\tnew@y.example\t-\tred\x1b[31m\x00more\n');
  assert.equal(hostile.code, 1, hostile.stderr);
  assert.match(hostile.stderr, /\(stdin\): line 1: a note with control characters/);
  assert.doesNotMatch(ok(t, 'export'), /new@y\.example/);
});

test('check-config: the [lists] keys are checked where they are written', () => {
  const s = make();
  s.write('nqqueue.cfb', ':lists\n');
  s.write('nqqueue.conf', '[lists]\nskip = spamassassin:clamav\ntext = refused \u00e9\n');
  const r = s.command(['check-config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nqqueue\.conf:2: .*clamav is never skipped/);
  assert.match(r.stderr, /nqqueue\.conf:3: .*text: one line of printable ASCII/);
  s.write('nqqueue.conf', '[lists]\nskip = spamassassin:rspamd\ntext = Not from you (#5.7.1)\n');
  const good = s.command(['check-config']);
  assert.equal(good.code, 0, good.stderr);
});

test('lists import run as root: the file is read as root, the store is written as the home owner', { skip: process.geteuid?.() === 0 ? false : 'needs root (switching users)' }, () => {
  const NOBODY = 65534;
  const s = make();
  chmodSync(s.dir, 0o755);
  mkdirSync(s.home, { mode: 0o700 });
  chownSync(s.home, NOBODY, NOBODY);
  // Bob's own preferences, which only he (and root) can read.
  const prefs = join(s.dir, 'user_prefs');
  writeFileSync(prefs, 'whitelist_from friend@partner.example\n', { mode: 0o600 });
  const r = s.command(['lists', 'import', '--format', 'spamassassin', prefs, '--user', 'bob@example.com']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'imported 1 entry (1 new, 0 replaced)\n');
  for (const name of readdirSync(s.home)) assert.equal(statSync(join(s.home, name)).uid, NOBODY, `${name} belongs to the home's owner`);
  assert.deepEqual(shown(s), ['user bob@example.com | allow | friend@partner.example | default policy | imported from whitelist_from']);
  const missing = s.command(['lists', 'import', '--format', 'spamassassin', join(s.dir, 'nope'), '--global']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^nqqueue lists: \S+nope: ENOENT/);
});

test('lists show and export write every line before they exit (5,000 entries through a pipe)', () => {
  const s = home();
  const lines = Array.from({ length: 5000 }, (_, i) => `global\t-\tblock\tsender${i}@flood.example\t-\tnote ${i}`);
  const imp = s.command(['lists', 'import', '--format', 'nqqueue', '-'], `${lines.join('\n')}\n`);
  assert.equal(imp.code, 0, imp.stderr);
  assert.equal(imp.stdout, 'imported 5000 entries (5000 new, 0 replaced)\n');
  for (let i = 0; i < 3; i++) {
    const exp = s.command(['lists', 'export']);
    assert.equal(exp.code, 0, exp.stderr);
    assert.deepEqual(exp.stdout.split('\n').slice(1, -1), lines);
    assert.equal(s.command(['lists', 'show']).stdout.split('\n').filter(Boolean).length, 5000);
  }
});
