// Reading the client's side of the daemon protocol (docs/daemon-protocol.md) from a socket: exact-size
// reads with back-pressure, the environment block and length-prefixed frames.

import type { Socket } from 'node:net';

export const MAGIC = 'NQQ1';
export const MAX_ENV = 65536;
export const MAX_FRAME = 1024 * 1024;
export const READ_ERROR = 0xffffffff;
/** Past this much unread input the socket is paused until the consumer catches up. */
const HIGH_WATER = 256 * 1024;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** The client said it could not read its input (a 0xFFFFFFFF frame): nothing more follows. */
  clientReadError = false;
  /** Bytes received so far (0: a probe that connected and left, e.g. a second daemon starting). */
  received = 0;

  constructor(private readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.length += c.length;
      this.received += c.length;
      if (this.length > HIGH_WATER) sock.pause();
      this.notify();
    });
    sock.on('end', () => {
      this.ended = true;
      this.notify();
    });
    sock.on('error', (err) => {
      this.failure = err;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async need(n: number): Promise<void> {
    while (this.length < n) {
      if (this.failure) throw new ProtocolError(`connection failed: ${this.failure.message}`);
      if (this.ended) throw new ProtocolError('connection closed before the input was complete');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.length -= n;
    if (this.length <= HIGH_WATER && this.sock.isPaused()) this.sock.resume();
    return out;
  }

  private async u32(): Promise<number> {
    await this.need(4);
    return this.take(4).readUInt32BE(0);
  }

  /** Exactly `n` bytes. */
  async bytes(n: number): Promise<Buffer> {
    await this.need(n);
    return Buffer.from(this.take(n));
  }

  async magic(): Promise<void> {
    await this.need(4);
    const m = this.take(4).toString('latin1');
    if (m !== MAGIC) throw new ProtocolError(`bad greeting ${JSON.stringify(m)}`);
  }

  async envBlock(): Promise<Buffer> {
    const n = await this.u32();
    if (n > MAX_ENV) throw new ProtocolError(`environment block of ${n} bytes`);
    await this.need(n);
    return n === 0 ? Buffer.alloc(0) : Buffer.from(this.take(n));
  }

  /** The frames of one stream (message or envelope), until its 0-length frame. */
  async *frames(): AsyncGenerator<Buffer> {
    if (this.clientReadError) return;
    for (;;) {
      const n = await this.u32();
      if (n === 0) return;
      if (n === READ_ERROR) {
        this.clientReadError = true;
        return;
      }
      if (n > MAX_FRAME) throw new ProtocolError(`frame of ${n} bytes`);
      // The frame as the pieces that arrived, without gathering it into a buffer of its own.
      let left = n;
      while (left > 0) {
        await this.need(1);
        const k = Math.min(this.chunks[0]!.length, left);
        left -= k;
        yield this.take(k);
      }
    }
  }
}
