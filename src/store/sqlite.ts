// The embedded store: one SQLite file, $NQQUEUE_HOME/store.sqlite (0600), through node:sqlite. WAL, so
// readers (the console, `nqqueue quarantine list`) never wait for the queue path's writes; a busy
// timeout, so many short-lived queue processes writing at once wait their turn instead of failing. The
// schema carries its version in a table and is created or migrated on first use, in one transaction,
// whichever process gets there first. Every failure comes out as a StoreError saying which file and why.

import { randomUUID } from 'node:crypto';
import { accessSync, chmodSync, closeSync, constants, lstatSync, openSync } from 'node:fs';

import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';

import { permissionText } from '../text/permission.js';
import { deadClaim } from './claims.js';
import { LEARNED_MIGRATION, learnedClass, learnedCounts, markLearned } from './sqlite-learned.js';
import * as rollups from './sqlite-rollups.js';
import { LISTS_MIGRATION, SqliteLists } from './sqlite-lists.js';
import {
  StoreError,
  type Actor,
  type AuditEntry,
  type AuditQuery,
  type ClaimHolder,
  type DigestCadence,
  type GaugePoint,
  type ItemClaim,
  type ItemQuery,
  type ItemStatus,
  type LearnClass,
  type LearnedEntry,
  type LearnedKey,
  type ListEntry,
  type ListHolder,
  type ListProbe,
  type ListQuery,
  type NewListEntry,
  type NewQuarantineItem,
  type Preferences,
  type QuarantineItem,
  type RollupPoint,
  type RollupQuery,
  type RollupRow,
  type RollupTotal,
  type Store,
} from './types.js';
import { CADENCES, DEFAULT_PREFERENCES, DEFAULT_STALE_MS, iso, LANGUAGE, preferencesOf, SITE_CADENCE, STATUSES, storedCadence } from './values.js';

/** How long a writer waits for another one before the store counts as unreachable. */
export const BUSY_TIMEOUT_MS = 5000;

/** Each entry brings the schema from its index to the next version; never edit one that shipped. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE items (
     id TEXT PRIMARY KEY,
     date TEXT NOT NULL,
     message_id TEXT NOT NULL,
     host TEXT NOT NULL,
     size INTEGER NOT NULL,
     sender_text TEXT NOT NULL,
     sender_b64 TEXT NOT NULL,
     recipient_text TEXT NOT NULL,
     recipient_b64 TEXT NOT NULL,
     owner TEXT NOT NULL,
     domain TEXT NOT NULL,
     subject TEXT NOT NULL,
     results TEXT NOT NULL,
     caught_by TEXT NOT NULL,
     routing TEXT NOT NULL,
     note TEXT,
     status TEXT NOT NULL,
     status_at TEXT,
     status_by TEXT,
     claim TEXT,
     claim_at TEXT,
     -- lower-cased copies for case-insensitive search (SQLite's lower() knows ASCII only)
     s_sender TEXT NOT NULL,
     s_recipient TEXT NOT NULL,
     s_subject TEXT NOT NULL,
     s_plugins TEXT NOT NULL,
     s_caught TEXT NOT NULL
   );
   CREATE INDEX items_owner ON items (owner, date);
   CREATE INDEX items_domain ON items (domain, date);
   CREATE INDEX items_status ON items (status, date);
   CREATE TABLE preferences (owner TEXT PRIMARY KEY, digest TEXT NOT NULL, language TEXT NOT NULL);
   CREATE TABLE digests (owner TEXT PRIMARY KEY, last_sent TEXT NOT NULL, up_to TEXT NOT NULL);
   CREATE TABLE tokens (token TEXT PRIMARY KEY, expires TEXT NOT NULL);
   CREATE INDEX tokens_expires ON tokens (expires);
   CREATE TABLE audit (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     who TEXT NOT NULL,
     origin TEXT NOT NULL,
     action TEXT NOT NULL,
     item TEXT,
     detail TEXT
   );
   CREATE INDEX audit_item ON audit (item);`,
  // Claims say which host and process hold them (several hosts may share a store); leases for the
  // jobs a site runs once.
  `ALTER TABLE items ADD COLUMN claim_host TEXT;
   ALTER TABLE items ADD COLUMN claim_pid INTEGER;
   CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL);
   CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);`,
  LEARNED_MIGRATION,
  rollups.ROLLUPS_MIGRATION,
  LISTS_MIGRATION,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

type Row = Record<string, SQLInputValue>;

let sqliteModule: typeof import('node:sqlite') | undefined;

/**
 * node:sqlite, loaded without its "experimental" warning: in queue mode fd 2 is the mail log, and a
 * warning there on every quarantined message would be noise an admin learns to ignore.
 */
