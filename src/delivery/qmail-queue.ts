// Handing a message to the real qmail-queue: fd 0 = the message, written whole and closed, then fd 1 =
// the envelope; wait for the exit code. Also a directory sink that stands in for qmail in `demo`.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

import { describeError } from '../errors.js';
import { writeMessage } from '../intake/message.js';
import type { MessageView } from '../pipeline/types.js';

/** `pid`: the qmail-queue process, when one was started (qmail-send logs it as the copy's `qp`). */
export type QueueResult =
  | { ok: true; pid?: number }
  | { ok: false; code: number; reason: string; pid?: number };

export interface QueueSink {
  readonly name: string;
  /**
   * One qmail-queue call. `limitMs` (the time left before the message's deadline) shortens the call's
   * own timeout: past it qmail-queue is killed and the call fails.
   */
  deliver(message: MessageView, envelope: Buffer, limitMs?: number): Promise<QueueResult>;
}

/** The exit code NQqueue reports when qmail-queue could not give one of its own. */
const NO_CODE = 71;

export class QmailQueue implements QueueSink {
  constructor(
    readonly path: string,
    private readonly timeoutMs: number,
  ) {}

  get name(): string {
    return this.path;
  }

  deliver(message: MessageView, envelope: Buffer, limitMs?: number): Promise<QueueResult> {
    const byDeadline = limitMs !== undefined && limitMs < this.timeoutMs;
    const timeoutMs = byDeadline ? Math.max(0, Math.floor(limitMs)) : this.timeoutMs;
    return new Promise<QueueResult>((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const done = (r: QueueResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'inherit'], argv0: this.path });
      } catch (err) {
        done({ ok: false, code: NO_CODE, reason: `cannot run ${this.path}: ${describeError(err)}` });
        return;
      }
      let timedOut = false;
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      const msgIn = child.stdin!;
      // Node creates the child's fd 1 as a socket pair; the child reads the envelope from it.
      const envIn = child.stdout as unknown as Writable;
      // Write errors (EPIPE when qmail-queue quits early) are not the verdict: its exit code is.
      msgIn.on('error', () => {});
      envIn.on('error', () => {});
      child.on('error', (err) => done({ ok: false, code: NO_CODE, reason: `cannot run ${this.path}: ${describeError(err)}` }));
      child.on('exit', (code, signal) => {
        const pid = child.pid;
        if (timedOut) {
          const why = byDeadline ? `was stopped at the message deadline (after ${timeoutMs} ms)` : `timed out after ${timeoutMs} ms`;
          done({ ok: false, code: NO_CODE, reason: `${this.path} ${why}`, pid });
        } else if (signal) done({ ok: false, code: NO_CODE, reason: `${this.path} was killed by ${signal}`, pid });
        else if (code === 0) done({ ok: true, pid });
        else done({ ok: false, code: code ?? NO_CODE, reason: `${this.path} exited ${code}`, pid });
      });
      writeMessage(message, msgIn)
        .then(() => {
          envIn.end(envelope);
        })
        .catch(() => {
          envIn.destroy();
        });
    });
  }
}

/** `demo`'s queue: every delivery becomes a numbered pair of files in a directory. */
export class DirectorySink implements QueueSink {
  private n = 0;
  readonly deliveries: { file: string; envelope: Buffer; message: Buffer }[] = [];
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  get name(): string {
    return `queue sink ${this.dir}`;
  }
  async deliver(message: MessageView, envelope: Buffer): Promise<QueueResult> {
    const n = ++this.n;
    const body = await message.buffer();
    const file = join(this.dir, `${n}.eml`);
    writeFileSync(file, body, { mode: 0o600 });
    writeFileSync(join(this.dir, `${n}.envelope`), envelope, { mode: 0o600 });
    this.deliveries.push({ file, envelope, message: body });
    return { ok: true };
  }
}
