// A real PostgreSQL for the tests: a throw-away cluster (initdb) in a temp dir, run by an unprivileged
// user (the `postgres` system user when the tests run as root: PostgreSQL refuses to run as root),
// listening on a Unix socket in that dir and on a free 127.0.0.1 port (for the password tests), with
// fsync off (the tests check NQqueue's durability, not PostgreSQL's). Started and stopped by PID.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { freePort } from './daemons.js';

const isRoot = process.getuid?.() === 0;

export interface Postgres {
  /** The socket directory (libpq's `host` for a Unix socket). */
  readonly socketDir: string;
  readonly port: number;
  /** The superuser (trust on the socket). */
  readonly user: string;
  readonly pid: number;
  /** `postgres://USER@localhost/DB?host=SOCKETDIR`: DB on the socket as the superuser. */
  url(db: string): string;
  /** Run SQL as the superuser through psql; throws with psql's stderr on failure. */
  sql(db: string, sql: string): string;
  /** A new empty database (a language's default collation where the server has ICU); its name. */
  createDatabase(): string;
  /** Stop the server (SIGINT: fast shutdown) and wait for it; `start()` runs it again on the same data. */
  stopServer(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The directory of the newest PostgreSQL's programs, or undefined when none is installed. */
export function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin');
}

/** uid/gid of the user the cluster runs as (undefined: ourselves). */
function runAs(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postgres') return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return { uid: 65534, gid: 65534 };
}

let dbSeq = 0;

/** `durable`: fsync and synchronous commit on, as a site runs it (for the bench); the tests need neither. */
export async function startPostgres(o: { durable?: boolean } = {}): Promise<Postgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install -y postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'nqq-pg-'));
  const data = join(dir, 'data');
  const owner = runAs();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const user = 'nqq_admin';
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', user, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], {
    ...asOwner,
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [`listen_addresses = '127.0.0.1'`, `port = ${port}`, `unix_socket_directories = '${dir}'`, ...(o.durable ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']), 'max_connections = 200', 'shared_buffers = 32MB', ''].join('\n'),
  );
  if (owner) chownSync(join(data, 'postgresql.auto.conf'), owner.uid, owner.gid);
  let server: ChildProcess | undefined;
  const psqlBin = join(bin, 'psql');
  const pg: Postgres = {
    socketDir: dir,
    port,
    user,
    get pid() {
      return server?.pid ?? -1;
    },
    url: (db) => `postgres://${user}@localhost:${port}/${db}?host=${encodeURIComponent(dir)}`,
    sql(db, sql) {
      const r = spawnSync(psqlBin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', user, '-d', db, '-c', sql], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
      return r.stdout.trim();
    },
    createDatabase() {
      const name = `t${process.pid}_${++dbSeq}`;
      // A language's collation (ICU's en-US), as a site's database often has, where PostgreSQL can: the
      // engine must sort and compare text byte by byte whatever the database's default (COLLATE "C"),
      // and under the cluster's C.UTF-8 a place that forgot it would pass unseen.
      try {
        pg.sql('postgres', `CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
      } catch {
        pg.sql('postgres', `CREATE DATABASE ${name}`);
      }
      return name;
    },
    async start() {
      const log = join(dir, 'postgres.log');
      server = spawn(join(bin, 'postgres'), ['-D', data], { ...asOwner, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } });
      let stderr = '';
      server.stderr!.on('data', (d: Buffer) => (stderr += d));
      for (let i = 0; i < 600; i++) {
        if (server.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
        const r = spawnSync(join(bin, 'pg_isready'), ['-h', dir, '-p', String(port), '-U', user, '-d', 'postgres'], { encoding: 'utf8' });
        if (r.status === 0) return;
        await sleep(50);
      }
      server.kill('SIGKILL');
      throw new Error(`postgres did not start in 30 s (${log}): ${stderr}`);
    },
    async stopServer() {
      const s = server;
      if (!s || s.exitCode !== null || s.signalCode !== null) return;
      const gone = once(s, 'exit');
      s.kill('SIGINT');
      const t = setTimeout(() => s.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    },
    async stop() {
      await pg.stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}
