// The quarantine's index in the store, seen from outside: a quarantined copy is indexed with its why
// (every result, the routing lines) before the message is accepted; a store that cannot be used defers
// the message with nothing delivered; a plain message never loads the store; items held before the
// store existed are indexed on first use; `nqqueue quarantine` lists, filters, releases exactly once
// (also when two commands race), deletes and expires through it, each action in the audit log.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import type { QuarantineItem } from '../../src/store/types.js';
import { moduleRecorder } from '../helpers/modules.js';
import { DAEMON_MODE, pluginDir, rcptsOf, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';
import { NQQUEUE_BIN } from '../helpers/smtpd.js';

const make = setupsForThisFile();
const LIMIT = { timeout: 120_000 };

const PLUGINS = {
  // Flags what it is told to (every message by default): quarantine=all counts it.
  flagger:
    "export default { name: 'flagger', version: '1', stages: ['per-user'], configure() { return {}; }, async run() { return { verdict: 'accept', flagged: true, score: 7.5, details: { result: 'flagged by test' } }; } };\n",
  // A general-stage result the per-user chain sees.
  noter:
    "export default { name: 'noter', version: '1', stages: ['general'], configure() { return {}; }, async run() { return { verdict: 'accept', details: { noted: 'yes' } }; } };\n",
};

function install(s: Setup, extra = ''): void {
  const dir = pluginDir(s, PLUGINS);
  s.write('nqqueue.conf', `plugin_dir = ${dir}\nhostname = mx.example.com\n${extra}`);
  s.write('general.cfb', ':noter\n');
  s.write('nqqueue.cfb', 'plain@example.com:quarantine=all\nrcpt@example.com:flagger;quarantine=all\nother@example.com:flagger;quarantine=all\n');
}

function message(subject: string): string {
  return SAMPLE.replace('Subject: test message', `Subject: ${subject}`);
}

/** The ids `nqqueue quarantine list` shows, in its order. */
function listed(s: Setup, args: string[] = []): string[] {
  const r = s.command(['quarantine', 'list', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0]!);
}

function itemDirs(s: Setup): string[] {
  const dir = join(s.home, 'quarantine');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n !== 'tmp').sort() : [];
}

/** The store's own view, read straight from the file. */
async function stored(s: Setup, id: string): Promise<QuarantineItem | undefined> {
  const store = await openStore(s.home, defaultSettings());
  try {
    return await store.getItem(id);
  } finally {
    await store.close();
  }
}

