// The allow and block lists in the SQLite store. One row per entry, keyed by its list (holder) and its
// lookup key (src/lists/entry.ts): a message is matched with one indexed IN query over the few keys it
// can match, never a scan of a list. Networks are found by the prefix lengths in use (a small table kept
// in the same transactions), so a client address is looked up only under the lengths some entry has.

import { randomBytes } from 'node:crypto';

import type { SQLInputValue, StatementSync } from 'node:sqlite';

import { entryKey, holderKey, networkShape, probeKeys, storedShape } from '../lists/entry.js';
import { checkEntry, toEntry } from './list-rows.js';
import type { ListEntry, ListHolder, ListProbe, ListQuery, NewListEntry } from './types.js';

/** The schema of the lists: one migration string (appended to the store's MIGRATIONS). */
export const LISTS_MIGRATION = `CREATE TABLE list_entries (
     id TEXT PRIMARY KEY,
     holder TEXT NOT NULL,
     scope TEXT NOT NULL,
     owner TEXT NOT NULL,
     action TEXT NOT NULL,
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     match_key TEXT NOT NULL,
     skip TEXT,
     note TEXT,
     added TEXT NOT NULL,
     added_by TEXT NOT NULL,
     UNIQUE (holder, match_key)
   );
   CREATE INDEX list_entries_key ON list_entries (match_key, holder);
   CREATE INDEX list_entries_scope ON list_entries (scope, owner, added);
   CREATE TABLE list_prefixes (family INTEGER NOT NULL, prefix INTEGER NOT NULL, entries INTEGER NOT NULL, PRIMARY KEY (family, prefix));`;

/** What the lists need of the store: its statements and its transactions (errors become StoreErrors). */
export interface SqliteAccess {
  stmt(sql: string): StatementSync;
  write<T>(doing: string, work: () => T): T;
  read<T>(doing: string, work: () => T): T;
}

type Row = Record<string, SQLInputValue>;

export class SqliteLists {
  constructor(private readonly db: SqliteAccess) {}

  /** Insert or replace one entry; inside a write transaction. */
  private put(e: NewListEntry, at: string): { entry: ListEntry; replaced?: ListEntry } {
    checkEntry(e);
    const holder = holderKey(e);
    const key = entryKey(e.kind, e.value);
    const old = this.db.stmt('SELECT * FROM list_entries WHERE holder = ? AND match_key = ?').get(holder, key) as Row | undefined;
    const skip = e.skip === undefined ? null : JSON.stringify([...e.skip]);
    const note = e.note ?? null;
    if (old) {
      this.db.stmt('UPDATE list_entries SET action = ?, skip = ?, note = ?, added = ?, added_by = ? WHERE id = ?').run(e.action, skip, note, at, e.by, String(old.id));
      const replaced = toEntry(old);
      return { entry: toEntry({ ...old, action: e.action, skip, note, added: at, added_by: e.by }), replaced };
    }
    const id = randomBytes(8).toString('hex');
    this.db
      .stmt('INSERT INTO list_entries (id, holder, scope, owner, action, kind, value, match_key, skip, note, added, added_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(id, holder, e.scope, e.owner, e.action, e.kind, e.value, key, skip, note, at, e.by);
    if (e.kind === 'network') {
      const { family, prefix } = networkShape(e.value);
      this.db.stmt('INSERT INTO list_prefixes (family, prefix, entries) VALUES (?, ?, 1) ON CONFLICT (family, prefix) DO UPDATE SET entries = entries + 1').run(family, prefix);
    }
    return { entry: { ...e, ...(e.skip === undefined ? {} : { skip: [...e.skip] }), id, added: at } };
  }

  putListEntry(e: NewListEntry): { entry: ListEntry; replaced?: ListEntry } {
    const at = new Date().toISOString();
    return this.db.write(`adding a list entry for ${holderKey(e)}`, () => this.put(e, at));
  }

  putListEntries(entries: readonly NewListEntry[]): number {
    const at = new Date().toISOString();
    return this.db.write(`adding ${entries.length} list entries`, () => entries.reduce((n, e) => n + (this.put(e, at).replaced ? 0 : 1), 0));
  }

  getListEntry(id: string): ListEntry | undefined {
    const row = this.db.read('reading a list entry', () => this.db.stmt('SELECT * FROM list_entries WHERE id = ?').get(String(id)) as Row | undefined);
    return row ? toEntry(row) : undefined;
  }

  deleteListEntry(id: string, holder?: ListHolder): ListEntry | undefined {
    return this.db.write('removing a list entry', () => {
      const row = this.db.stmt('SELECT * FROM list_entries WHERE id = ?').get(String(id)) as Row | undefined;
      if (!row) return undefined;
      if (holder && String(row.holder) !== holderKey(holder)) return undefined;
      this.db.stmt('DELETE FROM list_entries WHERE id = ?').run(String(id));
      if (String(row.kind) === 'network') {
        const { family, prefix } = storedShape(String(row.match_key), String(row.value));
        this.db.stmt('UPDATE list_prefixes SET entries = entries - 1 WHERE family = ? AND prefix = ?').run(family, prefix);
        this.db.stmt('DELETE FROM list_prefixes WHERE family = ? AND prefix = ? AND entries <= 0').run(family, prefix);
      }
      return toEntry(row);
    });
  }

  findListEntries(q: ListQuery): { entries: ListEntry[]; total: number } {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (q.scope !== undefined) {
      where.push('scope = ?');
      args.push(q.scope);
      if (q.owner !== undefined) {
        where.push('owner = ?');
        args.push(q.owner);
      }
    }
    if (q.action !== undefined) {
      where.push('action = ?');
      args.push(q.action);
    }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const limit = Math.max(0, Math.min(q.limit ?? 1_000_000, 1_000_000));
    const offset = Math.max(0, q.offset ?? 0);
    return this.db.read('listing list entries', () => {
      const total = Number((this.db.stmt(`SELECT count(*) AS n FROM list_entries ${w}`).get(...args) as Row).n);
      const rows = this.db.stmt(`SELECT * FROM list_entries ${w} ORDER BY scope, owner, added, rowid LIMIT ? OFFSET ?`).all(...args, limit, offset) as Row[];
      return { entries: rows.map(toEntry), total };
    });
  }

  matchListEntries(p: ListProbe): ListEntry[] {
    if (p.holders.length === 0) return [];
    return this.db.read('looking up the lists', () => {
      const prefixes =
        p.ip === undefined || p.ip === ''
          ? []
          : (this.db.stmt('SELECT family, prefix FROM list_prefixes WHERE entries > 0').all() as Row[]).map((r) => ({ family: Number(r.family) as 4 | 6, prefix: Number(r.prefix) }));
      const keys = probeKeys(p.sender, p.ip, prefixes);
      if (keys.length === 0) return [];
      const holders = p.holders.map(holderKey);
      const sql = `SELECT * FROM list_entries WHERE match_key IN (${keys.map(() => '?').join(',')}) AND holder IN (${holders.map(() => '?').join(',')})`;
      return (this.db.stmt(sql).all(...keys, ...holders) as Row[]).map(toEntry);
    });
  }
}
