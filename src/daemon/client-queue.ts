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

export class ClientQueue implements QueueSink {
  readonly name = 'qmail-queue via nqqueue-qq';

  constructor(
    private readonly sock: Socket,
    private readonly reader: FrameReader,
    private readonly timeoutMs: number,
    /** The bench's trace (Daemon's NQQUEUE_TRACE): called when a copy is sent and when its answer is in. */
    private readonly stamp?: (stage: 'copied' | 'answer') => void,
  ) {}

  /** Resolves once `buf` is handed to the kernel: the caller may then reuse it. */
  private write(buf: Buffer): Promise<void> {
    if (this.sock.destroyed) return Promise.reject(new ProtocolError('client gone'));
    return new Promise((resolve, reject) => {
      this.sock.write(buf, (err) => (err ? reject(new ProtocolError(`client gone while a copy was sent: ${err.message}`)) : resolve()));
    });
  }

  private async frames(data: AsyncIterable<Buffer | string> | Iterable<Buffer>): Promise<void> {
    for await (const c of data) {
      const chunk = typeof c === 'string' ? Buffer.from(c) : c;
      for (let off = 0; off < chunk.length; off += MAX_FRAME) {
        const part = chunk.subarray(off, Math.min(chunk.length, off + MAX_FRAME));
        void this.write(u32(part.length)).catch(() => {});
        await this.write(part);
      }
    }
    await this.write(u32(0));
  }

  async deliver(message: MessageView, envelope: Buffer, limitMs?: number): Promise<QueueResult> {
    // nqqueue-qq kills qmail-queue at this timeout: the message's deadline when that comes first.
    const timeoutMs = Math.max(1, Math.floor(Math.min(this.timeoutMs, limitMs ?? Infinity)));
    await this.write(Buffer.concat([Buffer.from('Q'), u32(Math.min(timeoutMs, 0xffffffff))]));
    await this.frames(message.chunks());
    await this.frames([envelope]);
    this.stamp?.('copied');
    // 'q', the status, the pid of the client's qmail-queue (0: none was started).
    const answer = await this.reader.bytes(6);
    this.stamp?.('answer');
    if (answer[0] !== 0x71) throw new ProtocolError(`expected q, got byte ${answer[0]}`);
    const status = answer[1]!;
    const pid = answer.readUInt32BE(2) || undefined;
    if (status === 0) return { ok: true, pid };
    if (status === 255) {
      const why = timeoutMs < this.timeoutMs ? `was stopped at the message deadline (after ${timeoutMs} ms), killed` : 'was killed, timed out';
      return { ok: false, code: 71, reason: `qmail-queue ${why} or could not be run (nqqueue-qq)`, pid };
    }
    return { ok: false, code: status, reason: `qmail-queue exited ${status}`, pid };
  }
}
