// The store on PostgreSQL, for sites with several MX hosts: every host points `store = postgres://...`
// at one database, and the quarantine's index, preferences, digests, tokens and the audit log are the
// site's, not a host's. The same interface and the same shared suite as the embedded SQLite engine.
// Connections are pooled (pg's Pool), with a timeout on connecting and on every query (client side
// and server side); a broken connection is dropped and the next query opens another, so a restarted
// database is used again without restarting NQqueue. The schema is migrated once, under an advisory
// lock, however many hosts start at the same moment. Every failure comes out as a StoreError that
// names the database (never its password) and says why.

import { randomUUID } from 'node:crypto';

import type { Pool, PoolClient, PoolConfig, QueryResultRow } from 'pg';

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
  type ListEntry,
  type ListHolder,
  type ListProbe,
  type ListQuery,
  type NewListEntry,
  type LearnedEntry,
  type LearnedKey,
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
import { deadClaim } from './claims.js';
import { checkKey, CLASSES } from './learned.js';
import { deleteEntry, findEntries, getEntry, LISTS_SCHEMA, matchEntries, putEntry, type Sql } from './postgres-lists.js';
import * as rollups from './postgres-rollups.js';
import { redactUrl } from '../text/secret-url.js';

/** The advisory lock every host takes to migrate: one migrates, the others wait and find it done. */
const MIGRATION_LOCK = 0x6e7171; // "nqq"

/** Each entry brings the schema from its index to the next version; never edit one that shipped. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE items (
     id TEXT PRIMARY KEY,
     date TEXT NOT NULL,
     message_id TEXT NOT NULL,
     host TEXT NOT NULL,
     size BIGINT NOT NULL,
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
     claim_host TEXT,
     claim_pid INTEGER,
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
     seq BIGSERIAL PRIMARY KEY,
     at TEXT NOT NULL,
     who TEXT NOT NULL,
     origin TEXT NOT NULL,
     action TEXT NOT NULL,
     item TEXT,
     detail TEXT
   );
   CREATE INDEX audit_item ON audit (item);
   -- The bytes of held items, so that any host can show and release them; gone once an item is done.
   CREATE TABLE item_messages (id TEXT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE, bytes BYTEA NOT NULL);
   CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL);
   CREATE TABLE secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
   CREATE TABLE learned (
     digest TEXT NOT NULL,
     learner_user TEXT NOT NULL,
     learner TEXT NOT NULL,
     class TEXT NOT NULL,
     at TEXT NOT NULL,
     PRIMARY KEY (digest, learner_user, learner)
   );
   CREATE INDEX learned_user ON learned (learner_user);
   ${LISTS_SCHEMA}
   ${rollups.ROLLUPS_SCHEMA}`,
];
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

export interface PostgresOptions {
  /** `postgres://USER@HOST:PORT/DB?...` (libpq's PG* variables fill in what it leaves out). */
  readonly url: string;
  /** The password, read by the caller from the file the settings name. */
  readonly password?: string;
  /** Connect and per-query timeout, milliseconds. */
  readonly timeoutMs: number;
  /** Connections at most. */
  readonly poolSize?: number;
}

/** The URL without its password, for messages and logs. */
export { redactUrl };

/**
 * The URL the pool connects with: the password from the file goes into it, since pg drops a separate
 * `password` option when it also has a connection string (it copies only enumerable options, and the
 * pool hides the password). Never shown: messages use redactUrl(options.url).
 */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/**
 * PostgreSQL's text cannot hold NUL: one in a value (only ever from outside: a typed login, a header)
 * is stored as `?`, as control bytes are shown everywhere else.
 */
function text(v: string): string {
  return v.includes('\0') ? v.replaceAll('\0', '?') : v;
}

type Param = string | number | boolean | null | Buffer | readonly (string | number | boolean)[];

function params(values: readonly (Param | undefined)[]): Param[] {
  return values.map((v) =>
    v === undefined ? null : typeof v === 'string' ? text(v) : Array.isArray(v) ? v.map((x: string | number | boolean) => (typeof x === 'string' ? text(x) : x)) : v,
  );
}

