// The rollup writer: reads the journal from where it last stopped, adds its records to the store's
// per-minute rollups in one transaction (with the gauges sampled now), then records how far it got,
// removes the hours it has read whole, and prunes rollups older than metrics_history. `nqqueue serve`
// and `nqqueue web` both run it; a lock file keeps one pass at a time per home.
//
// Kill -9 loses nothing: the journal holds every answered message until a pass has both committed its
// rows and saved its positions (fsynced, renamed into place); a pass cut off before the save is done
// again from the old positions by the next one.

import { closeSync, constants, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { isAlive, syncDir } from '../intake/files.js';
import { journalDir, readJournal, segmentEnd, segments, type Positions } from './journal.js';
import { minuteOf, RowSet } from './rollup-rows.js';
import type { RollupRow } from './rollup-types.js';

export const STATE_FILE = 'rollup.state';
const LOCK = 'rollup.lock';
/** An hour's segment is removed once read whole and this long after the hour ended (a writer late by this much appends to a new file of that name, which is read from its start). */
export const SEGMENT_GRACE_MS = 10 * 60_000;
const PRUNE_EVERY_MS = 3_600_000;

export interface RollupStore {
  addRollups(rows: readonly RollupRow[]): Promise<void>;
  pruneRollups(before: string): Promise<number>;
}

export interface Gauges {
  readonly spool_items?: number;
  readonly spool_oldest_s?: number;
  readonly quarantine_items?: number;
  readonly in_flight?: number;
}

interface State {
  positions: Record<string, number>;
}

function readState(dir: string): Positions {
  try {
    const s = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as State;
    const out: Positions = new Map();
    for (const [k, v] of Object.entries(s.positions ?? {})) if (typeof v === 'number' && v >= 0 && !Number.isNaN(segmentEnd(k))) out.set(k, v);
    return out;
  } catch {
    return new Map();
  }
}

function writeState(dir: string, positions: Positions): void {
  const tmp = join(dir, `${STATE_FILE}.${process.pid}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, JSON.stringify({ positions: Object.fromEntries(positions) } satisfies State));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, STATE_FILE));
  syncDir(dir);
}

/** One pass at a time per home: a file naming the pass's process, linked into place whole. */
function takeLock(dir: string): (() => void) | undefined {
  const path = join(dir, LOCK);
  const mine = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = openSync(mine, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(mine, path);
        return () => rmSync(path, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let pid = 0;
      try {
        pid = Number.parseInt(readFileSync(path, 'latin1'), 10) || 0;
        // A pass takes a fraction of a second: a lock a minute old is a dead pass's (its PID reused).
        if (Date.now() - statSync(path).mtimeMs > 60_000) pid = 0;
      } catch {
        continue;
      }
      if (pid > 0 && isAlive(pid)) return undefined;
      rmSync(path, { force: true });
    }
    return undefined;
  } finally {
    rmSync(mine, { force: true });
  }
}

export interface RollupWriterOptions {
  readonly home: string;
  readonly host: string;
  readonly store: () => Promise<RollupStore>;
  readonly gauges: () => Promise<Gauges>;
  readonly historyMs: number;
  readonly log: (line: string) => void;
}

export class RollupWriter {
  private lastPrune = 0;

  constructor(private readonly o: RollupWriterOptions) {}

  /** One pass; resolves to the number of records rolled up (0 when another process holds the lock). */
  async pass(now = Date.now()): Promise<number> {
    const dir = journalDir(this.o.home);
    try {
      statSync(dir);
    } catch {
      return 0; // nothing was ever counted here
    }
    const release = takeLock(dir);
    if (!release) return 0;
    try {
      const before = readState(dir);
      const { records, positions } = readJournal(this.o.home, before);
      const rows = new RowSet(this.o.host);
      for (const r of records) rows.record(r);
      const minute = minuteOf(now);
      const g = await this.o.gauges().catch(() => ({}) as Gauges);
      for (const [series, value] of Object.entries(g)) if (typeof value === 'number' && Number.isFinite(value)) rows.gauge(minute, series, value);
      const store = await this.o.store();
      if (rows.size > 0) await store.addRollups(rows.list());
      writeState(dir, positions);
      // Hours read whole, and over for a while, are removed.
      for (const name of segments(this.o.home)) {
        const end = segmentEnd(name);
        if (now - end < SEGMENT_GRACE_MS) continue;
        try {
          if (statSync(join(dir, name)).size === positions.get(name)) rmSync(join(dir, name), { force: true });
        } catch {
          // gone
        }
      }
      if (now - this.lastPrune >= PRUNE_EVERY_MS) {
        this.lastPrune = now;
        const n = await store.pruneRollups(minuteOf(now - this.o.historyMs));
        if (n > 0) this.o.log(`pruned ${n} rollup row${n === 1 ? '' : 's'} older than metrics_history`);
      }
      return records.length;
    } finally {
      release();
    }
  }
}
