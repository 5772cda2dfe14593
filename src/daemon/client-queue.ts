// The daemon's qmail-queue: each copy is handed to nqqueue-qq, which runs qmail-queue as its own child
// and answers with the exit status (docs/daemon-protocol.md, `Q`/`q`). A daemon that dies mid-delivery
// thus never leaves a queued copy the client does not know about.

import type { Socket } from 'node:net';

import type { QueueResult, QueueSink } from '../delivery/qmail-queue.js';
import type { MessageView } from '../pipeline/types.js';
import { MAX_FRAME, ProtocolError, type FrameReader } from './frames.js';

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** How much of a copy's start, and of its last piece, is held (copied) to go out with what follows. */
const HOLD_MAX = 64 * 1024;

export class ClientQueue implements QueueSink {
  readonly name = 'qmail-queue via nqqueue-qq';
  /** Records that go in front of the first copy (the decision, 'L' and 'D'), in the same write. */
  private preface: Buffer | undefined;
  /** Copies the client answered: with status 0, and with any other. */
  private queued = 0;
  private failed = 0;

  constructor(
    private readonly sock: Socket,
    private readonly reader: FrameReader,
    private readonly timeoutMs: number,
    /** The bench's trace (Daemon's NQQUEUE_TRACE): called when a copy is sent and when its answer is in. */
    private readonly stamp?: (stage: 'copied' | 'answer') => void,
  ) {}

  /** The decision records, sent with the first copy (or with the reply: takePreface). */
  announce(records: Buffer): void {
    this.preface = records;
  }

  /** Whether the client answered exactly `copies` copies, each with status 0. */
  queuedAll(copies: number): boolean {
    return this.failed === 0 && this.queued === copies;
  }

  /** The announced records not sent yet (no copy was handed over): they go in front of the reply. */
  takePreface(): Buffer | undefined {
    const p = this.preface;
    this.preface = undefined;
    return p;
  }

  /**
   * `parts` in one write (writev); resolves once they are handed to the kernel: the caller may then
   * reuse their buffers.
   */
  private write(parts: Buffer[]): Promise<void> {
    if (this.sock.destroyed) return Promise.reject(new ProtocolError('client gone'));
    return new Promise((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(new ProtocolError(`client gone while a copy was sent: ${err.message}`)) : resolve());
      this.sock.cork();
      for (let i = 0; i < parts.length - 1; i++) this.sock.write(parts[i]!);
      this.sock.write(parts[parts.length - 1]!, done);
      this.sock.uncork();
    });
  }

  /** `chunk` as frames of at most MAX_FRAME bytes, onto `parts`. */
  private static frames(parts: Buffer[], chunk: Buffer): void {
    for (let off = 0; off < chunk.length; off += MAX_FRAME) {
      const part = chunk.subarray(off, Math.min(chunk.length, off + MAX_FRAME));
      parts.push(u32(part.length), part);
    }
  }

  async deliver(message: MessageView, envelope: Buffer, limitMs?: number): Promise<QueueResult> {
    // nqqueue-qq kills qmail-queue at this timeout: the message's deadline when that comes first.
    const timeoutMs = Math.max(1, Math.floor(Math.min(this.timeoutMs, limitMs ?? Infinity)));
    const parts: Buffer[] = [];
    const preface = this.takePreface();
    if (preface) parts.push(preface);
    parts.push(Buffer.concat([Buffer.from('Q'), u32(Math.min(timeoutMs, 0xffffffff))]));
    // A chunk is only valid until the next one is asked for: each goes to the kernel before that, but
    // the pieces of a copy's first HOLD_MAX bytes and a small last one are copied and wait, so a small
    // message (the trace header, then the rest) leaves in one write with its envelope.
    let seen = 0;
    for await (const c of message.chunks()) {
      seen += c.length;
      if (c.length <= HOLD_MAX && (seen <= HOLD_MAX || seen >= message.size)) {
        ClientQueue.frames(parts, Buffer.from(c));
        continue;
      }
      ClientQueue.frames(parts, c);
      await this.write(parts.splice(0));
    }
    parts.push(u32(0));
    ClientQueue.frames(parts, envelope);
    parts.push(u32(0));
    await this.write(parts);
    this.stamp?.('copied');
    // 'q', the status, the pid of the client's qmail-queue (0: none was started).
    const answer = await this.reader.bytes(6);
    this.stamp?.('answer');
    if (answer[0] !== 0x71) throw new ProtocolError(`expected q, got byte ${answer[0]}`);
    const status = answer[1]!;
    const pid = answer.readUInt32BE(2) || undefined;
    if (status === 0) {
      this.queued++;
      return { ok: true, pid };
    }
    this.failed++;
    if (status === 255) {
      const why = timeoutMs < this.timeoutMs ? `was stopped at the message deadline (after ${timeoutMs} ms), killed` : 'was killed, timed out';
      return { ok: false, code: 71, reason: `qmail-queue ${why} or could not be run (nqqueue-qq)`, pid };
    }
    return { ok: false, code: status, reason: `qmail-queue exited ${status}`, pid };
  }
}
