// The SQLite side of what learning remembers: one row per message digest, user and learner, holding
// the class it was last taught as. Thin SQL only; SqliteStore wraps each call in its read/write helpers.

import type { SQLInputValue } from 'node:sqlite';

import { checkKey, CLASSES } from './learned.js';
import type { LearnClass, LearnedEntry, LearnedKey } from './types.js';

export const LEARNED_MIGRATION = `CREATE TABLE learned (
     digest TEXT NOT NULL,
     user TEXT NOT NULL,
     learner TEXT NOT NULL,
     class TEXT NOT NULL,
     at TEXT NOT NULL,
     PRIMARY KEY (digest, user, learner)
   );
   CREATE INDEX learned_user ON learned (user);`;


type Prepare = (sql: string) => { get(...a: SQLInputValue[]): unknown; all(...a: SQLInputValue[]): unknown[]; run(...a: SQLInputValue[]): unknown };


export function learnedClass(stmt: Prepare, key: LearnedKey): LearnClass | undefined {
  checkKey(key);
  const r = stmt('SELECT class FROM learned WHERE digest = ? AND user = ? AND learner = ?').get(key.digest, key.user.toLowerCase(), key.learner) as
    | { class: string }
    | undefined;
  return r ? (r.class as LearnClass) : undefined;
}

export function markLearned(stmt: Prepare, entry: LearnedEntry, at: string): void {
  checkKey(entry);
  if (!CLASSES.includes(entry.class)) throw new TypeError(`not a learning class: ${JSON.stringify(entry.class)} (spam, ham)`);
  stmt('INSERT OR REPLACE INTO learned (digest, user, learner, class, at) VALUES (?, ?, ?, ?, ?)').run(entry.digest, entry.user.toLowerCase(), entry.learner, entry.class, at);
}

export function learnedCounts(stmt: Prepare, user: string | undefined): { learner: string; class: LearnClass; count: number }[] {
  const rows =
    user === undefined
      ? stmt('SELECT learner, class, COUNT(*) AS n FROM learned GROUP BY learner, class ORDER BY learner, class').all()
      : stmt('SELECT learner, class, COUNT(*) AS n FROM learned WHERE user = ? GROUP BY learner, class ORDER BY learner, class').all(user.toLowerCase());
  return (rows as { learner: string; class: string; n: number }[]).map((r) => ({ learner: String(r.learner), class: r.class as LearnClass, count: Number(r.n) }));
}

