// The allow and block lists in the PostgreSQL store: the same rows and the same lookups as the SQLite
// engine (src/store/sqlite-lists.ts): one indexed IN query over the few keys a message can match, and
// the prefix lengths in use kept in a small table. Several hosts may change a list at the same moment:
// changes to one list are serialised by a transaction lock on it, the prefix counts by the database.

import { randomBytes } from 'node:crypto';

import { entryKey, holderKey, networkShape, probeKeys, storedShape } from '../lists/entry.js';
import { checkEntry, toEntry } from './list-rows.js';
import type { ListEntry, ListHolder, ListProbe, ListQuery, NewListEntry } from './types.js';

export const LISTS_SCHEMA = `CREATE TABLE list_entries (
     seq BIGSERIAL,
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

type Row = Record<string, unknown>;
type Value = string | number | null | readonly string[];
/** One statement inside the caller's transaction (or on the pool). */
export type Sql = (sql: string, values?: readonly Value[]) => Promise<Row[]>;

/** Insert or replace one entry; inside a transaction. */
export async function putEntry(q: Sql, e: NewListEntry, at: string): Promise<{ entry: ListEntry; replaced?: ListEntry }> {
  checkEntry(e);
  const holder = holderKey(e);
  const key = entryKey(e.kind, e.value);
  // One change to a list at a time, on every host: the look and the change stay together.
  await q('SELECT pg_advisory_xact_lock(hashtext($1))', [`nqqueue list ${holder}`]);
  const [old] = await q('SELECT * FROM list_entries WHERE holder = $1 AND match_key = $2', [holder, key]);
  const skip = e.skip === undefined ? null : JSON.stringify([...e.skip]);
  const note = e.note ?? null;
  if (old) {
    await q('UPDATE list_entries SET action = $1, skip = $2, note = $3, added = $4, added_by = $5 WHERE id = $6', [e.action, skip, note, at, e.by, String(old.id)]);
    return { entry: toEntry({ ...old, action: e.action, skip, note, added: at, added_by: e.by }), replaced: toEntry(old) };
  }
  const id = randomBytes(8).toString('hex');
  await q('INSERT INTO list_entries (id, holder, scope, owner, action, kind, value, match_key, skip, note, added, added_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)', [
    id,
    holder,
    e.scope,
    e.owner,
    e.action,
    e.kind,
    e.value,
    key,
    skip,
    note,
    at,
    e.by,
  ]);
  if (e.kind === 'network') {
    const { family, prefix } = networkShape(e.value);
    await q('INSERT INTO list_prefixes (family, prefix, entries) VALUES ($1, $2, 1) ON CONFLICT (family, prefix) DO UPDATE SET entries = list_prefixes.entries + 1', [family, prefix]);
  }
  return { entry: { ...e, ...(e.skip === undefined ? {} : { skip: [...e.skip] }), id, added: at } };
}

export async function getEntry(q: Sql, id: string): Promise<ListEntry | undefined> {
  const [row] = await q('SELECT * FROM list_entries WHERE id = $1', [String(id)]);
  return row ? toEntry(row) : undefined;
}

/** Remove one entry (of `holder`'s list only, when given); inside a transaction. */
export async function deleteEntry(q: Sql, id: string, holder?: ListHolder): Promise<ListEntry | undefined> {
  const [row] = await q('SELECT * FROM list_entries WHERE id = $1 FOR UPDATE', [String(id)]);
  if (!row) return undefined;
  if (holder && String(row.holder) !== holderKey(holder)) return undefined;
  await q('DELETE FROM list_entries WHERE id = $1', [String(id)]);
  if (String(row.kind) === 'network') {
    const { family, prefix } = storedShape(String(row.match_key), String(row.value));
    await q('UPDATE list_prefixes SET entries = entries - 1 WHERE family = $1 AND prefix = $2', [family, prefix]);
    await q('DELETE FROM list_prefixes WHERE family = $1 AND prefix = $2 AND entries <= 0', [family, prefix]);
  }
  return toEntry(row);
}

export async function findEntries(q: Sql, query: ListQuery): Promise<{ entries: ListEntry[]; total: number }> {
  const where: string[] = [];
  const args: Value[] = [];
  const arg = (v: Value): string => {
    args.push(v);
    return `$${args.length}`;
  };
  if (query.scope !== undefined) {
    where.push(`scope = ${arg(query.scope)}`);
    if (query.owner !== undefined) where.push(`owner = ${arg(query.owner)}`);
  }
  if (query.action !== undefined) where.push(`action = ${arg(query.action)}`);
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const limit = Math.max(0, Math.min(query.limit ?? 1_000_000, 1_000_000));
  const offset = Math.max(0, query.offset ?? 0);
  const total = Number((await q(`SELECT count(*) AS n FROM list_entries ${w}`, [...args]))[0]!.n);
  const rows = await q(`SELECT * FROM list_entries ${w} ORDER BY scope COLLATE "C", owner COLLATE "C", added COLLATE "C", seq LIMIT ${arg(limit)} OFFSET ${arg(offset)}`, args);
  return { entries: rows.map(toEntry), total };
}

export async function matchEntries(q: Sql, p: ListProbe): Promise<ListEntry[]> {
  if (p.holders.length === 0) return [];
  const prefixes =
    p.ip === undefined || p.ip === '' ? [] : (await q('SELECT family, prefix FROM list_prefixes WHERE entries > 0')).map((r) => ({ family: Number(r.family) as 4 | 6, prefix: Number(r.prefix) }));
  const keys = probeKeys(p.sender, p.ip, prefixes);
  if (keys.length === 0) return [];
  const holders = p.holders.map(holderKey);
  // Arrays as parameters: one statement whatever the number of keys.
  return (await q("SELECT * FROM list_entries WHERE match_key = ANY($1::text[]) AND holder = ANY($2::text[])", [keys, holders])).map(toEntry);
}