function sqlite(): typeof import('node:sqlite') {
  if (sqliteModule) return sqliteModule;
  const emit = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (type === 'ExperimentalWarning' && String(warning).includes('SQLite')) return;
    return (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    sqliteModule = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  } finally {
    process.emitWarning = emit;
  }
  return sqliteModule;
}

function str(v: SQLInputValue | undefined): string | undefined {
  return v === null || v === undefined ? undefined : String(v);
}

/**
 * WAL mode, persistent in the file. The switch of a new file is refused at once (SQLITE_BUSY, without
 * the busy handler's wait) while another process opens it at the same moment — several messages
 * quarantined at once by a site's first ones: two openers that both read the header and both want it
 * for themselves, one of them is told at once — so it is tried again, up to the busy timeout.
 */
export function walMode(db: Pick<DatabaseSync, 'exec'>, waitMs = BUSY_TIMEOUT_MS): void {
  const deadline = Date.now() + waitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let ms = 1; ; ms = Math.min(ms * 2, 50)) {
    try {
      db.exec('PRAGMA journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { errcode?: number }).errcode !== 5 || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, ms);
    }
  }
}

export class SqliteStore implements Store {
  readonly engine = 'sqlite';
  /** One host: the bytes stay in that host's quarantine files. */
  readonly shared = false;
  private db: DatabaseSync | undefined;
  private readonly statements = new Map<string, StatementSync>();
  private readonly lists = new SqliteLists({ stmt: (sql) => this.stmt(sql), write: (doing, work) => this.write(doing, work), read: (doing, work) => this.read(doing, work) });

  /** Opens (creating and migrating on first use) the store file at `path`. Throws StoreError. */
  constructor(readonly path: string) {
    this.db = this.open();
  }

