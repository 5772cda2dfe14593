// The journal: one line per message appended to a file of the hour under $NQQUEUE_HOME/metrics/, by the
// standalone program and by the daemon alike. An append is one write(2) on a file opened O_APPEND, so
// lines of concurrent writers never interleave and a process killed at any instant leaves either its
// whole line or none; the line is written before the exit code is given, so every message qmail saw
// answered is in it. Readers (the daemon's registry, the rollup writer) keep their own positions and
// take whole lines only; a line that does not parse (cut by a power loss) is skipped.

import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { ensurePrivateDir } from '../intake/workdir.js';
import { decodeRecord, encodeRecord, type MessageRecord } from './record.js';

export const JOURNAL_DIR = 'metrics';
const PREFIX = 'journal-';
/** A line longer than this is not a record (a reader skips it). */
export const LINE_MAX = 64 * 1024;

// Times as UTC text without Date.prototype.toISOString: V8 works out the local time zone's offset for
// every toISOString, which loads ICU's time zone code and data (about 1 MB resident) into a process
// that never needs local time (this runs for every message). The getUTC* accessors do not.

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The same text as `new Date(t).toISOString()`: '2026-12-02T10:07:00.000Z'. */
export function isoUtc(t: number): string {
  const d = new Date(t);
  const y = d.getUTCFullYear();
  // Outside four-digit years toISOString writes an expanded year (and throws for an invalid time).
  if (!(y >= 0 && y <= 9999)) return d.toISOString();
  return `${pad(y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** 'YYYYMMDDHH' of a time, in UTC. */
export function utcHour(t: number): string {
  const d = new Date(t);
  const y = d.getUTCFullYear();
  if (!(y >= 0 && y <= 9999)) return d.toISOString().slice(0, 13).replace(/[-T]/g, '');
  return `${pad(y, 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}`;
}

/** The file of the hour a record of time `t` goes to: journal-YYYYMMDDHH (UTC). */
export function segmentName(t: number): string {
  return `${PREFIX}${utcHour(t)}`;
}

/** When the hour of a segment ends, ms since the epoch (NaN for a name that is not a segment's). */
export function segmentEnd(name: string): number {
  const m = /^journal-(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(name);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4])) + 3_600_000;
}

export function journalDir(home: string): string {
  return join(home, JOURNAL_DIR);
}

const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

function openSegment(dir: string, t: number): number {
  try {
    return openSync(join(dir, segmentName(t)), FLAGS, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // The home too, as the working directory would be: 0700, this process's own.
    ensurePrivateDir(dir);
    return openSync(join(dir, segmentName(t)), FLAGS, 0o600);
  }
}

/**
 * Append one record (the standalone program: open, one write, close — about 20 µs). Never throws: a
 * message is never deferred over its statistics; false says the record could not be written.
 */
export function appendRecord(home: string, record: MessageRecord): boolean {
  try {
    const fd = openSegment(journalDir(home), record.t);
    try {
      writeSync(fd, encodeRecord(record));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    return false;
  }
}

/** The daemon's writer: keeps the hour's file open (one write per message), a new one each hour. */
export class JournalWriter {
  private fd: number | undefined;
  private name = '';

  constructor(private readonly home: string) {}

  append(record: MessageRecord): boolean {
    try {
      const name = segmentName(record.t);
      if (this.fd === undefined || name !== this.name) {
        this.close();
        this.fd = openSegment(journalDir(this.home), record.t);
        this.name = name;
      }
      writeSync(this.fd, encodeRecord(record));
      return true;
    } catch {
      this.close();
      return false;
    }
  }

  close(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    this.fd = undefined;
  }
}

/** The journal's segments, oldest first. */
export function segments(home: string): string[] {
  try {
    return readdirSync(journalDir(home))
      .filter((n) => !Number.isNaN(segmentEnd(n)))
      .sort();
  } catch {
    return [];
  }
}

/** How far a reader has read each segment (bytes). */
export type Positions = Map<string, number>;

/** Where each segment ends now: a reader that starts here counts only what is written from now on. */
export function endPositions(home: string): Positions {
  const out: Positions = new Map();
  for (const name of segments(home)) {
    try {
      out.set(name, statSync(join(journalDir(home), name)).size);
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

/**
 * Every whole line written after `positions`: the records, and the positions after them (a line still
 * being written, with no newline yet, is left for the next read). `positions` is not changed. Lines
 * `skip` says are not wanted are passed over without being decoded.
 */
export function readJournal(home: string, positions: Positions, skip?: (line: Buffer) => boolean): { records: MessageRecord[]; positions: Positions; skipped: number } {
  const next: Positions = new Map(positions);
  const records: MessageRecord[] = [];
  let skipped = 0;
  const dir = journalDir(home);
  for (const name of segments(home)) {
    let fd: number;
    try {
      fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      continue;
    }
    try {
      const size = fstatSync(fd).size;
      let pos = next.get(name) ?? 0;
      if (pos > size) pos = 0; // not the file this position was for
      if (pos === size) {
        next.set(name, pos);
        continue;
      }
      const buf = Buffer.allocUnsafe(size - pos);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, pos + got);
        if (n === 0) break;
        got += n;
      }
      const end = buf.subarray(0, got).lastIndexOf(0x0a);
      if (end < 0) {
        next.set(name, pos);
        continue;
      }
      let start = 0;
      while (start <= end) {
        const nl = buf.indexOf(0x0a, start);
        const line = buf.subarray(start, nl);
        start = nl + 1;
        if (skip?.(line)) continue;
        const r = line.length <= LINE_MAX ? decodeRecord(line.toString('utf8')) : undefined;
        if (r) records.push(r);
        else skipped++;
      }
      next.set(name, pos + end + 1);
    } finally {
      closeSync(fd);
    }
  }
  // Segments removed (rolled up and deleted) are forgotten.
  const present = new Set(segments(home));
  for (const k of [...next.keys()]) if (!present.has(k)) next.delete(k);
  return { records, positions: next, skipped };
}
