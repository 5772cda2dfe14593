// Message bytes: in memory when small, in a private spill file when large; views that prepend headers.

import { randomBytes } from 'node:crypto';
import { closeSync, constants, createReadStream, fsyncSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';

import { ERRORS, isNqqError, NqqError } from '../errors.js';
import type { MessageView } from '../pipeline/types.js';

const HEAD_LIMIT = 64 * 1024;
const REUSED_CHUNK = 64 * 1024;

/** Write every chunk of `message` to `out`, each one flushed before the next is read; then end `out`. */
export async function writeMessage(message: MessageView, out: Writable): Promise<void> {
  for await (const chunk of message.chunks()) {
    await new Promise<void>((resolve, reject) => {
      out.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
  }
  await new Promise<void>((resolve) => out.end(resolve));
}

/** Where the header block ends in `buf` (index just past the blank line, LF or CRLF), or -1. */
export function headerEnd(buf: Buffer): number {
  if (buf.length > 0 && buf[0] === 0x0a) return 1;
  if (buf.length > 1 && buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  const i = buf.indexOf('\n\n');
  // Mail injected locally may keep CRLF line ends (qmail-smtpd turns them into LF).
  const j = buf.indexOf('\n\r\n');
  if (j >= 0 && (i < 0 || j < i)) return j + 3;
  return i < 0 ? -1 : i + 2;
}

function cutHead(buf: Buffer, limit: number): Buffer {
  const end = headerEnd(buf.length > limit ? buf.subarray(0, limit) : buf);
  return end < 0 ? buf.subarray(0, Math.min(limit, buf.length)) : buf.subarray(0, end);
}

export class MemoryMessage implements MessageView {
  constructor(private readonly buf: Buffer) {}
  get size(): number {
    return this.buf.length;
  }
  /** The bytes, without a promise (for views over this one). */
  bufferNow(): Buffer {
    return this.buf;
  }
  async buffer(): Promise<Buffer> {
    return this.buf;
  }
  stream(): Readable {
    return Readable.from([this.buf], { objectMode: false });
  }
  async *chunks(): AsyncIterable<Buffer> {
    yield this.buf;
  }
  async head(limit = HEAD_LIMIT): Promise<Buffer> {
    return cutHead(this.buf, limit);
  }
}

export class FileMessage implements MessageView {
  /** The message is the bytes of `path` from `offset` on (spool files keep their envelope in front). */
  constructor(
    readonly path: string,
    readonly size: number,
    readonly offset = 0,
  ) {}
  wholeFile(): string | undefined {
    return this.offset === 0 ? this.path : undefined;
  }
  async buffer(): Promise<Buffer> {
    const all = await readFile(this.path);
    return this.offset === 0 ? all : all.subarray(this.offset);
  }
  stream(): Readable {
    return createReadStream(this.path, { start: this.offset, highWaterMark: 256 * 1024 });
  }
  async *chunks(): AsyncIterable<Buffer> {
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.allocUnsafe(REUSED_CHUNK);
      let pos = this.offset;
      const end = this.offset + this.size;
      while (pos < end) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
        if (bytesRead === 0) throw new Error(`${this.path}: shorter than its ${this.size} bytes`);
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }
  async head(limit = HEAD_LIMIT): Promise<Buffer> {
    const fd = openSync(this.path, constants.O_RDONLY);
    try {
      const buf = Buffer.alloc(Math.min(limit, this.size));
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      return cutHead(buf.subarray(0, n), limit);
    } finally {
      closeSync(fd);
    }
  }
}

/** A message with header lines put in front of another message. */
export class PrefixedMessage implements MessageView {
  constructor(
    readonly prefix: Buffer,
    readonly base: MessageView,
  ) {}
  get size(): number {
    return this.prefix.length + this.base.size;
  }
  async buffer(): Promise<Buffer> {
    return Buffer.concat([this.prefix, await this.base.buffer()]);
  }
  stream(): Readable {
    const { prefix, base } = this;
    return Readable.from(
      (async function* () {
        yield prefix;
        yield* base.stream();
      })(),
      { objectMode: false },
    );
  }
  async *chunks(): AsyncIterable<Buffer> {
    yield this.prefix;
    yield* this.base.chunks();
  }
  async head(limit = HEAD_LIMIT): Promise<Buffer> {
    if (this.prefix.length >= limit) return cutHead(this.prefix, limit);
    return cutHead(Buffer.concat([this.prefix, await this.base.head(limit - this.prefix.length)]), limit);
  }
}

/**
 * The bytes of `root` from `from` on, read from `root` itself (nothing is copied): the body under an
 * edited header block. A FileMessage is read from that offset, a MemoryMessage is a subarray of it.
 */
export class TailMessage implements MessageView {
  constructor(
    readonly root: MessageView,
    readonly from: number,
  ) {}
  get size(): number {
    return this.root.size - this.from;
  }
  private view(): MessageView | undefined {
    if (this.root instanceof MemoryMessage) return new MemoryMessage(this.root.bufferNow().subarray(this.from));
    if (this.root instanceof FileMessage) return new FileMessage(this.root.path, this.size, this.root.offset + this.from);
    return undefined;
  }
  async buffer(): Promise<Buffer> {
    const v = this.view();
    if (v) return v.buffer();
    return (await this.root.buffer()).subarray(this.from);
  }
  stream(): Readable {
    const v = this.view();
    if (v) return v.stream();
    return Readable.from(this.chunks(), { objectMode: false });
  }
  async *chunks(): AsyncIterable<Buffer> {
    const v = this.view();
    if (v) {
      yield* v.chunks();
      return;
    }
    // Any other view: its bytes are skipped up to `from`.
    let skip = this.from;
    for await (const c of this.root.chunks()) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      yield skip > 0 ? c.subarray(skip) : c;
      skip = 0;
    }
  }
  async head(limit = HEAD_LIMIT): Promise<Buffer> {
    const v = this.view();
    if (v) return v.head(limit);
    return cutHead(await this.buffer(), limit);
  }
}

/** One TailMessage per root and offset, so copies with the same body are grouped and keyed as one. */
const tails = new WeakMap<MessageView, Map<number, TailMessage>>();

/** The bytes of `view` from `from` on, without copying them. */
export function tailOf(view: MessageView, from: number): MessageView {
  if (from === 0) return view;
  if (view instanceof TailMessage) return tailOf(view.root, view.from + from);
  let byOffset = tails.get(view);
  if (!byOffset) {
    byOffset = new Map();
    tails.set(view, byOffset);
  }
  let t = byOffset.get(from);
  if (!t) {
    t = new TailMessage(view, from);
    byOffset.set(from, t);
  }
  return t;
}

/** Header blocks larger than this are not edited: the plugin that would edit one refuses the message. */
export const MAX_EDIT_HEAD = 1024 * 1024;

/**
 * The message with its header block rewritten by `edit` (given the header block, blank line included;
 * undefined: nothing to change). The result is the new header block in front of the body of the
 * message it came from — the body is read from there, never copied — so any number of different edits
 * of one large message cost one header block each.
 */
export async function editHeader(view: MessageView, edit: (head: Buffer) => Buffer | undefined): Promise<MessageView | undefined> {
  const head = await view.head(MAX_EDIT_HEAD);
  if (headerEnd(head) < 0 && head.length < view.size) {
    // No real mail has such a header block. Editing only its first part would let a field hidden
    // behind the padding through, and a copy per edit is what this bound is here to prevent.
    throw new NqqError('NQQ_ERR_HEADER_TOO_LARGE', `header block over ${MAX_EDIT_HEAD} bytes: not edited`);
  }
  const edited = edit(head);
  if (edited === undefined) return undefined;
  if (view instanceof PrefixedMessage && head.length <= view.prefix.length) {
    // The header block is all in the prefix: the prefix's rest and the base follow the new block.
    return prefixMessage(Buffer.concat([edited, view.prefix.subarray(head.length)]), view.base);
  }
  if (view instanceof PrefixedMessage) return prefixMessage(edited, tailOf(view.base, head.length - view.prefix.length));
  return prefixMessage(edited, tailOf(view, head.length));
}

/** What a plugin that edits the header block answers when editHeader refuses the message. */
export function headerEditRefusal(err: unknown): { verdict: 'reject'; text: string; details: Record<string, unknown> } {
  if (isNqqError(err) && err.code === 'NQQ_ERR_HEADER_TOO_LARGE') {
    return { verdict: 'reject', text: ERRORS.NQQ_ERR_HEADER_TOO_LARGE.text, details: { refused: err.message } };
  }
  throw err;
}

/** Put `prefix` in front of `view`, flattening nested prefixes. */
export function prefixMessage(prefix: Buffer, view: MessageView): MessageView {
  if (prefix.length === 0) return view;
  if (view instanceof PrefixedMessage) return new PrefixedMessage(Buffer.concat([prefix, view.prefix]), view.base);
  return new PrefixedMessage(prefix, view);
}

/** Name of a working file: the creating PID first, so a later run can tell whether its owner is gone. */
export function workFileName(suffix: string): string {
  return `${process.pid}.${Date.now().toString(36)}.${randomBytes(6).toString('hex')}.${suffix}`;
}

/** Open a new private file: mode 0600, never through a symlink, never an existing file. */
export const PRIVATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export function createPrivateFile(path: string): number {
  return openSync(path, PRIVATE_FILE, 0o600);
}

/**
 * The bytes that the messages of one process hold in memory, all together (the daemon's connections
 * share one): a message whose next bytes would take the total past `limit()` goes to its spill file
 * at once, however small it is, so many messages in flight cost files, not memory.
 */
export class MemoryBudget {
  private used = 0;
  constructor(private readonly limit: () => number) {}
  /** Count `n` more bytes in memory, if they fit. */
  take(n: number): boolean {
    if (this.used + n > this.limit()) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used -= n;
  }
  /** Bytes counted now. */
  get inUse(): number {
    return this.used;
  }
}

/**
 * Collects message bytes as they arrive; past `spillBytes` (or past what `budget` has left) they go to
 * a private file in `workDir`. `finish()` gives the view; `discard()` removes the file and gives the
 * bytes held in memory back to the budget, whatever happened.
 */
export class MessageCollector {
  private chunks: Buffer[] = [];
  private size = 0;
  private fd = -1;
  private path: string | undefined;
  /** Bytes counted in `budget` (those in memory, until discard()). */
  private counted = 0;

  constructor(
    private readonly spillBytes: number,
    private readonly workDir: () => string,
    private readonly budget?: MemoryBudget,
  ) {}

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (this.fd < 0 && (this.size > this.spillBytes || !this.count(chunk.length))) {
      this.path = join(this.workDir(), workFileName('msg'));
      this.fd = createPrivateFile(this.path);
      for (const c of this.chunks) writeAll(this.fd, c);
      this.chunks = [];
      this.uncount();
    }
    if (this.fd >= 0) writeAll(this.fd, chunk);
    else this.chunks.push(chunk);
  }

  private count(n: number): boolean {
    if (!this.budget) return true;
    if (!this.budget.take(n)) return false;
    this.counted += n;
    return true;
  }

  private uncount(): void {
    this.budget?.give(this.counted);
    this.counted = 0;
  }

  finish(): MessageView {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
      return new FileMessage(this.path!, this.size);
    }
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    return new MemoryMessage(buf);
  }

  /** True once the bytes go straight to the spill file (each chunk is written before write() returns). */
  get spilled(): boolean {
    return this.fd >= 0;
  }

  /** The spill file, if any (for cleanup). */
  get spillPath(): string | undefined {
    return this.path;
  }

  discard(): void {
    this.uncount();
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // ignore
      }
      this.fd = -1;
    }
    if (this.path) {
      try {
        unlinkSync(this.path);
      } catch {
        // already gone
      }
    }
    this.chunks = [];
  }
}

export function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** Write a file durably: the caller renames it into place afterwards. */
export function syncClose(fd: number): void {
  fsyncSync(fd);
  closeSync(fd);
}
