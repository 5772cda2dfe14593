// Reading qmail's pipes (fd 0: message, fd 1: envelope) to EOF, synchronously: a one-shot process has
// nothing else to do meanwhile, and qmail gives blocking pipes.

import { readSync } from 'node:fs';

const CHUNK = 64 * 1024;
const pause = new Int32Array(new SharedArrayBuffer(4));

/** Yields the bytes of `fd` until EOF. A non-blocking descriptor (not qmail's way) is waited on. */
export function* readFdChunks(fd: number): Generator<Buffer> {
  for (;;) {
    const buf = Buffer.allocUnsafe(CHUNK);
    let n: number;
    try {
      n = readSync(fd, buf, 0, CHUNK, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1);
        continue;
      }
      throw err;
    }
    if (n === 0) return;
    // Keep small reads small: the collector holds on to what we yield.
    yield n < CHUNK / 2 ? Buffer.from(buf.subarray(0, n)) : buf.subarray(0, n);
  }
}
