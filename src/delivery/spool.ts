// The retry spool: deliveries that failed after others of the same message were queued. Each entry is one
// file (header line, envelope, message) written to tmp/, fsynced, renamed into new/. `flush` claims an
// entry by renaming it into cur/ (so two flushes never deliver it twice), delivers it, removes it.

import { closeSync, fsyncSync, openSync, readdirSync, readSync, renameSync, unlinkSync, constants, fstatSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

import { describeError } from '../errors.js';
import { FileMessage, PRIVATE_FILE, workFileName } from '../intake/message.js';
import { ensurePrivateDir } from '../intake/workdir.js';
import type { MessageView } from '../pipeline/types.js';
import type { QueueSink } from './qmail-queue.js';

const MAGIC = 'NQQSPOOL1';

function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

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
  }

  /** Store one delivery durably. Returns the entry name. Throws when it cannot be stored. */
  async put(message: MessageView, envelope: Buffer, note: string): Promise<string> {
    this.ensure();
    const name = workFileName('spool');
    const tmp = join(this.tmp, name);
    const fh = await open(tmp, PRIVATE_FILE, 0o600);
    try {
      const header = Buffer.from(`${MAGIC} ${envelope.length} ${message.size} ${note.replace(/[^\x20-\x7e]/g, '?')}\n`, 'latin1');
      let pos = 0;
      const put = async (b: Buffer) => {
        let off = 0;
        while (off < b.length) {
          const { bytesWritten } = await fh.write(b, off, b.length - off, pos);
          off += bytesWritten;
          pos += bytesWritten;
        }
      };
      await put(header);
      await put(envelope);
      for await (const chunk of message.chunks()) await put(chunk);
      if (pos !== header.length + envelope.length + message.size) throw new Error('spool write: size mismatch');
      await fh.sync();
      await fh.close();
      renameSync(tmp, join(this.new, name));
      syncDir(this.new);
      return name;
    } catch (err) {
      await fh.close().catch(() => {});
      try {
        unlinkSync(tmp);
      } catch {
        // nothing to remove
      }
      throw err;
    }
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
      let alive = true;
      try {
        process.kill(Number(m[1]), 0);
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (!alive) {
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
