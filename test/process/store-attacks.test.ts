// The store and `nqqueue quarantine` as the internet and administrators meet them: hostile bytes in
// subjects and addresses, thousands of recipients held at once, the commands run as root, the store
// file deleted, replaced or broken under a running daemon.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import { DAEMON_MODE, pluginDir, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 300_000 };

const FLAGGER =
  "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', flagged: true, score: 9, details: { result: 'flagged by test' } }; } };\n";

function install(s: Setup, extra = ''): void {
  const dir = pluginDir(s, { flagger: FLAGGER });
  s.write('nqqueue.conf', `plugin_dir = ${dir}\nhostname = mx.example.com\n${extra}`);
  s.write('nqqueue.cfb', 'example.com:flagger;quarantine=all\nplain@example.com:\n');
}

function message(subject: string): string {
  return SAMPLE.replace('Subject: test message', `Subject: ${subject}`);
}

function listJson(s: Setup, args: string[] = []): { total: number; items: { id: string; subject: string; sender: { text: string }; recipient: { text: string } }[] } {
  const r = s.command(['quarantine', 'list', '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function itemDirs(s: Setup): string[] {
  const dir = join(s.home, 'quarantine');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n !== 'tmp').sort() : [];
}

// 1,500 recipients of 900-byte addresses: a log line of over 1 MiB (what nqqueue-qq takes from the
// daemon at most) at a fraction of the cost of 10,000 short ones.
const BULK = 1_500;
const longAddress = (i: number) => `${'u'.repeat(880)}${i}@example.com`;

test('1,500 long recipients held at once: every copy kept and indexed once (daemon mode: the reply carries a log line over 1 MiB)', LIMIT, async () => {
  const s = make();
  install(s);
  const to = Array.from({ length: BULK }, (_, i) => longAddress(i));
  const t0 = Date.now();
  const r = await s.run({ message: message('bulk'), to, timeoutMs: 280_000 });
  const ms = Date.now() - t0;
  process.stderr.write(`# ${BULK} copies held in ${ms} ms\n`);
  assert.equal(r.code, 0, r.stderr.slice(0, 2000));
  assert.equal(s.standIn.calls().length, 0, 'nothing queued');
  assert.doesNotMatch(r.stderr, /running the standalone program/, 'daemon mode: the client took the reply (a refused one would run the message again)');
  if (!DAEMON_MODE) assert.ok(r.stderr.length > 1024 * 1024, `the log line is over 1 MiB (${r.stderr.length} bytes)`);
  assert.equal(itemDirs(s).length, BULK);
  const doc = listJson(s, ['--limit', '1']);
  assert.equal(doc.total, BULK);
  assert.equal(listJson(s, ['--recipient', `${longAddress(BULK - 1)}`]).total, 1);
});

/** Every file and directory under `dir`, itself included. */
function tree(dir: string): string[] {
  const out = [dir];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out.push(...(statSync(p).isDirectory() ? tree(p) : [p]));
  }
  return out;
}