test('a quarantined copy is indexed in the store: every result of its chains, what caught it, the routing lines, the decoded subject', LIMIT, async () => {
  const s = make();
  install(s);
  const r = await s.run({ message: message('=?UTF-8?B?R3LDvMOfZSDwn5iA?= it\'s "100%"'), to: ['rcpt@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.deliveries.length, 0);
  const [id] = listed(s);
  assert.ok(id);
  const item = (await stored(s, id))!;
  assert.ok(item, 'in the store');
  assert.equal(item.status, 'held');
  assert.equal(item.owner, 'rcpt@example.com');
  assert.equal(item.domain, 'example.com');
  assert.equal(item.host, 'mx.example.com');
  assert.equal(item.recipient.text, 'rcpt@example.com');
  assert.equal(item.sender.text, 'sender@client.example');
  assert.equal(item.subject, 'Grüße \u{1F600} it\'s "100%"');
  assert.equal(item.size, statSync(join(s.home, 'quarantine', id, 'message')).size, 'the size of the bytes on disk');
  assert.deepEqual(
    item.results.map((x) => [x.stage, x.plugin, x.verdict, x.flagged]),
    [
      ['general', 'noter', 'accept', false],
      ['per-user', 'flagger', 'accept', true],
    ],
  );
  assert.equal(item.results[1]!.score, 7.5);
  assert.deepEqual(item.results[0]!.details, { noted: 'yes' });
  assert.deepEqual(item.caughtBy, ['flagger']);
  assert.deepEqual(item.routing, { general: { file: join(s.control, 'general.cfb'), line: 1 }, user: { file: join(s.control, 'nqqueue.cfb'), line: 2 } });
  const show = s.command(['quarantine', 'show', id]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, new RegExp(`^routing: per-user ${join(s.control, 'nqqueue.cfb')}:2$`, 'm'));
  assert.match(show.stdout, new RegExp(`^routing: general ${join(s.control, 'general.cfb')}:1$`, 'm'));
  assert.match(show.stdout, /^result: general noter -> accept \{"noted":"yes"\}$/m);
  assert.match(show.stdout, /^caught by: flagger -> accept score 7.5 \{"result":"flagged by test"\}$/m);
  assert.match(show.stdout, /^status: held$/m);
  assert.match(show.stdout, /^subject: Grüße \u{1F600} it's "100%"$/mu);
});

test('many messages quarantined at the same moment are all indexed (writers wait their turn, none is deferred)', LIMIT, async () => {
  const s = make();
  install(s);
  const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => s.run({ message: message(`burst ${i}`), to: ['rcpt@example.com', 'other@example.com'] })));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const ids = listed(s);
  assert.equal(ids.length, 16);
  assert.deepEqual(itemDirs(s), [...ids].sort());
  const subjects = new Set<string>();
  for (const id of ids) subjects.add((await stored(s, id))!.subject);
  assert.equal(subjects.size, 8);
});

test('a store that cannot be used defers the message (71): nothing delivered, nothing kept, the log says why; once repaired it is used again', LIMIT, async () => {
  const s = make();
  install(s);
  const path = join(s.home, 'store.sqlite');
  mkdirSync(s.home, { recursive: true, mode: 0o700 });
  for (const [what, breakIt] of [
    ['a directory', () => mkdirSync(path)],
    ['not a database', () => writeFileSync(path, Buffer.alloc(4096, 'garbage!'), { mode: 0o600 })],
  ] as const) {
    rmSync(path, { recursive: true, force: true });
    breakIt();
    const r = await s.run({ message: message('held'), to: ['rcpt@example.com', 'plain@example.com'], extraEnv: { NQQUEUE_REJECT: 'plain' } });
    assert.equal(r.code, 71, `${what}: ${r.stderr}`);
    assert.equal(s.standIn.calls().length, 0, `${what}: nothing queued, not even the plain recipient's copy`);
    assert.deepEqual(itemDirs(s), [], `${what}: the copy was taken back`);
    const log = r.logLines.join('\n');
    assert.match(log, /result=defer .* code=NQQ_ERR_KEEP reason="quarantine: the store cannot index the copy for <rcpt@example\.com>: /, what);
    assert.ok(log.includes(path), `${what}: the log names the store file: ${log}`);
    assert.match(log, what === 'a directory' ? /is a directory, not a store file/ : /is not a usable SQLite database/);
    // The commands say the same, without a stack trace.
    for (const args of [['list'], ['audit'], ['expire']]) {
      const c = s.command(['quarantine', ...args]);
      assert.equal(c.code, 1, `${what}: ${args}`);
      assert.match(c.stderr, /^nqqueue quarantine: the store \S+store\.sqlite (is a directory|is not a usable SQLite database)/, c.stderr);
      assert.doesNotMatch(c.stderr, /\n\s+at /);
    }
  }
  rmSync(path, { recursive: true, force: true });
  const ok = await s.run({ message: message('held'), to: ['rcpt@example.com', 'plain@example.com'] });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.deliveries.map(rcptsOf), [['plain@example.com']]);
  const ids = listed(s);
  assert.equal(ids.length, 1);
  assert.equal((await stored(s, ids[0]!))?.status, 'held');
});

test('a copy taken back (its message deferred after all) is forgotten by the store too; the retry is indexed once', LIMIT, async () => {
  const s = make({ standIn: { failOn: [{ call: 1, code: 71 }] } });
  install(s);
  const to = ['rcpt@example.com', 'plain@example.com'];
  const r = await s.run({ message: message('held'), to, extraEnv: { NQQUEUE_REJECT: 'plain' } });
  assert.equal(r.code, 71, r.stderr);
  assert.deepEqual(itemDirs(s), []);
  const store = await openStore(s.home, defaultSettings());
  try {
    assert.deepEqual([...(await store.itemIds())], [], 'indexed at the commit point, forgotten when taken back');
  } finally {
    await store.close();
  }
  const again = await s.run({ message: message('held'), to });
  assert.equal(again.code, 0, again.stderr);
  const ids = listed(s, ['--status', 'all']);
  assert.equal(ids.length, 1);
  assert.deepEqual(itemDirs(s), ids);
});

test('a plain message does not load the store (nor node:sqlite); a quarantined one does', { ...LIMIT, skip: DAEMON_MODE && 'the module list of one queue-mode process: standalone only' }, async () => {
  const s = make();
  install(s);
  // Every module the program resolves, and the built-ins it loaded, written at exit.
  const modules = moduleRecorder(s.dir, { builtins: true });
  const run = async (to: string, list: string) => {
    const r = await s.run({ message: message('x'), to: [to], extraEnv: modules.env(list) });
    assert.equal(r.code, 0, r.stderr);
    return modules.read(list);
  };
  const plain = await run('plain@example.com', join(s.dir, 'plain.txt'));
  assert.ok(plain.some((m) => m.endsWith('/dist/plugins/quarantine.js')), 'the quarantine plugin ran (the hook sees modules)');
  const storeModules = (mods: string[]) => mods.filter((m) => /\/dist\/(store\/|quarantine\/(actions|index-entry|subject)\.js)|builtin: .*sqlite/.test(m));
  assert.deepEqual(storeModules(plain), [], 'nothing of the store for a plain message');
  assert.equal(existsSync(join(s.home, 'store.sqlite')), false, 'no store I/O either');
  const held = await run('rcpt@example.com', join(s.dir, 'held.txt'));
  const loaded = storeModules(held);
  assert.ok(loaded.some((m) => m.endsWith('/dist/store/open.js')), loaded.join(', '));
  assert.ok(loaded.some((m) => m.endsWith('/dist/store/sqlite.js')));
  assert.ok(loaded.some((m) => /builtin: NativeModule sqlite/.test(m)));
  assert.equal(existsSync(join(s.home, 'store.sqlite')), true);
});

test('daemon mode: one open store for all messages, not one per message', { ...LIMIT, skip: !DAEMON_MODE && 'daemon mode only' }, async () => {
  const s = make();
  install(s);
  for (let i = 0; i < 4; i++) {
    const r = await s.run({ message: message(`held ${i}`), to: ['rcpt@example.com'] });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(listed(s).length, 4);
  const pid = s.daemonPid()!;
  const path = join(s.home, 'store.sqlite');
  const open = () =>
    readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    }).length;
  // The expiry pass at start opens and closes its own; give it the time to be done.
  let n = open();
  for (let i = 0; i < 50 && n !== 1; i++) {
    await delay(100);
    n = open();
  }
  assert.equal(n, 1, 'one file descriptor on the store after four messages');
});

test('items held before the store existed are indexed on first use, and can be released', LIMIT, async () => {
  const s = make();
  install(s);
  for (const subject of ['old one', '=?ISO-8859-1?Q?vieux_caf=E9?=']) {
    const r = await s.run({ message: message(subject), to: ['rcpt@example.com'] });
    assert.equal(r.code, 0, r.stderr);
  }
  const ids = itemDirs(s);
  assert.equal(ids.length, 2);
  // As an older release left them: no store, and a meta.json without what the store indexes.
  for (const side of ['', '-wal', '-shm']) rmSync(join(s.home, `store.sqlite${side}`), { force: true });
  const metaPath = join(s.home, 'quarantine', ids[1]!, 'meta.json');
  const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
  for (const k of ['owner', 'host', 'subject', 'results', 'routing']) delete meta[k];
  writeFileSync(metaPath, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });

  assert.deepEqual(listed(s).sort(), ids, 'listed: indexed on first use');
  const old = (await stored(s, ids[1]!))!;
  assert.equal(old.status, 'held');
  assert.equal(old.owner, 'rcpt@example.com');
  assert.deepEqual(old.caughtBy, ['flagger']);
  assert.deepEqual(old.results.map((x) => x.plugin), ['flagger'], 'what caught it: all an old item knows');
  assert.ok(['old one', 'vieux café'].includes(old.subject), `the subject read from the message: ${old.subject}`);
  const rel = s.command(['quarantine', 'release', ids[1]!]);
  assert.equal(rel.code, 0, rel.stderr);
  assert.deepEqual(s.standIn.deliveries().map(rcptsOf), [['rcpt@example.com']]);
  assert.deepEqual(listed(s), [ids[0]]);
});

