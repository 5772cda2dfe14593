// The SQLite store: the shared suite, then what is its own — the file, its mode, WAL, the schema
// version, first use by several processes at once, and a file that is broken in every way an admin
// could break it (each one a StoreError saying what is wrong, never a stack trace).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';

import { defaultSettings } from '../../src/config/settings.js';
import { openStore, STORE_FILE } from '../../src/store/open.js';
import { SCHEMA_VERSION, walMode } from '../../src/store/sqlite.js';
import { StoreError } from '../../src/store/types.js';
import { item, storeSuite } from './suite.js';

const homes: string[] = [];
after(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));
function newHome(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nqq-store-'));
  homes.push(dir);
  return join(dir, 'home');
}
const OPENER = new URL('./open-sqlite.js', import.meta.url).href;
const CHILD = fileURLToPath(new URL('./claim-child.js', import.meta.url));

storeSuite('sqlite', async () => {
  const home = newHome();
  const store = await openStore(home, defaultSettings());
  return {
    store,
    another: () => openStore(home, defaultSettings()),
    child: { module: OPENER, exportName: 'openSqlite', args: [home] },
    cleanup: async () => rmSync(home, { recursive: true, force: true }),
  };
});

/** What a separate process says when it opens the store of `home` (and claims a missing item). */
function openInChild(home: string, at = Date.now(), uid?: number, openAt?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CHILD, JSON.stringify({ module: OPENER, exportName: 'openSqlite', args: [home], id: 'none', at, openAt })], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(uid === undefined ? {} : { uid, gid: uid }),
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('sqlite: the store is made on first use in the home: 0600, WAL, its schema version recorded', async () => {
  const home = newHome();
  const path = join(home, STORE_FILE);
  assert.equal(existsSync(path), false);
  const store = await openStore(home, defaultSettings());
  assert.equal(store.engine, 'sqlite');
  await store.addItem(item());
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(home).mode & 0o777, 0o700);
  for (const side of ['-wal', '-shm']) if (existsSync(path + side)) assert.equal(statSync(path + side).mode & 0o777, 0o600, side);
  const look = new DatabaseSync(path, { readOnly: true });
  try {
    assert.equal(look.prepare('PRAGMA journal_mode').get()!.journal_mode, 'wal');
    assert.deepEqual({ ...look.prepare('SELECT version FROM schema_version').get() }, { version: SCHEMA_VERSION });
    assert.equal(look.prepare('SELECT COUNT(*) AS n FROM items').get()!.n, 1, 'a write is visible to another connection at once');
  } finally {
    look.close();
  }
  await store.close();
  // A file made too open (by a copy from a backup, say) is made private again.
  chmodSync(path, 0o644);
  const again = await openStore(home, defaultSettings());
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal((await again.findItems({})).total, 1, 'reopened: nothing lost');
  await again.close();
});

test('sqlite: several processes using a new store at the same moment all succeed, and it is migrated once; no warning on stderr', { timeout: 90_000 }, async () => {
  // 12 opening at the same moment, twice (the openings race, not only the claims): the race for a new
  // file's switch to WAL, which SQLite loses for some at once (the test above), happens here for real.
  for (let round = 0; round < 2; round++) {
    const home = newHome();
    mkdirSync(home, { mode: 0o700 });
    const at = Date.now() + 2500;
    const runs = await Promise.all(Array.from({ length: 12 }, () => openInChild(home, at, undefined, at)));
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).got, false);
      // In queue mode fd 2 is the mail log: node's "SQLite is experimental" warning must not be there.
      assert.equal(r.stderr, '', 'nothing on stderr');
    }
    const look = new DatabaseSync(join(home, STORE_FILE), { readOnly: true });
    try {
      assert.equal(look.prepare('SELECT COUNT(*) AS n FROM schema_version').get()!.n, 1);
      assert.equal(look.prepare('PRAGMA journal_mode').get()!.journal_mode, 'wal');
    } finally {
      look.close();
    }
  }
});

test('sqlite: the switch to WAL, refused at once while another process takes the new file, is tried again until the busy timeout', () => {
  // SQLite tells one of two openers racing for a new file SQLITE_BUSY at once, without the busy wait;
  // the race cannot be made to order, so the connection here refuses as SQLite does.
  const busy = Object.assign(new Error('database is locked'), { errcode: 5 });
  let calls = 0;
  walMode({
    exec: (sql: string) => {
      calls++;
      assert.equal(sql, 'PRAGMA journal_mode = WAL');
      if (calls <= 3) throw busy;
    },
  });
  assert.equal(calls, 4);
  // Still locked past the timeout: the error comes out (the caller makes it a StoreError).
  const t0 = Date.now();
  assert.throws(() => walMode({ exec: () => { throw busy; } }, 200), /database is locked/);
  assert.ok(Date.now() - t0 >= 200);
  // Any other error at once.
  calls = 0;
  const other = Object.assign(new Error('disk I/O error'), { errcode: 10 });
  assert.throws(() => walMode({ exec: () => { calls++; throw other; } }), /disk I\/O error/);
  assert.equal(calls, 1);
});