test('nqqueue quarantine run as root works as the home\'s owner: no file of the store (nor -wal, -shm) is left root\'s', { ...LIMIT, skip: process.geteuid?.() !== 0 && 'needs root' }, async () => {
  const s = make();
  install(s);
  for (let i = 0; i < 3; i++) assert.equal((await s.run({ message: message(`m${i}`), to: ['a@example.com'] })).code, 0);
  // The home as the admin set it up: qmail-smtpd's user's. No store yet: the first command makes it.
  for (const side of ['', '-wal', '-shm']) rmSync(join(s.home, `store.sqlite${side}`), { force: true });
  for (const p of tree(s.home)) chownSync(p, 65534, 65534);
  chmodSync(s.dir, 0o755);
  const ids = itemDirs(s);
  for (const args of [['list'], ['show', ids[0]!], ['audit'], ['expire'], ['delete', ids[1]!], ['list', '--status', 'all']]) {
    const r = s.command(['quarantine', ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    const rootOwned = tree(s.home).filter((p) => statSync(p).uid !== 65534);
    assert.deepEqual(rootOwned, [], `after quarantine ${args.join(' ')}`);
  }
  assert.ok(existsSync(join(s.home, 'store.sqlite')));
  assert.equal(statSync(join(s.home, 'store.sqlite')).mode & 0o777, 0o600);
});

function fdsOn(pid: number, path: string): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((l) => l.startsWith(path));
}

test('daemon mode: a store file deleted, or replaced, under the running daemon is noticed: the next held message is indexed in the file that is there now', { ...LIMIT, skip: !DAEMON_MODE && 'daemon mode only' }, async () => {
  const s = make();
  // A short deadline: the old file is closed once the messages that may use it are past theirs.
  install(s, 'deadline = 3s\n');
  assert.equal((await s.run({ message: message('first'), to: ['a@example.com'] })).code, 0);
  const path = join(s.home, 'store.sqlite');
  // The admin removes the store by hand (to start an empty one, or after moving it to a backup).
  for (const side of ['', '-wal', '-shm']) rmSync(`${path}${side}`, { force: true });
  assert.equal((await s.run({ message: message('second'), to: ['b@example.com'] })).code, 0);
  assert.ok(existsSync(path), 'a new store file was made for the second message');
  const store = await openStore(s.home, defaultSettings());
  try {
    const { items } = await store.findItems({});
    assert.deepEqual(items.map((i) => i.subject), ['second'], 'indexed in the store file that is there, not in the deleted one');
  } finally {
    await store.close();
  }
  // Nothing of the deleted file is kept open.
  const pid = s.daemonPid()!;
  let ghosts: string[] = [];
  for (let i = 0; i < 100; i++) {
    ghosts = fdsOn(pid, path).filter((l) => l.endsWith('(deleted)'));
    if (ghosts.length === 0) break;
    await delay(100);
  }
  assert.deepEqual(ghosts, []);
  // Replaced by something broken: the daemon defers instead of writing into the old file unseen ...
  for (const side of ['', '-wal', '-shm']) rmSync(`${path}${side}`, { force: true });
  writeFileSync(path, Buffer.alloc(4096, 'garbage!'), { mode: 0o600 });
  const broken = await s.run({ message: message('third'), to: ['c@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(broken.code, 71, broken.stderr);
  assert.match(broken.logLines.join('\n'), /is not a usable SQLite database/);
  // ... and once repaired, uses it again without a restart.
  rmSync(path);
  const ok = await s.run({ message: message('fourth'), to: ['c@example.com'] });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(s.daemonPid(), pid, 'the same daemon');
});

// What a terminal acts on: C0, DEL, C1 (CSI), the line separators and bidi overrides.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

test('hostile bytes from the internet: every copy indexed with the exact envelope; list, show and --json stay terminal-safe; filters match them literally', LIMIT, async () => {
  const s = make();
  install(s);
  // 8-bit junk, a UTF-8 C1 CSI, an RTL override, and 1000 bytes in all (the longest address allowed).
  const junk = Buffer.concat([Buffer.from([0xff, 0xfe, 0xc2, 0x9b]), Buffer.from('31m\u202e%_'), Buffer.from([0xe2, 0x80, 0xa8])]);
  const sender = Buffer.concat([junk, Buffer.from('x'.repeat(1000 - junk.length - '@evil.example'.length)), Buffer.from('@evil.example')]);
  assert.equal(sender.length, 1000);
  const rcpt = Buffer.concat([Buffer.from('a'), Buffer.from([0xc2, 0x9b]), Buffer.from('2J\u202eb@example.com')]);
  // Encoded words hiding CR, LF, NUL, ESC, C1 and a bidi override in the subject.
  const subject = '=?UTF-8?Q?line1=0D=0ABcc:_x@y=00=1B[2J=C2=9B=E2=80=AEend?= =?ISO-8859-1?B?' + Buffer.from('caf\xe9\x1b]0;title\x07', 'latin1').toString('base64') + '?=';
  const r = await s.run({ message: message(subject), from: sender, to: [rcpt, 'plain@example.com', 'c@example.com'], extraEnv: { RELAYCLIENT: '' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(itemDirs(s).length, 2, 'the two held copies');
  assert.doesNotMatch(r.stderr, /ExperimentalWarning|SQLite is an experimental/, 'no warning from node:sqlite in the mail log');
  const doc = listJson(s);
  assert.equal(doc.total, 2, 'both indexed');
  const json = s.command(['quarantine', 'list', '--json']);
  assert.doesNotMatch(json.stdout.replace(/\n$/, ''), UNSAFE, 'the --json output has no raw control character');
  const text = s.command(['quarantine', 'list']);
  assert.equal(text.code, 0, text.stderr);
  for (const line of text.stdout.split('\n').filter(Boolean)) {
    assert.doesNotMatch(line, UNSAFE, 'a list line');
    assert.equal(line.split('\t').length, 5, 'no tab from outside splits a list line');
  }
  for (const item of doc.items) {
    assert.doesNotMatch(item.subject, UNSAFE, 'the stored subject');
    assert.equal(item.subject, 'line1 Bcc: x@y [2J endcafé ]0;title', 'encoded words decoded (the two joined), what a terminal or a page acts on removed');
    const show = s.command(['quarantine', 'show', item.id]);
    assert.equal(show.code, 0, show.stderr);
    for (const line of show.stdout.split('\n')) assert.doesNotMatch(line, UNSAFE, `a show line: ${JSON.stringify(line)}`);
  }
  // Filters are literal: % and _ are characters, not wildcards; a hostile piece finds its item.
  assert.equal(listJson(s, ['--sender', '%_']).total, 2);
  assert.equal(listJson(s, ['--sender', 'x%x']).total, 0);
  assert.equal(listJson(s, ['--recipient', '\u009b2J']).total, 1);
  assert.equal(listJson(s, ['--text', 'x'.repeat(100_000)]).total, 0, 'a huge search text is just not found');
  // The release gets the exact bytes of the envelope back, whatever was shown.
  const id = doc.items.find((i) => i.recipient.text.startsWith('a'))!.id;
  const rel = s.command(['quarantine', 'release', id]);
  assert.equal(rel.code, 0, rel.stderr);
  assert.doesNotMatch(rel.stdout.replace(/\n$/, ''), UNSAFE);
  const d = s.standIn.deliveries().filter((x) => x.recipients.some((b) => b.equals(rcpt)));
  assert.equal(d.length, 1);
  assert.deepEqual(d[0]!.sender, sender, 'the exact sender bytes');
  assert.deepEqual(d[0]!.recipients, [rcpt], 'that recipient only, its exact bytes');
});

function tryMount(dir: string, size: string): boolean {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
  return r.status === 0;
}

test('a full disk at any point: a message being quarantined is accepted only when its copy is kept and indexed, else deferred with nothing delivered', { ...LIMIT, skip: (process.geteuid?.() !== 0 || process.platform !== 'linux') && 'needs root to mount a small tmpfs' }, async (t) => {
  const s = make();
  install(s);
  mkdirSync(s.home, { mode: 0o700 });
  if (!tryMount(s.home, '2m')) return t.skip('cannot mount a tmpfs here');
  try {
    // The store exists, with a few items: the disk fills up later.
    for (let i = 0; i < 3; i++) assert.equal((await s.run({ message: message(`before ${i}`), to: ['a@example.com'] })).code, 0);
    const body = 'y'.repeat(3000);
    for (let free = 0; free <= 96 * 1024; free += 4096) {
      const filler = join(s.home, 'filler');
      rmSync(filler, { force: true });
      // Fill the disk but `free` bytes (tmpfs counts in pages).
      const chunk = Buffer.alloc(4096, 1);
      const fd = openSync(filler, 'w');
      try {
        for (;;) writeSync(fd, chunk);
      } catch {
        // full
      } finally {
        closeSync(fd);
      }
      if (free > 0) truncateSync(filler, Math.max(0, statSync(filler).size - free));
      const before = new Set(itemDirs(s));
      const deliveriesBefore = s.standIn.deliveries().length;
      const r = await s.run({ message: message(`at ${free}`) + body, to: ['b@example.com', 'plain@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
      rmSync(filler, { force: true });
      const added = itemDirs(s).filter((d) => !before.has(d));
      assert.ok(r.code === 0 || r.code === 71, `free ${free}: exit ${r.code}: ${r.stderr}`);
      if (r.code === 0) {
        assert.equal(added.length, 1, `free ${free}: accepted, so kept`);
        const store = await openStore(s.home, defaultSettings());
        try {
          assert.equal((await store.getItem(added[0]!))?.status, 'held', `free ${free}: accepted, so indexed`);
        } finally {
          await store.close();
        }
        assert.equal(s.standIn.deliveries().length, deliveriesBefore + 1, `free ${free}: the plain copy delivered`);
      } else {
        assert.deepEqual(added, [], `free ${free}: deferred, so nothing kept`);
        assert.equal(s.standIn.deliveries().length, deliveriesBefore, `free ${free}: deferred, so nothing delivered`);
      }
    }
    // With room again, all is well: every item listed, the store usable.
    const all = listJson(s, ['--status', 'all']);
    assert.equal(all.total, itemDirs(s).length);
  } finally {
    spawnSync('umount', ['-l', s.home], { stdio: 'ignore' });
  }
});

test('release, release and expire of one item at the same moment, from three processes: one of them acts, once; one audit entry; no stack trace', LIMIT, async () => {
  const s = make({ standIn: { slowOn: [{ call: 1, ms: 1500 }, { call: 2, ms: 1500 }] } });
  install(s, 'quarantine_expire = 1s\n');
  assert.equal((await s.run({ message: message('race'), to: ['a@example.com'] })).code, 0);
  const [id] = itemDirs(s);
  await delay(1200);
  const all = await Promise.all([s.commandAsync(['quarantine', 'release', id!]), s.commandAsync(['quarantine', 'expire']), s.commandAsync(['quarantine', 'release', id!])]);
  for (const r of all) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const released = all.filter((r) => r.code === 0 && r.stdout.startsWith('released'));
  const expired = /^expired 1 item/.test(all[1]!.stdout);
  // In daemon mode nqqueue serve expires items too (its first pass 2 s after it started): a fourth
  // process in the race, which may be the one that acts; the others then say so.
  const byServe = DAEMON_MODE && all.filter((r) => /already taken \(expired by nqqueue serve/.test(r.stderr)).length === 2;
  assert.equal(all[1]!.code, 0, all[1]!.stderr);
  assert.equal(released.length + (expired ? 1 : 0) + (byServe ? 1 : 0), 1, JSON.stringify(all));
  assert.equal(s.standIn.deliveries().length, released.length, 'delivered only when released');
  const audit = s.command(['quarantine', 'audit']).stdout.split('\n').filter(Boolean);
  assert.equal(audit.length, 1, audit.join('\n'));
  assert.deepEqual(itemDirs(s), [], 'the bytes are gone');
  const again = s.command(['quarantine', 'expire']);
  assert.match(again.stdout, /^expired 0 items/);
});

test('daemon mode: 30 messages quarantined at the same moment are all indexed (no "database is locked"), while a command lists', { ...LIMIT, skip: !DAEMON_MODE && 'daemon mode only' }, async () => {
  const s = make();
  install(s);
  assert.equal((await s.run({ message: message('warm'), to: ['a@example.com'] })).code, 0);
  const runs = Array.from({ length: 30 }, (_, i) => s.run({ message: message(`m${i}`), to: [`r${i}@example.com`, `q${i}@example.com`] }));
  const listing = s.commandAsync(['quarantine', 'list']);
  const done = await Promise.all(runs);
  for (const r of done) assert.equal(r.code, 0, r.stderr);
  assert.equal((await listing).code, 0);
  assert.equal(itemDirs(s).length, 61);
  // Read straight from the file: the commands would index what the daemon missed.
  const store = await openStore(s.home, defaultSettings());
  try {
    assert.equal((await store.itemIds()).size, 61, 'indexed by the daemon itself');
  } finally {
    await store.close();
  }
  assert.equal(listJson(s).total, 61);
  assert.doesNotMatch(readFileSync(join(s.dir, 'serve.log'), 'utf8'), /ExperimentalWarning|SQLite is an experimental/, "no warning from node:sqlite in the daemon's log");
});

test('a password typed into the store URL never comes out: not in check-config, not in the log of a message it defers', LIMIT, async () => {
  const secret = 'S3cret-in-the-url';
  for (const url of [
    `postgres://nqqueue:${secret}@db.example.com:54x32/nqqueue`, // a typo in the port: not a URL at all
    `postgres://nqqueue:${secret}/x@db.example.com/nqqueue`,
    `postgres://nqqueue@db.example.com/nqqueue?password=${secret}`, // libpq's parameter, in the query
    `postgres://nqqueue@db.example.com/nqqueue?sslmode=require&sslpassword=${secret}`,
  ]) {
    const s = make();
    install(s, `store = ${url}\n`);
    const c = s.command(['check-config']);
    assert.notEqual(c.code, 0, `refused: ${url}`);
    assert.match(c.stdout + c.stderr, /store/);
    assert.ok(!(c.stdout + c.stderr).includes(secret), `check-config shows no password: ${c.stdout}${c.stderr}`);
    const r = await s.run({ message: message('url with a password'), to: ['rcpt@example.com'] });
    assert.ok(r.code === 71 || r.code === 82, `deferred: ${r.code} ${r.stderr}`);
    assert.equal(r.deliveries.length, 0);
    assert.ok(!r.stderr.includes(secret), `the log shows no password: ${r.stderr}`);
  }
});

test('a plain message never touches a PostgreSQL store: accepted with the database unreachable, and pg is not even loaded', LIMIT, async () => {
  const s = make();
  install(s, 'store = postgres://nqqueue@127.0.0.1:1/nqqueue\nstore_timeout = 1s\n');
  const r = await s.run({ message: message('plain'), to: ['plain@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 1);
  // Held: the store is needed, cannot be reached: deferred, nothing delivered.
  const held = await s.run({ message: message('held'), to: ['rcpt@example.com'] });
  assert.ok(held.code === 71 || held.code === 82, `deferred: ${held.code} ${held.stderr}`);
  assert.match(held.stderr, /unreachable/);
  assert.equal(held.deliveries.length, 1, 'nothing more delivered');
  if (DAEMON_MODE || spawnSync('strace', ['-V']).status !== 0) return;
  const trace = join(s.dir, 'trace');
  const traced = s.script('traced', `#!/bin/sh\nexec strace -f -qq -e trace=openat,open -o ${trace} ${NQQUEUE_BIN} "$@"\n`);
  const again = await s.run({ message: message('plain'), to: ['plain@example.com'], bin: traced });
  assert.equal(again.code, 0, again.stderr);
  const opened = readFileSync(trace, 'utf8');
  assert.match(opened, /dist\//, 'the trace saw the program');
  assert.doesNotMatch(opened, /node_modules\/pg|store\/postgres|store\/sqlite/, 'no store module loaded');
});

test('check-config finds a store_password_file that every held message would be deferred for: readable by others, missing, empty', LIMIT, async () => {
  const s = make();
  const file = join(s.dir, 'store.password');
  const check = (): { code: number | null; out: string } => {
    const r = s.command(['check-config']);
    return { code: r.code, out: r.stdout + r.stderr };
  };
  install(s, `store = postgres://nqqueue@127.0.0.1:1/nqqueue\nstore_password_file = ${file}\n`);
  writeFileSync(file, 'pw-in-a-file\n', { mode: 0o644 });
  chmodSync(file, 0o644);
  let c = check();
  assert.equal(c.code, 1, c.out);
  assert.match(c.out, /store_password_file .* can be read by others \(mode 0644\): chmod 600 it/);
  assert.ok(!c.out.includes('pw-in-a-file'), 'the password is not shown');
  chmodSync(file, 0o600);
  c = check();
  assert.equal(c.code, 0, c.out);
  rmSync(file);
  c = check();
  assert.equal(c.code, 1, c.out);
  assert.match(c.out, /cannot read store_password_file/);
  writeFileSync(file, '', { mode: 0o600 });
  c = check();
  assert.equal(c.code, 1, c.out);
  assert.match(c.out, /is empty/);
});