test('two nqqueue quarantine release ID at once: exactly one delivery, one audit entry; the other exits 1, already taken', LIMIT, async () => {
  const s = make({ standIn: { slowOn: [{ call: 1, ms: 1500 }, { call: 2, ms: 1500 }] } });
  install(s);
  const r = await s.run({ message: message('wanted'), to: ['rcpt@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  const [id] = listed(s);
  const both = await Promise.all([s.commandAsync(['quarantine', 'release', id!]), s.commandAsync(['quarantine', 'release', id!])]);
  const codes = both.map((b) => b.code).sort();
  assert.deepEqual(codes, [0, 1], JSON.stringify(both));
  const loser = both.find((b) => b.code === 1)!;
  assert.match(loser.stderr, /already taken/);
  assert.doesNotMatch(loser.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(both.find((b) => b.code === 0)!.stdout, `released ${id} to <rcpt@example.com>\n`);
  assert.equal(s.standIn.calls().length, 1, 'qmail-queue ran once');
  assert.deepEqual(s.standIn.deliveries().map(rcptsOf), [['rcpt@example.com']]);
  const audit = s.command(['quarantine', 'audit']);
  assert.equal(audit.code, 0, audit.stderr);
  const lines = audit.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, audit.stdout);
  assert.match(lines[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[^\\t]+\\troot\\tcommand line\\trelease\\t${id}\\tto <rcpt@example\\.com> qp \\d+$`));
  assert.deepEqual(itemDirs(s), [], 'the bytes are gone');
  assert.deepEqual(listed(s, ['--status', 'released']), [id]);
  const again = s.command(['quarantine', 'release', id!]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no quarantined message .*already taken \(released by root at /);
});

test('a release killed while qmail-queue runs loses nothing: the item is held again for the next command, and released once', LIMIT, async () => {
  const s = make({ standIn: { hangOn: [1] } });
  install(s);
  const r = await s.run({ message: message('wanted'), to: ['rcpt@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  const [id] = listed(s);
  const child = spawn(NQQUEUE_BIN, ['quarantine', 'release', id!], { env: s.env, cwd: s.dir, stdio: 'ignore' });
  const closed = new Promise((res) => child.once('close', res));
  let hung;
  for (let i = 0; i < 600 && !(hung = s.standIn.calls().find((c) => c.outcome === 'hung')); i++) await delay(20);
  assert.ok(hung, 'qmail-queue was started');
  assert.equal((await stored(s, id!))!.status, 'releasing');
  process.kill(child.pid!, 'SIGKILL');
  await closed;
  process.kill(hung.pid, 'SIGKILL');
  assert.deepEqual(itemDirs(s), [], 'the files were claimed (under quarantine/tmp/)');
  assert.deepEqual(listed(s), [id], 'held again, at once');
  assert.deepEqual(itemDirs(s), [id], 'its files back in place');
  assert.equal((await stored(s, id!))!.status, 'held');
  const rel = s.command(['quarantine', 'release', id!]);
  assert.equal(rel.code, 0, rel.stderr);
  assert.deepEqual(s.standIn.deliveries().map(rcptsOf), [['rcpt@example.com']]);
  assert.deepEqual(
    s.command(['quarantine', 'audit']).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[3]),
    ['release'],
    'one release in the audit log',
  );
});

test('files of an item the store says is done with (a crash between the record and the removal) are removed, never acted on again', LIMIT, async () => {
  const s = make();
  install(s);
  for (let i = 0; i < 2; i++) {
    const r = await s.run({ message: message(`m${i}`), to: ['rcpt@example.com'] });
    assert.equal(r.code, 0, r.stderr);
  }
  const [a, b] = listed(s);
  const saved = (id: string) => ({ id, files: ['message', 'meta.json'].map((n) => [n, readFileSync(join(s.home, 'quarantine', id, n))] as const) });
  const keep = [saved(a!), saved(b!)];
  assert.equal(s.command(['quarantine', 'release', a!]).code, 0);
  assert.equal(s.command(['quarantine', 'delete', b!]).code, 0);
  // As the next run's recovery puts back the files of a process killed after the store recorded it.
  for (const k of keep) {
    mkdirSync(join(s.home, 'quarantine', k.id), { mode: 0o700 });
    for (const [n, data] of k.files) writeFileSync(join(s.home, 'quarantine', k.id, n), data, { mode: 0o600 });
  }
  assert.deepEqual(listed(s), [], 'not held again');
  const again = s.command(['quarantine', 'release', a!]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already taken \(released by root/);
  assert.equal(s.standIn.deliveries().length, 1, 'released once');
  assert.equal(s.command(['quarantine', 'expire']).code, 0);
  assert.deepEqual(itemDirs(s), [], 'the leftover files are gone');
});

test('delete and expire go through the store and the audit log; expire takes held items older than quarantine_expire only', LIMIT, async () => {
  const s = make();
  install(s, 'quarantine_expire = 1h\n');
  const first = await s.run({ message: message('old'), to: ['rcpt@example.com'] });
  assert.equal(first.code, 0, first.stderr);
  const [oldId] = listed(s);
  // Held two hours ago, as far as the store knows (the embedded one: this is its file): no test waits an hour.
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(join(s.home, 'store.sqlite'));
  db.prepare('UPDATE items SET date = ? WHERE id = ?').run(new Date(Date.now() - 2 * 3600_000).toISOString(), oldId!);
  db.close();
  for (const to of ['rcpt@example.com', 'other@example.com']) {
    const r = await s.run({ message: message('new'), to: [to] });
    assert.equal(r.code, 0, r.stderr);
  }
  const ids = listed(s);
  assert.equal(ids.length, 3);
  const toDelete = ids.find((i) => i !== oldId)!;
  const del = s.command(['quarantine', 'delete', toDelete]);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(del.stdout, `deleted ${toDelete}\n`);
  const exp = s.command(['quarantine', 'expire']);
  assert.equal(exp.code, 0, exp.stderr);
  // In daemon mode `serve` runs an expiry pass of its own 2 s after it starts: when this test is slower
  // than that, the daemon's pass is the one that expires it (exactly once either way: the audit below).
  const byDaemon = DAEMON_MODE && /^expired 0 items /.test(exp.stdout);
  if (!byDaemon) assert.match(exp.stdout, /^expired 1 item /);
  const kept = ids.filter((i) => i !== oldId && i !== toDelete);
  assert.deepEqual(listed(s), kept, 'only the fresh one is held');
  assert.deepEqual(itemDirs(s), kept, 'the bytes of the expired and the deleted are gone');
  assert.equal((await stored(s, oldId!))!.status, 'expired');
  assert.equal((await stored(s, toDelete))!.status, 'deleted');
  assert.deepEqual(listed(s, ['--status', 'expired,deleted']).sort(), [oldId, toDelete].sort());
  const audit = s.command(['quarantine', 'audit']).stdout.split('\n').filter(Boolean).map((l) => l.split('\t'));
  assert.deepEqual(
    audit.map((f) => [f[1], f[2], f[3], f[4]]).sort(),
    [
      ['root', 'command line', 'delete', toDelete],
      byDaemon ? ['nqqueue serve', 'expiry', 'expire', oldId] : ['root', 'command line', 'expire', oldId],
    ].sort(),
  );
  assert.equal(s.command(['quarantine', 'audit', '--item', oldId!]).stdout.split('\n').filter(Boolean).length, 1);
});

test('quarantine list filters: recipient, sender, domain, text, caught-by, since, status, limit, json; bad values are usage errors', LIMIT, async () => {
  const s = make();
  install(s);
  const a = await s.run({ message: message('Invoice 42'), from: 'billing@shop.example', to: ['rcpt@example.com'] });
  const b = await s.run({ message: message('Hello'), from: 'friend@pals.example', to: ['other@example.com'] });
  assert.deepEqual([a.code, b.code], [0, 0]);
  const [ia, ib] = listed(s);
  assert.ok(ia && ib);
  assert.deepEqual(listed(s, ['--recipient', 'RCPT@']), [ia]);
  assert.deepEqual(listed(s, ['--sender', 'pals']), [ib]);
  assert.deepEqual(listed(s, ['--domain', 'example.com']), [ia, ib]);
  assert.deepEqual(listed(s, ['--text', 'invoice']), [ia]);
  assert.deepEqual(listed(s, ['--text', '%']), []);
  assert.deepEqual(listed(s, ['--caught-by', 'flagger']), [ia, ib]);
  assert.deepEqual(listed(s, ['--caught-by', 'noter']), []);
  assert.deepEqual(listed(s, ['--since', '1h']), [ia, ib]);
  assert.deepEqual(listed(s, ['--since', '2999-01-01']), []);
  assert.deepEqual(listed(s, ['--before', '2000-01-01T00:00:00Z']), []);
  assert.deepEqual(listed(s, ['--status', 'all', '--limit', '1']), [ia]);
  const json = s.command(['quarantine', 'list', '--json', '--limit', '1', '--text', 'example']);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.total, 2);
  assert.equal(doc.items.length, 1);
  assert.equal(doc.items[0].id, ia);
  assert.equal(doc.items[0].subject, 'Invoice 42');
  for (const bad of [['--since', 'yesterday'], ['--status', 'gone'], ['--limit', '-1'], ['--frob']]) {
    const r = s.command(['quarantine', 'list', ...bad]);
    assert.equal(r.code, 2, bad.join(' '));
    assert.match(r.stderr, /^nqqueue quarantine list: .*\nusage: nqqueue quarantine /, bad.join(' '));
  }
});

test('nqqueue serve expires held items once at start', { ...LIMIT, skip: DAEMON_MODE && 'starts its own nqqueue serve' }, async () => {
  const s = make();
  install(s, 'quarantine_expire = 1s\n');
  const r = await s.run({ message: message('old'), to: ['rcpt@example.com'] });
  assert.equal(r.code, 0, r.stderr);
  const [id] = listed(s);
  await delay(1500);
  const serve = spawn(NQQUEUE_BIN, ['serve'], { env: s.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  serve.stderr.on('data', (d: Buffer) => (log += d));
  try {
    for (let i = 0; i < 300 && !/quarantine expiry: expired 1 item/.test(log); i++) await delay(50);
    assert.match(log, /nqqueue serve: quarantine expiry: expired 1 item older than/);
  } finally {
    process.kill(serve.pid!, 'SIGTERM');
    await new Promise((res) => serve.once('close', res));
  }
  assert.equal((await stored(s, id!))!.status, 'expired');
  assert.deepEqual(itemDirs(s), []);
  assert.match(s.command(['quarantine', 'audit']).stdout, new RegExp(`\\tnqqueue serve\\texpiry\\texpire\\t${id}\\t`));
});