function opt(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : String(v);
}

function toItem(r: QueryResultRow): QuarantineItem {
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
    routing: JSON.parse(String(r.routing)) as QuarantineItem['routing'],
    ...(r.note === null ? {} : { note: String(r.note) }),
    status: String(r.status) as ItemStatus,
    ...(r.status_at === null ? {} : { statusAt: String(r.status_at) }),
    ...(r.status_by === null ? {} : { statusBy: String(r.status_by) }),
    ...(r.status !== 'releasing' || r.claim_host === null ? {} : { claimHost: String(r.claim_host) }),
    ...(r.status !== 'releasing' || r.claim_pid === null ? {} : { claimPid: Number(r.claim_pid) }),
  };
}

type Values = readonly (Param | undefined)[];
type Query = (sql: string, values?: Values) => Promise<QueryResultRow[]>;

export class PostgresStore implements Store {
  readonly engine = 'postgres';
  /** Shared by several hosts: the bytes of held items are kept here too, so any host can act on them. */
  readonly shared = true;
  private pool: Pool | undefined;
  private readonly name: string;

  private constructor(pool: Pool, readonly options: PostgresOptions) {
    this.pool = pool;
    this.name = redactUrl(options.url);
  }

  /** Connect (pooled), migrate on first use; rejects with a StoreError saying why. */
  static async open(options: PostgresOptions): Promise<PostgresStore> {
    let pg: typeof import('pg');
    try {
      pg = (await import('pg')).default as unknown as typeof import('pg');
    } catch (err) {
      throw new StoreError(`the PostgreSQL store needs the pg module, which cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
    const config: PoolConfig = {
      connectionString: withPassword(options.url, options.password),
      connectionTimeoutMillis: options.timeoutMs,
      query_timeout: options.timeoutMs,
      statement_timeout: options.timeoutMs,
      idleTimeoutMillis: 30_000,
      max: options.poolSize ?? 10,
      application_name: 'nqqueue',
      // A pooled connection must never keep a one-shot queue process alive after its message.
      allowExitOnIdle: true,
    };
    let pool: Pool;
    try {
      pool = new pg.Pool(config);
    } catch (err) {
      throw new StoreError(`the store ${redactUrl(options.url)}: ${(err as Error).message}`, { cause: err });
    }
    // A connection that breaks while idle (the database restarted) is dropped by the pool; without a
    // listener its error would end the process.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, options);
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw store.fail(err, 'opening it');
    }
    return store;
  }

  private fail(err: unknown, doing: string): StoreError {
    if (err instanceof StoreError) return err;
    if (err instanceof TypeError) throw err;
    const e = err as { code?: string; message?: string };
    const msg = (e.message ?? String(err)).replaceAll(this.options.password ?? '\0\0', '***');
    const code = e.code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ECONNRESET' || code === '57P01' || code === '57P03' || /timeout|terminat|Connection ended/i.test(msg)) {
      return new StoreError(`the store ${this.name} is unreachable while ${doing}: ${msg}`, { cause: err });
    }
    if (code === '28P01' || code === '28000') return new StoreError(`the store ${this.name} refused the login while ${doing}: ${msg} (check the user, and the password file or PGPASSWORD)`, { cause: err });
    if (code === '3D000') return new StoreError(`the store ${this.name}: the database does not exist (${msg}): create it (createdb) and give it to NQqueue's user`, { cause: err });
    if (code === '42501') return new StoreError(`the store ${this.name}: permission denied while ${doing} (${msg}): NQqueue's user must own the database or its tables`, { cause: err });
    return new StoreError(`the store ${this.name}: ${msg} (while ${doing})`, { cause: err });
  }

  private conn(): Pool {
    if (!this.pool) throw new StoreError(`the store ${this.name} is closed`);
    return this.pool;
  }

  private async migrate(): Promise<void> {
    await this.transaction('migrating its schema', async (q) => {
      // Every host that starts takes the same lock: the first migrates, the others then find it done.
      await q('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await q('CREATE TABLE IF NOT EXISTS nqqueue_schema (version INTEGER NOT NULL)');
      const rows = await q('SELECT version FROM nqqueue_schema');
      let v = rows.length ? Number(rows[0]!.version) : 0;
      if (v > PG_SCHEMA_VERSION) {
        throw new StoreError(`the store ${this.name} has schema version ${v}, newer than this NQqueue knows (${PG_SCHEMA_VERSION}): run the newer NQqueue on every host`);
      }
      if (v === PG_SCHEMA_VERSION) return;
      for (; v < PG_SCHEMA_VERSION; v++) await q(MIGRATIONS[v]!);
      await q('DELETE FROM nqqueue_schema');
      await q('INSERT INTO nqqueue_schema (version) VALUES ($1)', [PG_SCHEMA_VERSION]);
    });
  }

  private async query(doing: string, sql: string, values: Values = []): Promise<QueryResultRow[]> {
    try {
      return (await this.conn().query(sql, params(values))).rows;
    } catch (err) {
      throw this.fail(err, doing);
    }
  }

  private async changes(doing: string, sql: string, values: Values): Promise<number> {
    try {
      return (await this.conn().query(sql, params(values))).rowCount ?? 0;
    } catch (err) {
      throw this.fail(err, doing);
    }
  }

  /** Run `work` in one transaction on one connection; any failure rolls it back (a StoreError). */
  private async transaction<T>(doing: string, work: (q: Query, changes: (sql: string, values: Values) => Promise<number>) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.conn().connect();
    } catch (err) {
      throw this.fail(err, doing);
    }
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const out = await work(
        async (sql, values = []) => (await client.query(sql, params(values))).rows,
        async (sql, values) => (await client.query(sql, params(values))).rowCount ?? 0,
      );
      await client.query('COMMIT');
      return out;
    } catch (err) {
      broken = err;
      try {
        await client.query('ROLLBACK');
        broken = undefined;
      } catch {
        // the connection is gone: it is not given back to the pool
      }
      throw err instanceof StoreError || err instanceof TypeError ? err : this.fail(err, doing);
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async addItem(item: NewQuarantineItem, message?: Buffer): Promise<void> {
    const date = iso(item.date, 'item date');
    const plugins = ['', ...new Set([...item.caughtBy, ...item.results.map((r) => r.plugin)].map((p) => p.toLowerCase())), ''].join('\n');
    const caught = ['', ...item.caughtBy.map((p) => p.toLowerCase()), ''].join('\n');
    // The entry and its bytes in one step: no host ever finds one without the other.
    await this.transaction(`indexing item ${item.id}`, async (q, changes) => {
      const added = await changes(
      `INSERT INTO items (id, date, message_id, host, size, sender_text, sender_b64, recipient_text, recipient_b64,
         owner, domain, subject, results, caught_by, routing, note, status, s_sender, s_recipient, s_subject, s_plugins, s_caught)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'held', $17, $18, $19, $20, $21)
       ON CONFLICT (id) DO NOTHING`,
      [
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
      ],
      );
      if (added === 1 && message !== undefined) await q('INSERT INTO item_messages (id, bytes) VALUES ($1, $2)', [item.id, message]);
    });
  }

  async itemBytes(id: string): Promise<Buffer | undefined> {
    const rows = await this.query(`reading the message of item ${id}`, 'SELECT bytes FROM item_messages WHERE id = $1', [id]);
    return rows[0] ? (rows[0].bytes as Buffer) : undefined;
  }

  async forgetItem(id: string): Promise<void> {
    await this.query(`forgetting item ${id}`, 'DELETE FROM items WHERE id = $1', [id]);
  }

  async getItem(id: string): Promise<QuarantineItem | undefined> {
    const rows = await this.query(`reading item ${id}`, 'SELECT * FROM items WHERE id = $1', [id]);
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async itemIds(): Promise<ReadonlySet<string>> {
    return new Set((await this.query('listing item ids', 'SELECT id FROM items')).map((r) => String(r.id)));
  }

  async findItems(query: ItemQuery): Promise<{ readonly items: readonly QuarantineItem[]; readonly total: number }> {
    const where: string[] = [];
    const args: (string | number | null)[] = [];
    const arg = (v: string | number | null): string => {
      args.push(v);
      return `$${args.length}`;
    };
    const status = query.status ?? ['held'];
    for (const s of status) if (!STATUSES.includes(s)) throw new TypeError(`not an item status: ${JSON.stringify(s)}`);
    if (status.length === 0) return { items: [], total: 0 };
    where.push(`status IN (${status.map((s) => arg(s)).join(', ')})`);
    if (query.owner !== undefined) where.push(`owner = ${arg(query.owner.toLowerCase())}`);
    if (query.domain !== undefined) where.push(`domain = ${arg(query.domain.toLowerCase())}`);
    // strpos(), not LIKE: what the user typed is matched as it is, % and _ included.
    if (query.sender !== undefined) where.push(`strpos(s_sender, ${arg(query.sender.toLowerCase())}) > 0`);
    if (query.recipient !== undefined) where.push(`strpos(s_recipient, ${arg(query.recipient.toLowerCase())}) > 0`);
    if (query.text !== undefined) {
      const t = arg(query.text.toLowerCase());
      where.push(`(strpos(s_sender, ${t}) > 0 OR strpos(s_recipient, ${t}) > 0 OR strpos(s_subject, ${t}) > 0 OR strpos(s_plugins, ${t}) > 0)`);
    }
    if (query.caughtBy !== undefined) where.push(`strpos(s_caught, ${arg(`\n${query.caughtBy.toLowerCase()}\n`)}) > 0`);
    if (query.since !== undefined) where.push(`date >= ${arg(iso(query.since, 'since'))}`);
    if (query.before !== undefined) where.push(`date < ${arg(iso(query.before, 'before'))}`);
    const limit = query.limit ?? -1;
    const offset = query.offset ?? 0;
    if (!Number.isInteger(limit) || (limit < 0 && limit !== -1) || !Number.isInteger(offset) || offset < 0) {
      throw new TypeError(`limit and offset must be whole numbers, not ${query.limit} and ${query.offset}`);
    }
    const cond = where.join(' AND ');
    const dir = query.order === 'oldest' ? 'ASC' : 'DESC';
    const countArgs = [...args];
    const total = Number((await this.query('searching items', `SELECT COUNT(*) AS n FROM items WHERE ${cond}`, countArgs))[0]!.n);
    // COLLATE "C": ids and ISO dates sort byte by byte, as on every engine.
    const rows = await this.query(
      'searching items',
      `SELECT * FROM items WHERE ${cond} ORDER BY date COLLATE "C" ${dir}, id COLLATE "C" ${dir} LIMIT ${arg(limit === -1 ? null : limit)} OFFSET ${arg(offset)}`,
      args,
    );
    return { items: rows.map(toItem), total };
  }

  async claimItem(id: string, actor: Actor, action: string, staleMs = DEFAULT_STALE_MS, holder?: ClaimHolder): Promise<ItemClaim | undefined> {
    const token = randomUUID();
    const now = new Date().toISOString();
    const staleBefore = new Date(Date.now() - staleMs).toISOString();
    // The row is locked (FOR UPDATE) from the look to the change: of two hosts claiming at once, the
    // second waits, then sees the first one's claim.
    const taken = await this.transaction(`claiming item ${id}`, async (q) => {
      const rows = await q('SELECT * FROM items WHERE id = $1 FOR UPDATE', [id]);
      const r = rows[0];
      if (!r) return undefined;
      const claimable = r.status === 'held' || (r.status === 'releasing' && deadClaim(r, staleBefore, holder));
      if (!claimable) return undefined;
      const before = r.status === 'held' ? { at: opt(r.status_at), by: opt(r.status_by) } : undefined;
      await q("UPDATE items SET status = 'releasing', claim = $1, claim_at = $2, status_at = $2, status_by = $3, claim_host = $4, claim_pid = $5 WHERE id = $6", [
        token,
        now,
        actor.who,
        holder?.host ?? null,
        holder?.pid ?? null,
        id,
      ]);
      return { row: { ...r, status: 'releasing', status_at: now, status_by: actor.who, claim_host: holder?.host ?? null, claim_pid: holder?.pid ?? null }, before };
    });
    if (!taken) return undefined;
    const item = toItem(taken.row);
    let done = false;
    return {
      item,
      finish: async (status, detail) => {
        if (done) return;
        if (status !== 'released' && status !== 'deleted' && status !== 'expired') throw new TypeError(`not a final status: ${JSON.stringify(status)}`);
        await this.transaction(`recording the ${action} of item ${id}`, async (q, changes) => {
          const at = new Date().toISOString();
          const n = await changes('UPDATE items SET status = $1, status_at = $2, status_by = $3, claim = NULL, claim_at = NULL, claim_host = NULL, claim_pid = NULL WHERE id = $4 AND claim = $5', [
            status,
            at,
            actor.who,
            id,
            token,
          ]);
          if (n !== 1) throw new StoreError(`the claim on item ${id} was lost (another process took it over as stale)`);
          // Done with: its bytes are no longer anyone's to act on.
          await q('DELETE FROM item_messages WHERE id = $1', [id]);
          await q('INSERT INTO audit (at, who, origin, action, item, detail) VALUES ($1, $2, $3, $4, $5, $6)', [at, actor.who, actor.from, action, id, detail ?? null]);
        });
        done = true;
      },
      abandon: async () => {
        if (done) return;
        await this.changes(`giving back item ${id}`, "UPDATE items SET status = 'held', claim = NULL, claim_at = NULL, claim_host = NULL, claim_pid = NULL, status_at = $1, status_by = $2 WHERE id = $3 AND claim = $4", [
          taken.before?.at ?? null,
          taken.before?.by ?? null,
          id,
          token,
        ]);
        done = true;
      },
    };
  }

  async expiredItems(before: string, limit = 1000): Promise<readonly QuarantineItem[]> {
    const b = iso(before, 'before');
    return (await this.query('looking for expired items', `SELECT * FROM items WHERE status = 'held' AND date < $1 ORDER BY date COLLATE "C" ASC, id COLLATE "C" ASC LIMIT $2`, [b, limit])).map(toItem);
  }

  async getPreferences(owner: string): Promise<Preferences> {
    const rows = await this.query(`reading the preferences of ${owner}`, 'SELECT digest, language FROM preferences WHERE owner = $1', [owner.toLowerCase()]);
    return rows[0] ? preferencesOf(rows[0].digest, rows[0].language) : DEFAULT_PREFERENCES;
  }

  async setPreferences(owner: string, prefs: Partial<Preferences>): Promise<void> {
    if (prefs.digest !== undefined && !CADENCES.includes(prefs.digest)) throw new TypeError(`not a digest cadence: ${JSON.stringify(prefs.digest)} (${CADENCES.join(', ')})`);
    if (prefs.language !== undefined && !LANGUAGE.test(prefs.language)) throw new TypeError(`not a language tag: ${JSON.stringify(prefs.language.slice(0, 40))}`);
    const o = owner.toLowerCase();
    await this.transaction(`saving the preferences of ${o}`, async (q) => {
      const rows = await q('SELECT digest, language FROM preferences WHERE owner = $1 FOR UPDATE', [o]);
      const cur = rows[0] ? preferencesOf(rows[0].digest, rows[0].language) : DEFAULT_PREFERENCES;
      // Saving only a language chooses no cadence: the site's stays in force.
      await q('INSERT INTO preferences (owner, digest, language) VALUES ($1, $2, $3) ON CONFLICT (owner) DO UPDATE SET digest = EXCLUDED.digest, language = EXCLUDED.language', [
        o,
        prefs.digest ?? cur.digest ?? SITE_CADENCE,
        prefs.language ?? cur.language,
      ]);
    });
  }

  async digestCandidates(): Promise<readonly { readonly owner: string; readonly cadence?: DigestCadence; readonly lastSent?: string; readonly newSince?: string }[]> {
    const rows = await this.query(
      'looking for digest candidates',
      `SELECT i.owner AS owner, p.digest AS digest, d.last_sent AS last_sent, MIN(i.date COLLATE "C") AS new_since
       FROM items i LEFT JOIN preferences p ON p.owner = i.owner LEFT JOIN digests d ON d.owner = i.owner
       WHERE i.status = 'held' AND (d.up_to IS NULL OR i.date COLLATE "C" > d.up_to)
       GROUP BY i.owner, p.digest, d.last_sent ORDER BY i.owner COLLATE "C"`,
    );
    return rows.map((r) => ({
      owner: String(r.owner),
      ...(storedCadence(r.digest) === undefined ? {} : { cadence: storedCadence(r.digest) }),
      ...(r.last_sent === null ? {} : { lastSent: String(r.last_sent) }),
      ...(r.new_since === null ? {} : { newSince: String(r.new_since) }),
    }));
  }

  async markDigestSent(owner: string, at: string, upTo: string): Promise<void> {
    const a = iso(at, 'at');
    const u = iso(upTo, 'upTo');
    await this.query(
      `recording the digest of ${owner}`,
      'INSERT INTO digests (owner, last_sent, up_to) VALUES ($1, $2, $3) ON CONFLICT (owner) DO UPDATE SET last_sent = EXCLUDED.last_sent, up_to = EXCLUDED.up_to',
      [owner.toLowerCase(), a, u],
    );
  }

  async takeLease(name: string, holder: string, ms: number): Promise<boolean> {
    const now = new Date();
    const until = new Date(now.getTime() + ms).toISOString();
    // One statement: of several hosts at once, the row lock lets one in; the others see its lease.
    const rows = await this.query(
      `taking the lease ${name}`,
      `INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
       WHERE leases.holder = EXCLUDED.holder OR leases.until COLLATE "C" <= $4
       RETURNING holder`,
      [name, holder, until, now.toISOString()],
    );
    return rows.length === 1;
  }

  async dropLease(name: string, holder: string): Promise<void> {
    await this.query(`giving back the lease ${name}`, 'DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
  }

  async siteSecret(name: string, candidate: Buffer): Promise<Buffer> {
    return this.transaction(`reading the secret ${name}`, async (q) => {
      await q('INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, candidate]);
      return (await q('SELECT value FROM secrets WHERE name = $1', [name]))[0]!.value as Buffer;
    });
  }

  async useToken(token: string, expires: string): Promise<boolean> {
    const e = iso(expires, 'expires');
    return this.transaction('using a link token', async (q, changes) => {
      await q('DELETE FROM tokens WHERE expires < $1', [new Date().toISOString()]);
      return (await changes('INSERT INTO tokens (token, expires) VALUES ($1, $2) ON CONFLICT (token) DO NOTHING', [token, e])) === 1;
    });
  }

  async audit(entry: AuditEntry): Promise<void> {
    const at = iso(entry.at, 'audit time');
    await this.query(`writing the audit log (${entry.action})`, 'INSERT INTO audit (at, who, origin, action, item, detail) VALUES ($1, $2, $3, $4, $5, $6)', [
      at,
      entry.who,
      entry.from,
      entry.action,
      entry.item ?? null,
      entry.detail ?? null,
    ]);
  }

  async auditLog(query: AuditQuery = {}): Promise<readonly AuditEntry[]> {
    const where: string[] = [];
    const args: (string | number | null)[] = [];
    if (query.item !== undefined) {
      args.push(query.item);
      where.push(`item = $${args.length}`);
    }
    if (query.who !== undefined) {
      args.push(query.who);
      where.push(`who = $${args.length}`);
    }
    args.push(query.limit ?? null);
    const rows = await this.query('reading the audit log', `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${args.length}`, args);
    return rows.map((r) => ({
      at: String(r.at),
      who: String(r.who),
      from: String(r.origin),
      action: String(r.action),
      ...(r.item === null ? {} : { item: String(r.item) }),
      ...(r.detail === null ? {} : { detail: String(r.detail) }),
    }));
  }

  async learnedClass(key: LearnedKey): Promise<LearnClass | undefined> {
    checkKey(key);
    const rows = await this.query('reading what was learned', 'SELECT class FROM learned WHERE digest = $1 AND learner_user = $2 AND learner = $3', [key.digest, key.user.toLowerCase(), key.learner]);
    return rows[0] ? (String(rows[0].class) as LearnClass) : undefined;
  }

  async markLearned(entry: LearnedEntry): Promise<void> {
    checkKey(entry);
    if (!CLASSES.includes(entry.class)) throw new TypeError(`not a learning class: ${JSON.stringify(entry.class)} (spam, ham)`);
    const at = iso(entry.at, 'learned at');
    await this.query(
      'recording what was learned',
      `INSERT INTO learned (digest, learner_user, learner, class, at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (digest, learner_user, learner) DO UPDATE SET class = EXCLUDED.class, at = EXCLUDED.at`,
      [entry.digest, entry.user.toLowerCase(), entry.learner, entry.class, at],
    );
  }

  async learnedCounts(user?: string): Promise<readonly { readonly learner: string; readonly class: LearnClass; readonly count: number }[]> {
    const rows =
      user === undefined
        ? await this.query('counting what was learned', 'SELECT learner, class, COUNT(*) AS n FROM learned GROUP BY learner, class ORDER BY learner COLLATE "C", class COLLATE "C"')
        : await this.query('counting what was learned', 'SELECT learner, class, COUNT(*) AS n FROM learned WHERE learner_user = $1 GROUP BY learner, class ORDER BY learner COLLATE "C", class COLLATE "C"', [user.toLowerCase()]);
    return rows.map((r) => ({ learner: String(r.learner), class: String(r.class) as LearnClass, count: Number(r.n) }));
  }

  // ---- Lists (the SQL is in postgres-lists.ts)

  private poolSql(doing: string): Sql {
    return (sql, values = []) => this.query(doing, sql, values);
  }

  async putListEntry(entry: NewListEntry): Promise<{ readonly entry: ListEntry; readonly replaced?: ListEntry }> {
    const at = new Date().toISOString();
    return this.transaction('adding a list entry', (q) => putEntry(q as Sql, entry, at));
  }

  async putListEntries(entries: readonly NewListEntry[]): Promise<number> {
    const at = new Date().toISOString();
    return this.transaction(`adding ${entries.length} list entries`, async (q) => {
      let added = 0;
      for (const e of entries) if (!(await putEntry(q as Sql, e, at)).replaced) added++;
      return added;
    });
  }

  async getListEntry(id: string): Promise<ListEntry | undefined> {
    return getEntry(this.poolSql('reading a list entry'), id);
  }

  async deleteListEntry(id: string, holder?: ListHolder): Promise<ListEntry | undefined> {
    return this.transaction('removing a list entry', (q) => deleteEntry(q as Sql, id, holder));
  }

  async findListEntries(query: ListQuery): Promise<{ readonly entries: readonly ListEntry[]; readonly total: number }> {
    return findEntries(this.poolSql('listing list entries'), query);
  }

  async matchListEntries(probe: ListProbe): Promise<readonly ListEntry[]> {
    return matchEntries(this.poolSql('looking up the lists'), probe);
  }

  // ---- Rollups (the SQL is in postgres-rollups.ts)

  /** The store's statements and transactions (each failure a StoreError), for the SQL kept in a file of its own. */
  private get rollupAccess(): rollups.PgAccess {
    return { read: (doing, sql, values) => this.query(doing, sql, values), write: (doing, work) => this.transaction(doing, (q) => work(q)) };
  }

  async addRollups(rows: readonly RollupRow[]): Promise<void> {
    await rollups.addRollups(this.rollupAccess, rows);
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

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    if (!pool) return;
    try {
      await pool.end();
    } catch (err) {
      throw this.fail(err, 'closing it');
    }
  }
}