test('sqlite: a store kept locked past the busy timeout (here by another connection, as by another process) is a StoreError that says so, with what SQLite said', { timeout: 30_000 }, async () => {
  const home = newHome();
  const store = await openStore(home, defaultSettings());
  const holder = new DatabaseSync(join(home, STORE_FILE));
  holder.exec('BEGIN EXCLUSIVE');
  try {
    const t0 = Date.now();
    await assert.rejects(store.addItem(item()), (err: unknown) => {
      assert.ok(err instanceof StoreError, String(err));
      assert.match(err.message, /is locked by another process \(SQLite: database is locked; it waits up to 5000 ms\) while /);
      return true;
    });
    assert.ok(Date.now() - t0 >= 4900, 'it waited the busy timeout');
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
    await store.close();
  }
});

async function refused(home: string, pattern: RegExp): Promise<void> {
  await assert.rejects(openStore(home, defaultSettings()), (err: unknown) => {
    assert.ok(err instanceof StoreError, String(err));
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(join(home, STORE_FILE)) || err.message.includes(home), err.message);
    assert.doesNotMatch(err.message, /\n\s+at /, 'no stack trace in the message');
    return true;
  });
}

test('sqlite: a corrupt store file is a StoreError that says so and what to do', async () => {
  const home = newHome();
  mkdirSync(home, { mode: 0o700 });
  writeFileSync(join(home, STORE_FILE), Buffer.alloc(8192, 'this is not a database\n'), { mode: 0o600 });
  await refused(home, /is not a usable SQLite database .*restore it from a backup, or move it/);
  // A real database whose pages were overwritten half-way.
  const home2 = newHome();
  const s = await openStore(home2, defaultSettings());
  for (let i = 0; i < 50; i++) await s.addItem(item({ subject: 'x'.repeat(500) }));
  await s.close();
  const path = join(home2, STORE_FILE);
  const { size } = statSync(path);
  const { openSync, writeSync, closeSync } = await import('node:fs');
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(size - 100, 0xa5), 0, size - 100, 100);
  closeSync(fd);
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
  await refused(home2, /not a usable SQLite database|malformed/);
});

test('sqlite: a store path that is a directory, or a symlink, is refused with a clear StoreError', async () => {
  const home = newHome();
  mkdirSync(join(home, STORE_FILE), { recursive: true });
  await refused(home, /is a directory, not a store file/);
  const home2 = newHome();
  mkdirSync(home2, { mode: 0o700 });
  symlinkSync('/tmp/elsewhere.sqlite', join(home2, STORE_FILE));
  await refused(home2, /is a symbolic link: refused/);
  const home3 = newHome();
  writeFileSync(join(home3, '..', 'home'), 'a file, not a directory');
  await refused(home3, /cannot use the store in/);
});

test('sqlite: a store of a newer schema is refused, not written over', async () => {
  const home = newHome();
  const s = await openStore(home, defaultSettings());
  await s.close();
  const db = new DatabaseSync(join(home, STORE_FILE));
  db.exec(`UPDATE schema_version SET version = ${SCHEMA_VERSION + 1}`);
  db.close();
  await refused(home, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this NQqueue knows \\(${SCHEMA_VERSION}\\)`));
});

test('sqlite: a store the user cannot read is a StoreError naming the owner', { skip: process.geteuid?.() !== 0 && 'needs root to run as another user' }, async () => {
  const home = newHome();
  const s = await openStore(home, defaultSettings());
  await s.close();
  chmodSync(join(home, '..'), 0o755);
  // The home is the user's, the store file in it root's (left by a command run as root, say).
  chownSync(home, 65534, 65534);
  chownSync(join(home, STORE_FILE), 0, 0);
  const r = await openInChild(home, Date.now(), 65534);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /StoreError: cannot use the store \S+store\.sqlite: permission denied on \S+store\.sqlite \(\S+ is owned by root \(uid 0\), mode 0600\); NQqueue runs as nobody/);
});

test('sqlite: a -wal or -shm file the user cannot use is a StoreError naming that file and its owner', { skip: process.geteuid?.() !== 0 && 'needs root to run as another user' }, async () => {
  for (const side of ['-wal', '-shm']) {
    const home = newHome();
    const s = await openStore(home, defaultSettings());
    await s.close();
    chmodSync(join(home, '..'), 0o755);
    // Left by `sqlite3 store.sqlite` run as root and killed, say: the store file itself is fine.
    chownSync(home, 65534, 65534);
    chownSync(join(home, STORE_FILE), 65534, 65534);
    writeFileSync(join(home, `${STORE_FILE}${side}`), '', { mode: 0o600 });
    const r = await openInChild(home, Date.now(), 65534);
    assert.notEqual(r.code, 0, side);
    assert.match(r.stderr, new RegExp(`StoreError: cannot use the store \\S+store\\.sqlite: permission denied on \\S+store\\.sqlite${side} \\(\\S+ is owned by root \\(uid 0\\), mode 0600\\); NQqueue runs as nobody`), r.stderr);
  }
});