  private fail(err: unknown, doing: string): StoreError {
    if (err instanceof StoreError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    const code = (err as { errcode?: number }).errcode;
    // SQLITE_CORRUPT (11), SQLITE_NOTADB (26)
    if (code === 26 || code === 11 || /not a database|malformed/i.test(msg)) {
      return new StoreError(
        `the store ${this.path} is not a usable SQLite database (${msg}) while ${doing}: restore it from a backup, or move it (and any -wal, -shm file) away to start an empty one`,
        { cause: err },
      );
    }
    if (code === 5 || code === 6 || /database is locked|busy/i.test(msg)) {
      // SQLite waits up to the busy timeout for most locks, but tells some conflicts at once: say what it said.
      return new StoreError(`the store ${this.path} is locked by another process (SQLite: ${msg}; it waits up to ${BUSY_TIMEOUT_MS} ms) while ${doing}`, { cause: err });
    }
    if (code === 8 || /readonly/i.test(msg)) {
      return new StoreError(`the store ${this.path} cannot be written while ${doing} (${msg}): check the owner and mode of it and of its directory`, { cause: err });
    }
    return new StoreError(`the store ${this.path}: ${msg} (while ${doing})`, { cause: err });
  }

  private open(): DatabaseSync {
    const path = this.path;
    // Made here, not by SQLite, so that it is private from the first byte (SQLite gives the -wal and
    // -shm files the main file's mode) and never a symlink to somewhere else.
    try {
      const st = lstatSync(path);
      if (st.isSymbolicLink()) throw new StoreError(`the store ${path} is a symbolic link: refused (put the real file there)`);
      if (st.isDirectory()) throw new StoreError(`the store ${path} is a directory, not a store file: move it away`);
      if (!st.isFile()) throw new StoreError(`the store ${path} is not a regular file: move it away`);
      if ((st.mode & 0o077) !== 0) chmodSync(path, 0o600);
      // SQLite would quietly open a file it cannot write read-only, and fail at the first write.
      accessSync(path, constants.R_OK | constants.W_OK);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError(`cannot use the store ${path}: ${permissionText(path, err)}`, { cause: err });
      try {
        closeSync(openSync(path, constants.O_CREAT | constants.O_RDWR | constants.O_NOFOLLOW, 0o600));
      } catch (e) {
        throw new StoreError(`cannot create the store ${path}: ${permissionText(path, e)}`, { cause: e });
      }
    }
    // SQLite says only "unable to open database file" when its -wal or -shm is someone else's (left by
    // a sqlite3 run as root, say): name the file and its owner instead.
    for (const side of [`${path}-wal`, `${path}-shm`]) {
      try {
        accessSync(side, constants.R_OK | constants.W_OK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError(`cannot use the store ${path}: ${permissionText(side, err)}`, { cause: err });
      }
    }
    let db: DatabaseSync;
    try {
      db = new (sqlite().DatabaseSync)(path);
    } catch (err) {
      throw new StoreError(`cannot open the store ${path}: ${permissionText(path, err)}`, { cause: err });
    }
    try {
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      walMode(db);
      db.exec('PRAGMA synchronous = FULL');
      // A small page cache: the store is small and mostly appended to, and the daemon that holds it open
      // must stay within its memory bound while it handles a large message.
      db.exec('PRAGMA cache_size = -256');
      this.migrate(db);
    } catch (err) {
      try {
        db.close();
      } catch {
        // already unusable
      }
      throw this.fail(err, 'opening it');
    }
    return db;
  }

  private migrate(db: DatabaseSync): void {
    const current = (): number => {
      const has = db.prepare("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
      if (!has) return 0;
      const row = db.prepare('SELECT version FROM schema_version').get();
      return row ? Number(row.version) : 0;
    };
    if (current() === SCHEMA_VERSION) return;
    // IMMEDIATE: the first of several processes opening a new store takes the write lock; the others
    // wait (busy_timeout), then find it migrated.
    db.exec('BEGIN IMMEDIATE');
    try {
      let v = current();
      if (v > SCHEMA_VERSION) {
        throw new StoreError(`the store ${this.path} has schema version ${v}, newer than this NQqueue knows (${SCHEMA_VERSION}): run the newer NQqueue, or restore a backup`);
      }
      if (v === 0) db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
      for (; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
      db.exec('DELETE FROM schema_version');
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }

  private conn(): DatabaseSync {
    if (!this.db) throw new StoreError(`the store ${this.path} is closed`);
    return this.db;
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.conn().prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Run `work` in one write transaction; any failure rolls it back and comes out as a StoreError. */
  private write<T>(doing: string, work: () => T): T {
    const db = this.conn();
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      throw this.fail(err, doing);
    }
    try {
      const out = work();
      db.exec('COMMIT');
      return out;
    } catch (err) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // the transaction is gone already
      }
      throw err instanceof TypeError ? err : this.fail(err, doing);
    }
  }

  private read<T>(doing: string, work: () => T): T {
    try {
      return work();
    } catch (err) {
      throw err instanceof TypeError ? err : this.fail(err, doing);
    }
  }

  private toItem(r: Row): QuarantineItem {
    const routing = JSON.parse(String(r.routing)) as QuarantineItem['routing'];
    return {
      id: String(r.id),
      date: String(r.date),
      messageId: String(r.message_id),
      host: String(r.host),
      size: Number(r.size),
      sender: { text: String(r.sender_text), base64: String(r.sender_b64) },
      recipient: { text: String(r.recipient_text), base64: String(r.recipient_b64) },
      owner: String(r.owner),
      domain: String(r.domain),
      subject: String(r.subject),
      results: JSON.parse(String(r.results)) as QuarantineItem['results'],
      caughtBy: JSON.parse(String(r.caught_by)) as string[],
      routing,
      ...(r.note === null ? {} : { note: String(r.note) }),
      status: String(r.status) as ItemStatus,
      ...(r.status_at === null ? {} : { statusAt: String(r.status_at) }),
      ...(r.status_by === null ? {} : { statusBy: String(r.status_by) }),
      ...(r.status !== 'releasing' || r.claim_host === null || r.claim_host === undefined ? {} : { claimHost: String(r.claim_host) }),
      ...(r.status !== 'releasing' || r.claim_pid === null || r.claim_pid === undefined ? {} : { claimPid: Number(r.claim_pid) }),
    };
  }

  async addItem(item: NewQuarantineItem, _message?: Buffer): Promise<void> {
    const date = iso(item.date, 'item date');
    const plugins = ['', ...new Set([...item.caughtBy, ...item.results.map((r) => r.plugin)].map((p) => p.toLowerCase())), ''].join('\n');
    const caught = ['', ...item.caughtBy.map((p) => p.toLowerCase()), ''].join('\n');
    this.write(`indexing item ${item.id}`, () =>
      this.stmt(
        `INSERT OR IGNORE INTO items (id, date, message_id, host, size, sender_text, sender_b64, recipient_text, recipient_b64,
           owner, domain, subject, results, caught_by, routing, note, status, s_sender, s_recipient, s_subject, s_plugins, s_caught)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?, ?, ?)`,
      ).run(
        item.id,
        date,
        item.messageId,
        item.host,
        item.size,
        item.sender.text,
        item.sender.base64,
        item.recipient.text,
        item.recipient.base64,
        item.owner.toLowerCase(),
        item.domain.toLowerCase(),
        item.subject,
        JSON.stringify(item.results),
        JSON.stringify(item.caughtBy),
        JSON.stringify(item.routing ?? {}),
        item.note ?? null,
        item.sender.text.toLowerCase(),
        item.recipient.text.toLowerCase(),
        item.subject.toLowerCase(),
        plugins,
        caught,
      ),
    );
  }

  async forgetItem(id: string): Promise<void> {
    this.write(`forgetting item ${id}`, () => this.stmt('DELETE FROM items WHERE id = ?').run(id));
  }

  async getItem(id: string): Promise<QuarantineItem | undefined> {
    return this.read(`reading item ${id}`, () => {
      const r = this.stmt('SELECT * FROM items WHERE id = ?').get(id);
      return r ? this.toItem(r as Row) : undefined;
    });
  }

  async itemBytes(_id: string): Promise<Buffer | undefined> {
    return undefined;
  }

  async itemIds(): Promise<ReadonlySet<string>> {
    return this.read('listing item ids', () => new Set(this.stmt('SELECT id FROM items').all().map((r) => String(r.id))));
  }

  async findItems(query: ItemQuery): Promise<{ readonly items: readonly QuarantineItem[]; readonly total: number }> {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    const status = query.status ?? ['held'];
    for (const s of status) if (!STATUSES.includes(s)) throw new TypeError(`not an item status: ${JSON.stringify(s)}`);
    if (status.length === 0) return { items: [], total: 0 };
    where.push(`status IN (${status.map(() => '?').join(', ')})`);
    args.push(...status);
    if (query.owner !== undefined) {
      where.push('owner = ?');
      args.push(query.owner.toLowerCase());
    }
    if (query.domain !== undefined) {
      where.push('domain = ?');
      args.push(query.domain.toLowerCase());
    }
    // instr(), not LIKE: what the user typed is matched as it is, % and _ included.
    if (query.sender !== undefined) {
      where.push('instr(s_sender, ?) > 0');
      args.push(query.sender.toLowerCase());
    }
    if (query.recipient !== undefined) {
      where.push('instr(s_recipient, ?) > 0');
      args.push(query.recipient.toLowerCase());
    }
    if (query.text !== undefined) {
      const t = query.text.toLowerCase();
      where.push('(instr(s_sender, ?) > 0 OR instr(s_recipient, ?) > 0 OR instr(s_subject, ?) > 0 OR instr(s_plugins, ?) > 0)');
      args.push(t, t, t, t);
    }
    if (query.caughtBy !== undefined) {
      where.push('instr(s_caught, ?) > 0');
      args.push(`\n${query.caughtBy.toLowerCase()}\n`);
    }
    if (query.since !== undefined) {
      where.push('date >= ?');
      args.push(iso(query.since, 'since'));
    }
    if (query.before !== undefined) {
      where.push('date < ?');
      args.push(iso(query.before, 'before'));
    }
    const limit = query.limit ?? -1;
    const offset = query.offset ?? 0;
    if (!Number.isInteger(limit) || (limit < 0 && limit !== -1) || !Number.isInteger(offset) || offset < 0) {
      throw new TypeError(`limit and offset must be whole numbers, not ${query.limit} and ${query.offset}`);
    }
    const cond = where.join(' AND ');
    const dir = query.order === 'oldest' ? 'ASC' : 'DESC';
    return this.read('searching items', () => {
      const total = Number(this.stmt(`SELECT COUNT(*) AS n FROM items WHERE ${cond}`).get(...args)!.n);
      const rows = this.stmt(`SELECT * FROM items WHERE ${cond} ORDER BY date ${dir}, id ${dir} LIMIT ? OFFSET ?`).all(...args, limit, offset);
      return { items: rows.map((r) => this.toItem(r as Row)), total };
    });
  }

  async claimItem(id: string, actor: Actor, action: string, staleMs = DEFAULT_STALE_MS, holder?: ClaimHolder): Promise<ItemClaim | undefined> {
    const token = randomUUID();
    const now = new Date();
    const staleBefore = new Date(now.getTime() - staleMs).toISOString();
    const taken = this.write(`claiming item ${id}`, () => {
      const r = this.stmt('SELECT * FROM items WHERE id = ?').get(id) as Row | undefined;
      if (!r) return undefined;
      const claimable = r.status === 'held' || (r.status === 'releasing' && (deadClaim(r, staleBefore, holder)));
      if (!claimable) return undefined;
      // What the item looked like while held, to put back if the action is abandoned.
      const before = r.status === 'held' ? { at: str(r.status_at), by: str(r.status_by) } : undefined;
      this.stmt("UPDATE items SET status = 'releasing', claim = ?, claim_at = ?, status_at = ?, status_by = ?, claim_host = ?, claim_pid = ? WHERE id = ?").run(
        token,
        now.toISOString(),
        now.toISOString(),
        actor.who,
        holder?.host ?? null,
        holder?.pid ?? null,
        id,
      );
      return {
        row: { ...r, status: 'releasing', status_at: now.toISOString(), status_by: actor.who, claim_host: holder?.host ?? null, claim_pid: holder?.pid ?? null } as Row,
        before,
      };
    });
    if (!taken) return undefined;
    const item = this.toItem(taken.row);
    let done = false;
    return {
      item,
      finish: async (status, detail) => {
        if (done) return;
        if (status !== 'released' && status !== 'deleted' && status !== 'expired') throw new TypeError(`not a final status: ${JSON.stringify(status)}`);
        this.write(`recording the ${action} of item ${id}`, () => {
          const at = new Date().toISOString();
          const changed = this.stmt('UPDATE items SET status = ?, status_at = ?, status_by = ?, claim = NULL, claim_at = NULL, claim_host = NULL, claim_pid = NULL WHERE id = ? AND claim = ?').run(
            status,
            at,
            actor.who,
            id,
            token,
          );
          if (Number(changed.changes) !== 1) throw new StoreError(`the claim on item ${id} was lost (another process took it over as stale)`);
          this.stmt('INSERT INTO audit (at, who, origin, action, item, detail) VALUES (?, ?, ?, ?, ?, ?)').run(at, actor.who, actor.from, action, id, detail ?? null);
        });
        done = true;
      },
      abandon: async () => {
        if (done) return;
        this.write(`giving back item ${id}`, () =>
          this.stmt("UPDATE items SET status = 'held', claim = NULL, claim_at = NULL, claim_host = NULL, claim_pid = NULL, status_at = ?, status_by = ? WHERE id = ? AND claim = ?").run(
            taken.before?.at ?? null,
            taken.before?.by ?? null,
            id,
            token,
          ),
        );
        done = true;
      },
    };
  }

  async expiredItems(before: string, limit = 1000): Promise<readonly QuarantineItem[]> {
    const b = iso(before, 'before');
    return this.read('looking for expired items', () =>
      this.stmt("SELECT * FROM items WHERE status = 'held' AND date < ? ORDER BY date ASC, id ASC LIMIT ?")
        .all(b, limit)
        .map((r) => this.toItem(r as Row)),
    );
  }

  async getPreferences(owner: string): Promise<Preferences> {
    return this.read(`reading the preferences of ${owner}`, () => {
      const r = this.stmt('SELECT digest, language FROM preferences WHERE owner = ?').get(owner.toLowerCase());
      return r ? preferencesOf(r.digest, r.language) : DEFAULT_PREFERENCES;
    });
  }

  async setPreferences(owner: string, prefs: Partial<Preferences>): Promise<void> {
    if (prefs.digest !== undefined && !CADENCES.includes(prefs.digest)) throw new TypeError(`not a digest cadence: ${JSON.stringify(prefs.digest)} (${CADENCES.join(', ')})`);
    if (prefs.language !== undefined && !LANGUAGE.test(prefs.language)) throw new TypeError(`not a language tag: ${JSON.stringify(prefs.language.slice(0, 40))}`);
    const o = owner.toLowerCase();
    this.write(`saving the preferences of ${o}`, () => {
      const r = this.stmt('SELECT digest, language FROM preferences WHERE owner = ?').get(o);
      const cur = r ? preferencesOf(r.digest, r.language) : DEFAULT_PREFERENCES;
      // Saving only a language chooses no cadence: the site's stays in force.
      this.stmt('INSERT OR REPLACE INTO preferences (owner, digest, language) VALUES (?, ?, ?)').run(o, prefs.digest ?? cur.digest ?? SITE_CADENCE, prefs.language ?? cur.language);
    });
  }

  async digestCandidates(): Promise<readonly { readonly owner: string; readonly cadence?: DigestCadence; readonly lastSent?: string; readonly newSince?: string }[]> {
    return this.read('looking for digest candidates', () =>
      this.stmt(
        `SELECT i.owner AS owner, p.digest AS digest, d.last_sent AS last_sent, MIN(i.date) AS new_since
         FROM items i LEFT JOIN preferences p ON p.owner = i.owner LEFT JOIN digests d ON d.owner = i.owner
         WHERE i.status = 'held' AND (d.up_to IS NULL OR i.date > d.up_to)
         GROUP BY i.owner ORDER BY i.owner`,
      )
        .all()
        .map((r) => ({
          owner: String(r.owner),
          ...(storedCadence(r.digest) === undefined ? {} : { cadence: storedCadence(r.digest) }),
          ...(r.last_sent === null ? {} : { lastSent: String(r.last_sent) }),
          ...(r.new_since === null ? {} : { newSince: String(r.new_since) }),
        })),
    );
  }

  async markDigestSent(owner: string, at: string, upTo: string): Promise<void> {
    const a = iso(at, 'at');
    const u = iso(upTo, 'upTo');
    this.write(`recording the digest of ${owner}`, () =>
      this.stmt('INSERT OR REPLACE INTO digests (owner, last_sent, up_to) VALUES (?, ?, ?)').run(owner.toLowerCase(), a, u),
    );
  }

  async takeLease(name: string, holder: string, ms: number): Promise<boolean> {
    const now = new Date();
    const until = new Date(now.getTime() + ms).toISOString();
    return this.write(`taking the lease ${name}`, () => {
      const r = this.stmt('SELECT holder, until FROM leases WHERE name = ?').get(name);
      if (r && String(r.holder) !== holder && String(r.until) > now.toISOString()) return false;
      this.stmt('INSERT OR REPLACE INTO leases (name, holder, until) VALUES (?, ?, ?)').run(name, holder, until);
      return true;
    });
  }

  async dropLease(name: string, holder: string): Promise<void> {
    this.write(`giving back the lease ${name}`, () => this.stmt('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder));
  }

  async siteSecret(name: string, candidate: Buffer): Promise<Buffer> {
    return this.write(`reading the secret ${name}`, () => {
      this.stmt('INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)').run(name, candidate);
      return Buffer.from(this.stmt('SELECT value FROM secrets WHERE name = ?').get(name)!.value as Uint8Array);
    });
  }

  async useToken(token: string, expires: string): Promise<boolean> {
    const e = iso(expires, 'expires');
    return this.write('using a link token', () => {
      this.stmt('DELETE FROM tokens WHERE expires < ?').run(new Date().toISOString());
      return Number(this.stmt('INSERT OR IGNORE INTO tokens (token, expires) VALUES (?, ?)').run(token, e).changes) === 1;
    });
  }

  async audit(entry: AuditEntry): Promise<void> {
    const at = iso(entry.at, 'audit time');
    this.write(`writing the audit log (${entry.action})`, () =>
      this.stmt('INSERT INTO audit (at, who, origin, action, item, detail) VALUES (?, ?, ?, ?, ?, ?)').run(
        at,
        entry.who,
        entry.from,
        entry.action,
        entry.item ?? null,
        entry.detail ?? null,
      ),
    );
  }

  /** Newest first. */
  async auditLog(query: AuditQuery = {}): Promise<readonly AuditEntry[]> {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (query.item !== undefined) {
      where.push('item = ?');
      args.push(query.item);
    }
    if (query.who !== undefined) {
      where.push('who = ?');
      args.push(query.who);
    }
    const limit = query.limit ?? -1;
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    return this.read('reading the audit log', () =>
      this.stmt(sql)
        .all(...args, limit)
        .map((r) => ({
          at: String(r.at),
          who: String(r.who),
          from: String(r.origin),
          action: String(r.action),
          ...(r.item === null ? {} : { item: String(r.item) }),
          ...(r.detail === null ? {} : { detail: String(r.detail) }),
        })),
    );
  }

  async learnedClass(key: LearnedKey): Promise<LearnClass | undefined> {
    return this.read('reading what was learned', () => learnedClass((sql) => this.stmt(sql), key));
  }

  async markLearned(entry: LearnedEntry): Promise<void> {
    const at = iso(entry.at, 'learned at');
    this.write('remembering what was learned', () => markLearned((sql) => this.stmt(sql), entry, at));
  }

  async learnedCounts(user?: string): Promise<readonly { readonly learner: string; readonly class: LearnClass; readonly count: number }[]> {
    return this.read('counting what was learned', () => learnedCounts((sql) => this.stmt(sql), user));
  }

  // ---- Rollups (the SQL is in sqlite-rollups.ts)

  /** The store's statements and transactions, for the SQL kept in files of their own. */
  private get rollupAccess(): rollups.SqlAccess {
    return { stmt: (sql) => this.stmt(sql), write: (doing, work) => this.write(doing, work), read: (doing, work) => this.read(doing, work) };
  }

  async addRollups(rows: readonly RollupRow[]): Promise<void> {
    rollups.addRollups(this.rollupAccess, rows);
  }

  async rollupTimeline(query: RollupQuery & { readonly stepMinutes: number; readonly keys?: readonly string[] }): Promise<readonly RollupPoint[]> {
    return rollups.rollupTimeline(this.rollupAccess, query);
  }

  async rollupTotals(query: RollupQuery & { readonly limit?: number }): Promise<{ readonly rows: readonly RollupTotal[]; readonly keys: number; readonly count: number }> {
    return rollups.rollupTotals(this.rollupAccess, query);
  }

  async rollupGauge(query: RollupQuery & { readonly stepMinutes: number }): Promise<readonly GaugePoint[]> {
    return rollups.rollupGauge(this.rollupAccess, query);
  }

  async rollupGaugeLatest(query: RollupQuery): Promise<readonly { readonly host: string; readonly minute: string; readonly value: number }[]> {
    return rollups.rollupGaugeLatest(this.rollupAccess, query);
  }

  async rollupHosts(since: string, before: string): Promise<readonly string[]> {
    return rollups.rollupHosts(this.rollupAccess, since, before);
  }

  async pruneRollups(before: string): Promise<number> {
    return rollups.pruneRollups(this.rollupAccess, before);
  }

  // ---- Lists (the SQL is in sqlite-lists.ts)

  async putListEntry(entry: NewListEntry): Promise<{ readonly entry: ListEntry; readonly replaced?: ListEntry }> {
    return this.lists.putListEntry(entry);
  }

  async putListEntries(entries: readonly NewListEntry[]): Promise<number> {
    return this.lists.putListEntries(entries);
  }

  async getListEntry(id: string): Promise<ListEntry | undefined> {
    return this.lists.getListEntry(id);
  }

  async deleteListEntry(id: string, holder?: ListHolder): Promise<ListEntry | undefined> {
    return this.lists.deleteListEntry(id, holder);
  }

  async findListEntries(query: ListQuery): Promise<{ readonly entries: readonly ListEntry[]; readonly total: number }> {
    return this.lists.findListEntries(query);
  }

  async matchListEntries(probe: ListProbe): Promise<readonly ListEntry[]> {
    return this.lists.matchListEntries(probe);
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    this.statements.clear();
    if (!db) return;
    try {
      db.close();
    } catch (err) {
      throw this.fail(err, 'closing it');
    }
  }
}
