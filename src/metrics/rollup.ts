// The rollup writer: reads the journal from where it last stopped, adds its records to the store's
// per-minute rollups in one transaction (with the gauges sampled now), then records how far it got,
// removes the hours it has read whole, and prunes rollups older than metrics_history. `nqqueue serve`
// and `nqqueue web` both run it; a lock file keeps one pass at a time per home.
//
// Kill -9 loses nothing and counts nothing twice. The journal holds every answered message until a
// pass has committed its rows; a pass saves the positions it is about to reach as `pending` (with a
// sequence number) before it writes, and its rows carry a gauge `journal_mark` of this host with that
// number, in the same transaction. Killed before the commit, the store has no such mark: the next pass
// reads from the old positions again. Killed after it, the mark is there: the next pass starts from the
// pending positions. Either way each record is in the rollups exactly once.

import { closeSync, constants, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { isAlive, syncDir } from '../intake/files.js';
import { journalDir, readJournal, segmentEnd, segments, type Positions } from './journal.js';
import { minuteOf, RowSet } from './rollup-rows.js';
import type { Store } from '../store/types.js';

export const STATE_FILE = 'rollup.state';
const LOCK = 'rollup.lock';
/** An hour's segment is removed once read whole and this long after the hour ended (a writer late by this much appends to a new file of that name, which is read from its start). */
export const SEGMENT_GRACE_MS = 10 * 60_000;
const PRUNE_EVERY_MS = 3_600_000;

export type RollupStore = Pick<Store, 'addRollups' | 'pruneRollups' | 'rollupGaugeLatest'>;

/** The series of the pass marks (a gauge: its value is the sequence number of the pass that wrote it). */
export const MARK_SERIES = 'journal_mark';

export interface Gauges {
  readonly spool_items?: number;
  readonly spool_oldest_s?: number;
  readonly quarantine_items?: number;
  readonly in_flight?: number;
}

interface State {
  positions: Positions;
  seq: number;
  pending?: { seq: number; minute: string; positions: Positions };
}

function positionsOf(o: unknown): Positions {
  const out: Positions = new Map();
  if (!o || typeof o !== 'object') return out;
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && v >= 0 && !Number.isNaN(segmentEnd(k))) out.set(k, v);
  return out;
}

function readState(dir: string): State {
  let o: { positions?: unknown; seq?: unknown; pending?: { seq?: unknown; minute?: unknown; positions?: unknown } };
  try {
    o = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as typeof o;
  } catch {
    return { positions: new Map(), seq: 0 };
  }
  const p = o.pending;
  const pending =
    p && typeof p.seq === 'number' && typeof p.minute === 'string' && !Number.isNaN(Date.parse(p.minute)) ? { seq: p.seq, minute: p.minute, positions: positionsOf(p.positions) } : undefined;
  return { positions: positionsOf(o.positions), seq: typeof o.seq === 'number' ? o.seq : 0, pending };
}

function writeState(dir: string, state: State): void {
  const tmp = join(dir, `${STATE_FILE}.${process.pid}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  const json = {
    positions: Object.fromEntries(state.positions),
    seq: state.seq,
    pending: state.pending && { ...state.pending, positions: Object.fromEntries(state.pending.positions) },
  };
  try {
    writeSync(fd, JSON.stringify(json));
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
      const store = await this.o.store();
      const state = await this.settle(dir, store, readState(dir));
      const { records, positions } = readJournal(this.o.home, state.positions);
      const rows = new RowSet(this.o.host);
      for (const r of records) rows.record(r);
      const minute = minuteOf(now);
      const g = await this.o.gauges().catch(() => ({}) as Gauges);
      for (const [series, value] of Object.entries(g)) if (typeof value === 'number' && Number.isFinite(value)) rows.gauge(minute, series, value);
      if (records.length > 0) {
        const seq = state.seq + 1;
        rows.gauge(minute, MARK_SERIES, seq);
        writeState(dir, { positions: state.positions, seq: state.seq, pending: { seq, minute, positions } });
        await store.addRollups(rows.list());
        writeState(dir, { positions, seq });
      } else {
        // Gauges alone: writing them twice changes nothing.
        if (rows.size > 0) await store.addRollups(rows.list());
        writeState(dir, { positions, seq: state.seq });
      }
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

  /** A pass that was killed after saving its pending positions: did its rows reach the store? */
  private async settle(dir: string, store: RollupStore, state: State): Promise<State> {
    const p = state.pending;
    if (!p) return state;
    const after = new Date(Date.parse(p.minute) + 60_000).toISOString();
    const marks = await store.rollupGaugeLatest({ series: MARK_SERIES, since: p.minute, before: after, host: this.o.host });
    const done = marks.some((m) => m.value === p.seq);
    const settled: State = done ? { positions: p.positions, seq: p.seq } : { positions: state.positions, seq: p.seq };
    writeState(dir, settled);
    this.o.log(`the last pass was cut off ${done ? 'after' : 'before'} its rows were stored: ${done ? 'they are kept' : 'they are rolled up again'}`);
    return settled;
  }
}
