// The retry spool: deliveries that failed after others of the same message were queued. Each entry is one
// file (header line, envelope, message) written to tmp/, fsynced, renamed into new/; what a killed run
// left in tmp/ is swept when a later process first uses the spool. `flush` claims an
// entry by renaming it into cur/ (so two flushes never deliver it twice), delivers it, removes it.

import { closeSync, openSync, readdirSync, readSync, renameSync, unlinkSync, constants, fstatSync } from 'node:fs';
import { join } from 'node:path';

import { describeError } from '../errors.js';
import { isAlive, syncDir, withPrefix, writePrivateFile } from '../intake/files.js';
import { FileMessage, workFileName } from '../intake/message.js';
import { ensurePrivateDir, STALE_MS, sweepOnFirstUse, sweepStale } from '../intake/workdir.js';
import type { MessageView } from '../pipeline/types.js';
import type { QueueSink } from './qmail-queue.js';

const MAGIC = 'NQQSPOOL1';

export class Spool {
  readonly tmp: string;
  readonly new: string;
  readonly cur: string;

  constructor(readonly dir: string) {
    this.tmp = join(dir, 'tmp');
    this.new = join(dir, 'new');
    this.cur = join(dir, 'cur');
  }

  private ensure(): void {
    for (const d of [this.dir, this.tmp, this.new, this.cur]) ensurePrivateDir(d);
    // Partial entries of runs killed while writing (their PID is gone, or they are hours old).
    sweepOnFirstUse(this.tmp, (dir) => sweepStale(dir, STALE_MS));
  }

  /** Store one delivery durably. Returns the entry name. Throws when it cannot be stored. */
  async put(message: MessageView, envelope: Buffer, note: string): Promise<string> {
    this.ensure();
    const name = workFileName('spool');
    const tmp = join(this.tmp, name);
    const header = Buffer.from(`${MAGIC} ${envelope.length} ${message.size} ${note.replace(/[^\x20-\x7e]/g, '?')}\n`, 'latin1');
    const written = await writePrivateFile(tmp, withPrefix([header, envelope], message.chunks()));
    if (written !== header.length + envelope.length + message.size) {
      unlinkSync(tmp);
      throw new Error('spool write: size mismatch');
    }
    renameSync(tmp, join(this.new, name));
    syncDir(this.new);
    return name;
  }

  /** Take back an entry that is still waiting (best effort). */
  remove(name: string): void {
    try {
      unlinkSync(join(this.new, name));
    } catch {
      // already gone
    }
  }

  /** Entries waiting in new/. */
  list(): string[] {
    try {
      return readdirSync(this.new).filter((n) => !n.startsWith('.')).sort();
    } catch {
      return [];
    }
  }

  /** Put back entries whose flushing process died. */
  recover(): void {
    let names: string[];
    try {
      names = readdirSync(this.cur);
    } catch {
      return;
    }
    for (const n of names) {
      const m = /^(\d+)-(.+)$/.exec(n);
      if (!m) continue;
      if (!isAlive(Number(m[1]))) {
        try {
          renameSync(join(this.cur, n), join(this.new, m[2]!));
        } catch {
          // someone else recovered it
        }
      }
    }
  }

  /** Deliver every waiting entry. Returns counts; failed entries stay for the next flush. */
  async flush(sink: QueueSink, log: (line: string) => void): Promise<{ delivered: number; failed: number }> {
    this.ensure();
    this.recover();
    let delivered = 0;
    let failed = 0;
    for (const name of this.list()) {
      const claimed = join(this.cur, `${process.pid}-${name}`);
      try {
        renameSync(join(this.new, name), claimed);
      } catch {
        continue; // another flush took it
      }
      let entry: { envelope: Buffer; message: MessageView };
      try {
        entry = readEntry(claimed);
      } catch (err) {
        log(`spool ${name}: unreadable, left in ${this.cur}: ${describeError(err)}`);
        failed++;
        continue;
      }
      const r = await sink.deliver(entry.message, entry.envelope);
      if (r.ok) {
        unlinkSync(claimed);
        delivered++;
        log(`spool ${name}: delivered`);
      } else {
        renameSync(claimed, join(this.new, name));
        failed++;
        log(`spool ${name}: ${r.reason}; kept for the next flush`);
      }
    }
    return { delivered, failed };
  }
}

/** Read a spool entry: header line, envelope, then the message (left in the file). */
export function readEntry(path: string): { envelope: Buffer; message: MessageView } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(1024);
    const n = readSync(fd, head, 0, head.length, 0);
    const nl = head.subarray(0, n).indexOf(0x0a);
    const m = nl < 0 ? null : new RegExp(`^${MAGIC} (\\d+) (\\d+) `).exec(head.subarray(0, nl).toString('latin1'));
    if (!m) throw new Error('not a spool file');
    const envLen = Number(m[1]);
    const msgLen = Number(m[2]);
    const envelope = Buffer.alloc(envLen);
    if (readSync(fd, envelope, 0, envLen, nl + 1) !== envLen) throw new Error('truncated envelope');
    const offset = nl + 1 + envLen;
    if (fstatSync(fd).size !== offset + msgLen) throw new Error('truncated message');
    return { envelope, message: new FileMessage(path, msgLen, offset) };
  } finally {
    closeSync(fd);
  }
}
