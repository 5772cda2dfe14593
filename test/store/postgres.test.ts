// The PostgreSQL store: the shared suite against a real PostgreSQL (a throw-away cluster started for
// this file), then what is its own — several hosts migrating at once, the password file, a database
// that is down, stopped and restarted under a running store, and the StoreErrors an admin meets.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseSettings } from '../../src/config/settings.js';
import { openStore } from '../../src/store/open.js';
import { PG_SCHEMA_VERSION } from '../../src/store/postgres.js';
import { StoreError, type Store } from '../../src/store/types.js';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.js';
import { item, storeSuite } from './suite.js';

const skip = postgresBin() ? false : 'PostgreSQL is not installed (apt-get install -y postgresql)';
let server: Promise<Postgres> | undefined;
const pg = (): Promise<Postgres> => (server ??= startPostgres());
after(async () => {
  if (server) await (await server).stop();
});

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function newDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nqq-pgstore-'));
  dirs.push(d);
  return d;
}

const OPENER = new URL('./open-postgres.js', import.meta.url).href;
const CHILD = fileURLToPath(new URL('./claim-child.js', import.meta.url));

function settingsFor(url: string, extra = ''): ReturnType<typeof parseSettings> {
  return parseSettings(`store = ${url}\n${extra}`, 'nqqueue.conf');
}

function open(url: string, extra = ''): Promise<Store> {
  return openStore(newDir(), settingsFor(url, extra));
}

if (!skip) {
  storeSuite('postgres', async () => {
    const p = await pg();
    const url = p.url(p.createDatabase());
    const home = newDir();
    const store = await openStore(home, settingsFor(url));
    return {
      store,
      another: () => openStore(home, settingsFor(url)),
      child: { module: OPENER, exportName: 'openPostgres', args: [home, url] },
      cleanup: async () => undefined,
    };
  });
}

/** Open the store in a separate process (a host starting), claiming an item that does not exist. */
function openInChild(url: string, at: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CHILD, JSON.stringify({ module: OPENER, exportName: 'openPostgres', args: [newDir(), url], id: 'none', at })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function refused(p: Promise<Store>, pattern: RegExp, secret?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, String(err));
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n\s+at /, 'no stack trace in the message');
    if (secret) assert.ok(!err.message.includes(secret), 'the password is never in a message');
    return true;
  });
}

test('postgres: six hosts starting on a new database at the same moment all succeed, and it is migrated once', { skip, timeout: 60_000 }, async () => {
  const p = await pg();
  const db = p.createDatabase();
  const url = p.url(db);
  const at = Date.now() + 1500;
  const runs = await Promise.all(Array.from({ length: 6 }, () => openInChild(url, at)));
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).got, false);
    assert.equal(r.stderr, '');
  }
  assert.equal(p.sql(db, 'SELECT version FROM nqqueue_schema'), String(PG_SCHEMA_VERSION));
  assert.equal(p.sql(db, 'SELECT COUNT(*) FROM nqqueue_schema'), '1');
});

test('postgres: the password comes from store_password_file (0600, ours) or PGPASSWORD, never from the URL', { skip }, async () => {
  const p = await pg();
  const db = p.createDatabase();
  const secret = 'S3cret-for-nqqueue';
  p.sql(db, `CREATE ROLE nqq_user LOGIN PASSWORD '${secret}'; GRANT ALL ON DATABASE ${db} TO nqq_user; ALTER DATABASE ${db} OWNER TO nqq_user`);
  const url = `postgres://nqq_user@127.0.0.1:${p.port}/${db}`;
  // In the URL: refused where it is written, before anything connects.
  assert.throws(() => settingsFor(`postgres://nqq_user:${secret}@127.0.0.1:${p.port}/${db}`), /holds a password: put it in a file named by store_password_file/);
  const dir = newDir();
  const file = join(dir, 'store.password');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  const s = await open(url, `store_password_file = ${file}\n`);
  assert.equal(s.engine, 'postgres');
  await s.addItem(item());
  assert.equal((await s.findItems({})).total, 1);
  await s.close();
  // Readable by others: refused, whatever it holds.
  chmodSync(file, 0o640);
  await refused(open(url, `store_password_file = ${file}\n`), /store_password_file \S+ can be read by others \(mode 0640\): chmod 600 it/);
  chmodSync(file, 0o600);
  const link = join(dir, 'link.password');
  symlinkSync(file, link);
  await refused(open(url, `store_password_file = ${link}\n`), /store_password_file \S+link\.password: it is a symbolic link/);
  await refused(open(url, `store_password_file = ${join(dir, 'missing')}\n`), /cannot read store_password_file \S+missing/);
  // A wrong password: the login is refused, and the message does not show the password.
  writeFileSync(file, 'not-the-password\n', { mode: 0o600 });
  await refused(open(url, `store_password_file = ${file}\n`), /refused the login .*check the user, and the password file or PGPASSWORD/, 'not-the-password');
  // libpq's variable, when no file is named.
  process.env.PGPASSWORD = secret;
  try {
    const e = await open(url);
    assert.equal((await e.findItems({})).total, 1);
    await e.close();
  } finally {
    delete process.env.PGPASSWORD;
  }
});

test('postgres: a database that is not there, or not running, is a StoreError that names it and says why', { skip }, async () => {
  const p = await pg();
  await refused(open(p.url('no_such_db')), /the store postgres:\/\/\S+no_such_db\S*: the database does not exist .*createdb/);
  await refused(open(`postgres://nqq_admin@127.0.0.1:1/x`, 'store_timeout = 2s\n'), /the store postgres:\/\/nqq_admin@127\.0\.0\.1:1\/x is unreachable while migrating its schema: connect ECONNREFUSED/);
  assert.throws(() => settingsFor('mysql://x@y/z'), /must be sqlite or a postgres:\/\/ URL, not a mysql: URL/);
  assert.throws(() => settingsFor('postgres://x@y'), /names no database/);
});

test('postgres: the database stopped under a running store: each call fails at once with a StoreError; restarted, the same store works again', { skip, timeout: 90_000 }, async () => {
  const p = await pg();
  const db = p.createDatabase();
  const s = await open(p.url(db), 'store_timeout = 3s\n');
  const first = item();
  await s.addItem(first);
  await p.stopServer();
  try {
    const started = Date.now();
    await assert.rejects(s.getItem(first.id), (err: unknown) => {
      assert.ok(err instanceof StoreError, String(err));
      assert.match(err.message, /is unreachable while reading item/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'within the timeout');
    await assert.rejects(s.addItem(item()), StoreError);
  } finally {
    await p.start();
  }
  // No restart of NQqueue: the pool connects again.
  let back: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      back = await s.getItem(first.id);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.equal((back as { id?: string } | undefined)?.id, first.id);
  await s.addItem(item());
  assert.equal((await s.findItems({})).total, 2);
  await s.close();
});

test('postgres: a value with a NUL byte (from outside) is stored with ? in its place, never a failure', { skip }, async () => {
  const p = await pg();
  const s = await open(p.url(p.createDatabase()));
  await s.audit({ at: new Date().toISOString(), who: 'evil\0user@example.com', from: '192.0.2.1', action: 'login-refused' });
  const [e] = await s.auditLog({ limit: 1 });
  assert.equal(e!.who, 'evil?user@example.com');
  await s.close();
});
