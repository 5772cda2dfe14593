// The store and `nqqueue quarantine` as the internet and administrators meet them: hostile bytes in
// subjects and addresses, thousands of recipients held at once, the commands run as root, the store
// file deleted, replaced or broken under a running daemon.

import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import { defaultSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import { DAEMON_MODE, pluginDir, SAMPLE, setupsForThisFile, type Setup } from '../helpers/nqq.js';

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

test.skip('10,000 recipients held at once: every copy is indexed, within the deadline', LIMIT, async () => {
  const s = make();
  install(s);
  const to = Array.from({ length: 10_000 }, (_, i) => `u${i}@example.com`);
  const t0 = Date.now();
  const r = await s.run({ message: message('bulk'), to, timeoutMs: 280_000 });
  const ms = Date.now() - t0;
  process.stderr.write(`# 10,000 copies held in ${ms} ms\n`);
  assert.equal(r.code, 0, r.stderr.slice(0, 2000));
  assert.equal(itemDirs(s).length, 10_000);
  const doc = listJson(s, ['--limit', '1']);
  assert.equal(doc.total, 10_000);
  assert.equal(listJson(s, ['--recipient', 'u9999@']).total, 1);
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
