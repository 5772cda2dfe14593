// Reading qmail's pipes (fd 0: message, fd 1: envelope) to EOF, synchronously: a one-shot process has
// nothing else to do meanwhile, and qmail gives blocking pipes.

import { readSync } from 'node:fs';

const CHUNK = 64 * 1024;
// Made on first use: a V8 start-up snapshot (node --build-snapshot) cannot hold a SharedArrayBuffer.
let pause: Int32Array | undefined;

/**
 * Yields the bytes of `fd` until EOF. A non-blocking descriptor (not qmail's way) is waited on.
 * When `reuse()` says the consumer is done with each chunk before asking for the next (a message being
 * written straight to its spill file), one buffer serves every read: a 50 MB message then makes no
 * garbage for the collector to catch up with.
 */
export function* readFdChunks(fd: number, reuse: () => boolean = () => false): Generator<Buffer> {
  let shared: Buffer | undefined;
  for (;;) {
    const buf = reuse() ? (shared ??= Buffer.allocUnsafe(CHUNK)) : Buffer.allocUnsafe(CHUNK);
    let n: number;
    try {
      n = readSync(fd, buf, 0, CHUNK, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait((pause ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, 1);
        continue;
      }
      throw err;
    }
    if (n === 0) return;
    if (buf === shared) yield buf.subarray(0, n);
    // Keep small reads small: the collector holds on to what we yield.
    else yield n < CHUNK / 2 ? Buffer.from(buf.subarray(0, n)) : buf.subarray(0, n);
  }
}
