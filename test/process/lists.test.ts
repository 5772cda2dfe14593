// The lists plugin through the built program, with entries written by `nqqueue lists`: a block refuses
// with the text of the settings, an allow skips the spam checks of its policy for that recipient (the
// real spamd behind a counting proxy is not asked, the log line and the trace header say skipped), and
// never a virus check or a plugin that does not declare itself skippable. Every precedence rule and
// scope: user over domain over global, the most specific entry within a list, networks by client IP
// (IPv4 and IPv6), the general stage (global list only). A store that cannot be used defers (71).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { baseHeaders, eicarPlain, GTUBE, message } from '../fixtures/messages.js';
import { requireDaemon } from '../helpers/daemons.js';
import { pluginDir, rcptsOf, setupsForThisFile, traceOf, type Setup } from '../helpers/nqq.js';
import { startProxy } from '../helpers/proxy.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 120_000 };

const gtube = () => message(baseHeaders('special offer', { 'Content-Type': 'text/plain' }), `Buy now.\n\n${GTUBE}\n`);
const plain = () => message(baseHeaders('hello', { 'Content-Type': 'text/plain' }), 'Hello.\n');

function lists(s: Setup, ...args: string[]): string {
  const r = s.command(['lists', ...args]);
  assert.equal(r.code, 0, `lists ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function withHome(s: Setup): Setup {
  mkdirSync(s.home, { recursive: true, mode: 0o700 });
  return s;
}

/** A plugin that counts its runs in the log (details) and never declares itself skippable. */
const COUNTER = {
  counter: "export default { name: 'counter', version: '1', stages: ['per-user'], configure() { return {}; }, scope: (_c, r) => r, async run() { return { verdict: 'accept', details: { ran: 'yes' } }; } };\n",
  sparable: "export default { name: 'sparable', version: '1', stages: ['per-user'], skippable: true, configure() { return {}; }, scope: (_c, r) => r, async run() { return { verdict: 'accept', details: { ran: 'yes' } }; } };\n",
};

/** Each recipient's fate and chain summary, from the log line: `bob@example.com=deliver[lists:accept:...]`. */
function fates(log: string): Record<string, string> {
  const per = /per-user="([^"]*)"/.exec(log)?.[1] ?? '';
  const out: Record<string, string> = {};
  for (const m of per.matchAll(/(\S+?)=(\w+)\[([^\]]*)\]/g)) out[m[1]!] = `${m[2]} ${m[3]!.replace(/:[\d.]+ms/g, '')}`;
  return out;
}

describe('lists', LIMIT, () => {
  test('a block refuses with the text of [lists] text; user, domain and global lists each apply to their own recipients', async () => {
    const s = withHome(make());
    s.write('nqqueue.conf', '[lists]\ntext = Your mail is not wanted here (#5.7.1)\n');
    s.write('nqqueue.cfb', ':lists\n');
    s.write('rcpthosts', 'example.com\nexample.net\n');
    lists(s, 'add', 'block', 'mallory@evil.example', '--user', 'bob@example.com');
    lists(s, 'add', 'block', 'evil.example', '--domain', 'example.net');
    // Alone, each recipient refused: the whole message is refused with the text.
    const one = await s.run({ from: 'mallory@evil.example', to: ['bob@example.com'], message: plain() });
    assert.equal(one.code, 82, one.stderr);
    assert.equal(one.errorText.toString(), 'DYour mail is not wanted here (#5.7.1)');
    assert.equal(one.deliveries.length, 0);
    // Bob's list is Bob's: carol@example.com gets it; example.net's list covers dave@example.net.
    const r = await s.run({ from: 'mallory@evil.example', to: ['bob@example.com', 'carol@example.com', 'dave@example.net'], message: plain() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.deliveries.map(rcptsOf), [['carol@example.com']]);
    assert.deepEqual(fates(r.logLines[0]!), { 'bob@example.com': 'reject lists:reject', 'carol@example.com': 'deliver lists:accept', 'dave@example.net': 'reject lists:reject' });
    // The global list covers everyone.
    lists(s, 'add', 'block', '.evil.example', '--global');
    const g = await s.run({ from: 'x@mx.evil.example', to: ['carol@example.com'], message: plain() });
    assert.equal(g.code, 82, g.stderr);
    assert.match(g.logLines[0]!, /carol@example\.com=reject\[lists:reject/);
  });

  test('an allow skips spamassassin for that recipient only: spamd is not asked for them, the log and trace say skipped; the others are scanned (real spamd)', async (t) => {
    const spamd = requireDaemon('NQQ_TEST_SPAMD', t);
    if (!spamd) return;
    const proxy = await startProxy(spamd);
    t.after(() => proxy.close());
    const s = withHome(make());
    s.write('nqqueue.conf', `[spamassassin]\nhost = ${proxy.address}\n`);
    s.write('nqqueue.cfb', ':lists;spamassassin\n');
    lists(s, 'add', 'allow', 'friend@partner.example', '--user', 'bob@example.com');
    // Bob alone: no spamd connection at all, GTUBE delivered, the trace says spamassassin=skipped.
    const r = await s.run({ from: 'friend@partner.example', to: ['bob@example.com'], message: gtube() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.connections(), 0, 'spamd was not asked');
    assert.equal(r.deliveries.length, 1);
    assert.doesNotMatch(r.deliveries[0]!.message.toString('latin1'), /^X-Spam-/m);
    assert.match(traceOf(r.deliveries[0]!.message).replace(/\n\t/g, ' '), /per-user: lists=accept, spamassassin=skipped\)/);
    assert.deepEqual(fates(r.logLines[0]!), { 'bob@example.com': 'deliver lists:accept,spamassassin:skipped' });
    assert.match(r.logLines[0]!, /spamassassin skipped: not run: the sender is allowed by user bob@example\.com: allow address friend@partner\.example \(skips spamassassin, rspamd, dspam, the default policy\)/);
    // Bob and Carol: one spamd request (Carol's), GTUBE refused for her, delivered to Bob.
    const both = await s.run({ from: 'friend@partner.example', to: ['bob@example.com', 'carol@example.com'], message: gtube() });
    assert.equal(both.code, 0, both.stderr);
    assert.equal(proxy.connections(), 1);
    assert.match(proxy.requests()[0]!.toString('latin1'), /^User: carol@example\.com\r$/m);
    // (the stand-in's deliveries so far: the first run's, then this one's)
    assert.deepEqual(both.deliveries.slice(1).map(rcptsOf), [['bob@example.com']]);
    assert.deepEqual(fates(both.logLines[0]!), { 'bob@example.com': 'deliver lists:accept,spamassassin:skipped', 'carol@example.com': 'reject lists:accept,spamassassin:reject' });
    // Without the entry Bob is scanned too: the skip came from the list, nothing else.
    const id = lists(s, 'show', '--user', 'bob@example.com').split('\t')[0]!;
    lists(s, 'del', id);
    const after = await s.run({ from: 'friend@partner.example', to: ['bob@example.com'], message: gtube() });
    assert.equal(after.code, 82, after.stderr);
    assert.equal(proxy.connections(), 2);
  });

  test("an allow's own policy: --skip none skips nothing; --skip names only what it names, and a plugin that is not skippable runs anyway", async () => {
    const s = withHome(make());
    const dir = pluginDir(s, COUNTER);
    s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
    s.write('nqqueue.cfb', ':lists=skip=sparable;sparable;counter\n');
    lists(s, 'add', 'allow', 'a@partner.example', '--user', 'bob@example.com', '--skip', 'none');
    lists(s, 'add', 'allow', 'b@partner.example', '--user', 'bob@example.com');
    lists(s, 'add', 'allow', 'c@partner.example', '--user', 'bob@example.com', '--skip', 'counter,sparable');
    const a = await s.run({ from: 'a@partner.example', to: ['bob@example.com'], message: plain() });
    assert.deepEqual(fates(a.logLines[0]!), { 'bob@example.com': 'deliver lists:accept,sparable:accept,counter:accept' });
    // The line's skip= is the default policy.
    const b = await s.run({ from: 'b@partner.example', to: ['bob@example.com'], message: plain() });
    assert.deepEqual(fates(b.logLines[0]!), { 'bob@example.com': 'deliver lists:accept,sparable:skipped,counter:accept' });
    // counter never said it may be skipped: the host runs it, and its result says the skip was refused.
    const c = await s.run({ from: 'c@partner.example', to: ['bob@example.com'], message: plain() });
    assert.deepEqual(fates(c.logLines[0]!), { 'bob@example.com': 'deliver lists:accept,sparable:skipped,counter:accept' });
    // The dry run says both: what was skipped, and what was asked to be but may not be.
    const dry = s.command(['test', '--from', 'c@partner.example', '--to', 'bob@example.com'], plain());
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /sparable -> skipped: not run: the sender is allowed by user bob@example\.com: allow address c@partner\.example \(skips counter, sparable\)/);
    assert.match(dry.stdout, /counter -> accept \[not skipped: counter may not be skipped \(the sender is allowed by /);
  });

  test('an allow never skips a virus check: a global allow naming clamav in the general stage, and EICAR is still refused (real clamd)', async (t) => {
    const clamd = requireDaemon('NQQ_TEST_CLAMD_SOCKET', t);
    if (!clamd) return;
    const s = withHome(make());
    s.write('nqqueue.conf', `[clamav]\nsocket = ${clamd}\n`);
    s.write('general.cfb', ':lists=skip=spamassassin;clamav\n');
    // The command line refuses clamav in a policy...
    const refused = s.command(['lists', 'add', 'allow', 'friend@partner.example', '--global', '--skip', 'clamav']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /clamav is never skipped/);
    // ...and an entry that names it anyway (written to the store by another program) changes nothing.
    const { openStore } = await import('../../src/store/open.js');
    const { defaultSettings } = await import('../../src/config/settings.js');
    const store = await openStore(s.home, defaultSettings());
    await store.putListEntry({ scope: 'global', owner: '', action: 'allow', kind: 'address', value: 'friend@partner.example', skip: ['clamav', 'spamassassin'], by: 'test' });
    await store.close();
    const r = await s.run({ from: 'friend@partner.example', to: ['bob@example.com'], message: eicarPlain() });
    assert.equal(r.code, 82, r.stderr);
    assert.match(r.errorText.toString(), /^D.*virus/i);
    assert.match(r.logLines[0]!, /general=lists:accept:[\d.]+ms,clamav:reject:[\d.]+ms/);
    assert.equal(r.deliveries.length, 0);
  });

  test('precedence across lists: user over domain over global, for allow and block alike', async () => {
    const s = withHome(make());
    const dir = pluginDir(s, COUNTER);
    s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
    s.write('nqqueue.cfb', ':lists=skip=sparable;sparable\n');
    lists(s, 'add', 'block', 'x@partner.example', '--global');
    lists(s, 'add', 'allow', 'x@partner.example', '--domain', 'example.com');
    lists(s, 'add', 'block', 'x@partner.example', '--user', 'bob@example.com');
    lists(s, 'add', 'allow', 'y@partner.example', '--global');
    lists(s, 'add', 'block', 'y@partner.example', '--domain', 'example.com');
    lists(s, 'add', 'allow', 'y@partner.example', '--user', 'carol@example.com');
    const x = await s.run({ from: 'x@partner.example', to: ['bob@example.com', 'carol@example.com'], message: plain() });
    // Bob: his block beats his domain's allow; Carol: her domain's allow beats the global block.
    assert.deepEqual(fates(x.logLines[0]!), { 'bob@example.com': 'reject lists:reject', 'carol@example.com': 'deliver lists:accept,sparable:skipped' });
    assert.match(x.logLines[0]!, /scope=user owner=bob@example\.com/);
    assert.match(x.logLines[0]!, /sparable skipped: not run: the sender is allowed by domain example\.com/);
    const y = await s.run({ from: 'y@partner.example', to: ['bob@example.com', 'carol@example.com'], message: plain() });
    // Bob: the domain's block beats the global allow; Carol: her allow beats her domain's block.
    assert.deepEqual(fates(y.logLines[0]!), { 'bob@example.com': 'reject lists:reject', 'carol@example.com': 'deliver lists:accept,sparable:skipped' });
    // Another domain's recipients see the global list only.
    s.write('rcpthosts', 'example.com\nexample.net\n');
    const z = await s.run({ from: 'x@partner.example', to: ['erin@example.net'], message: plain() });
    assert.equal(z.code, 82);
    const w = await s.run({ from: 'y@partner.example', to: ['erin@example.net'], message: plain() });
    assert.deepEqual(fates(w.logLines[0]!), { 'erin@example.net': 'deliver lists:accept,sparable:skipped' });
  });

  test('precedence within a list: address over domain, the longer domain over its parent, domain-only over with-subdomains, domain over network, the longer prefix over the shorter', async () => {
    const s = withHome(make());
    const dir = pluginDir(s, COUNTER);
    s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
    s.write('nqqueue.cfb', ':lists=skip=sparable;sparable\n');
    const u = ['--user', 'bob@example.com'];
    lists(s, 'add', 'block', '.partner.example', ...u);
    lists(s, 'add', 'allow', 'boss@partner.example', ...u);
    lists(s, 'add', 'allow', '.mail.partner.example', ...u);
    lists(s, 'add', 'block', 'spam.mail.partner.example', ...u);
    lists(s, 'add', 'allow', 'news.example', ...u);
    lists(s, 'add', 'block', '.news.example', ...u);
    lists(s, 'add', 'block', '192.0.2.0/24', ...u);
    lists(s, 'add', 'allow', '192.0.2.0/28', ...u);
    lists(s, 'add', 'allow', '2001:db8::/32', ...u);
    lists(s, 'add', 'block', '2001:db8:bad::/48', ...u);
    const cases: [from: string, ip: string, want: 'accept' | 'reject'][] = [
      ['anyone@partner.example', '198.51.100.1', 'reject'], // .partner.example
      ['boss@partner.example', '198.51.100.1', 'accept'], // the address over its domain
      ['x@a.mail.partner.example', '198.51.100.1', 'accept'], // .mail.partner.example over .partner.example
      ['x@spam.mail.partner.example', '198.51.100.1', 'reject'], // the longer domain again
      ['x@news.example', '198.51.100.1', 'accept'], // domain-only over with-subdomains of the same name
      ['x@sub.news.example', '198.51.100.1', 'reject'], // only the with-subdomains entry covers sub.
      ['x@other.example', '192.0.2.200', 'reject'], // the /24
      ['x@other.example', '192.0.2.9', 'accept'], // the /28 inside it
      ['x@news.example', '192.0.2.200', 'accept'], // a domain over a network
      ['x@other.example', '2001:db8::1', 'accept'],
      ['x@other.example', '2001:db8:bad::1', 'reject'], // /48 over /32
      ['x@other.example', '203.0.113.1', 'accept'], // nothing matches: no decision, the checks run
    ];
    for (const [from, ip, want] of cases) {
      const r = await s.run({ from, to: ['bob@example.com'], message: plain(), extraEnv: { TCPREMOTEIP: ip } });
      const fate = fates(r.logLines[0]!)['bob@example.com'];
      assert.equal(fate?.split(' ')[0] === 'deliver' ? 'accept' : 'reject', want, `${from} from ${ip}: ${r.logLines[0]}`);
      if (from === 'x@other.example' && ip === '203.0.113.1') assert.equal(fate, 'deliver lists:accept,sparable:accept');
    }
  });

  test('the general stage uses the global list only: a global block refuses the whole message, a global allow skips for every recipient', async () => {
    const s = withHome(make());
    const dir = pluginDir(s, COUNTER);
    s.write('nqqueue.conf', `plugin_dir = ${dir}\n`);
    s.write('general.cfb', ':lists=skip=sparable\n');
    s.write('nqqueue.cfb', ':sparable;counter\n');
    lists(s, 'add', 'block', '198.51.100.0/24', '--global');
    lists(s, 'add', 'allow', 'bob@example.com', '--user', 'carol@example.com');
    lists(s, 'add', 'allow', 'partner.example', '--global');
    const blocked = await s.run({ from: 'bob@example.com', to: ['carol@example.com'], message: plain(), extraEnv: { TCPREMOTEIP: '198.51.100.5' } });
    assert.equal(blocked.code, 82, blocked.stderr);
    assert.match(blocked.logLines[0]!, /general=lists:reject/);
    const allowed = await s.run({ from: 'a@partner.example', to: ['carol@example.com', 'dave@example.com'], message: plain() });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.deepEqual(fates(allowed.logLines[0]!), { 'carol@example.com': 'deliver sparable:skipped,counter:accept', 'dave@example.com': 'deliver sparable:skipped,counter:accept' });
  });

  test('a store that cannot be used defers the message (71), whatever the site onerror says; onerror=accept is refused for lists', async () => {
    const s = withHome(make());
    s.write('nqqueue.conf', 'onerror = accept\n');
    s.write('nqqueue.cfb', ':lists\n');
    mkdirSync(join(s.home, 'store.sqlite'));
    const r = await s.run({ from: 'a@partner.example', to: ['bob@example.com'], message: plain() });
    assert.equal(r.code, 82, r.stderr);
    assert.match(r.errorText.toString(), /^Z/);
    assert.match(r.logLines[0]!, /lists failed: the lists cannot be read: .*is a directory/);
    assert.equal(r.deliveries.length, 0);
    rmSync(join(s.home, 'store.sqlite'), { recursive: true });
    s.write('nqqueue.cfb', ':lists=onerror=accept\n');
    const c = s.command(['check-config']);
    assert.equal(c.code, 1);
    assert.match(c.stderr + c.stdout, /nqqueue\.cfb:1: .*onerror=accept would let blocked senders through/);
  });

  test('explain shows the precedence, the lists looked up and the entry that decides, with the others that match', () => {
    const s = withHome(make());
    s.write('nqqueue.cfb', ':lists\n');
    s.write('general.cfb', ':lists\n');
    // Before any entry there is no store: explain says so, and makes none.
    const before = s.command(['explain', '--from', 'friend@partner.example', '--to', 'bob@example.com']);
    assert.equal(before.code, 0, before.stderr);
    assert.match(before.stdout, /lists for <friend@partner\.example> from 192\.0\.2\.7: no store yet \(\S+store\.sqlite\): no entries, nothing decided/);
    assert.equal(existsSync(join(s.home, 'store.sqlite')), false);
    lists(s, 'add', 'block', '192.0.2.0/24', '--global');
    const id = /^added ([0-9a-f]{16})/.exec(lists(s, 'add', 'allow', 'friend@partner.example', '--user', 'bob@example.com', '--skip', 'spamassassin'))![1]!;
    const r = s.command(['explain', '--from', 'friend@partner.example', '--to', 'bob@example.com', '--to', 'carol@example.com', '--env', 'TCPREMOTEIP=192.0.2.9']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lists precedence: the recipient's own list, then their domain's, then the global list/);
    assert.match(r.stdout, /lists looked up: user bob@example\.com, domain example\.com, global\n/);
    assert.match(r.stdout, /lists looked up: global \(the general stage has no recipient: global only\)\n/);
    assert.match(r.stdout, new RegExp(`lists for <friend@partner\\.example> from 192\\.0\\.2\\.9: user bob@example\\.com: allow address friend@partner\\.example \\(skips spamassassin\\) \\[${id}\\] decides: allowed: skips spamassassin \\(never a virus check\\)\n\\s+also matching, not deciding: global: block network 192\\.0\\.2\\.0/24`));
    assert.match(r.stdout, /lists for <friend@partner\.example> from 192\.0\.2\.9: global: block network 192\.0\.2\.0\/24 \[[0-9a-f]{16}\] decides: refused: "mail from this sender is refused by a block list \(#5\.7\.1\)"/);
  });

  test('a block holds however the sender and the client are written: a trailing dot on the sender domain, an IPv4-mapped IPv6 client in any notation; a mapped network is its IPv4 one', async () => {
    const s = withHome(make());
    s.write('nqqueue.cfb', ':lists\n');
    const u = ['--user', 'bob@example.com'];
    lists(s, 'add', 'block', 'mallory@evil.example', ...u);
    lists(s, 'add', 'block', '192.0.2.0/24', ...u);
    lists(s, 'add', 'block', '::ffff:198.51.100.0/120', ...u);
    assert.match(lists(s, 'show', ...u), /block\tnetwork\t198\.51\.100\.0\/24|198\.51\.100\.0\/24/);
    const cases: [from: string, ip: string][] = [
      ['mallory@evil.example.', '203.0.113.1'],
      ['Mallory@EVIL.example..', '203.0.113.1'],
      ['x@other.example', '::ffff:192.0.2.5'],
      ['x@other.example', '::ffff:c000:205'],
      ['x@other.example', '0:0:0:0:0:ffff:192.0.2.5'],
      ['x@other.example', '198.51.100.7'],
      ['x@other.example', '::ffff:c633:6407'],
    ];
    for (const [from, ip] of cases) {
      const r = await s.run({ from, to: ['bob@example.com'], message: plain(), extraEnv: { TCPREMOTEIP: ip } });
      assert.equal(r.code, 82, `${from} from ${ip}: ${r.logLines[0]}`);
      assert.equal(r.deliveries.length, 0);
    }
    const fine = await s.run({ from: 'x@other.example', to: ['bob@example.com'], message: plain(), extraEnv: { TCPREMOTEIP: '::ffff:203.0.113.1' } });
    assert.equal(fine.code, 0, fine.stderr);
    const bad = s.command(['lists', 'add', 'block', '::ffff:0:0/64', ...u]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /prefix length must be 96 to 128/);
  });

  test('removing a network entry stored under an older normal form leaves the prefix count of the other networks alone: their blocks still hold', async () => {
    const s = withHome(make());
    s.write('nqqueue.cfb', ':lists\n');
    const u = ['--user', 'bob@example.com'];
    lists(s, 'add', 'block', '192.0.2.0/24', ...u);
    // An entry as an earlier release stored ::ffff:c000:200/120: an IPv6 network, counted as 6/120.
    const db = new DatabaseSync(join(s.home, 'store.sqlite'));
    db.prepare(
      "INSERT INTO list_entries (id, holder, scope, owner, action, kind, value, match_key, skip, note, added, added_by) VALUES ('00000000000000aa', 'u:bob@example.com', 'user', 'bob@example.com', 'block', 'network', '::ffff:c000:200/120', 'n6/120/00000000000000000000ffffc0000200', NULL, NULL, '2026-01-01T00:00:00.000Z', 'root')",
    ).run();
    db.prepare("INSERT INTO list_prefixes (family, prefix, entries) VALUES (6, 120, 1) ON CONFLICT (family, prefix) DO UPDATE SET entries = entries + 1").run();
    db.close();
    lists(s, 'del', '00000000000000aa');
    const r = await s.run({ from: 'x@other.example', to: ['bob@example.com'], message: plain(), extraEnv: { TCPREMOTEIP: '192.0.2.5' } });
    assert.equal(r.code, 82, r.logLines[0]);
  });
});
