// A streaming walk over a message's MIME structure: every header field of the message and of every
// part (nested multiparts and attached messages included), at any depth and whatever the size of a
// header block, with memory bounded by one header block. Bodies are never held: only the start of a
// body line is looked at (boundaries, uuencoded file names), except in an attached message sent base64
// or quoted-printable (or a multipart sent so), which is decoded line by line and walked as a message of
// its own. A message with a lone CR is walked a second time with those CRs as line ends, as some clients
// read it. A walk past one of the hard bounds of limits.ts stops with MimeLimitError: the caller
// decides, never a silent accept.

import type { Readable } from 'node:stream';

import { MIME_LIMITS, MimeLimitError } from './limits.js';
import { candidateNames } from './names.js';
import { boundaryValues, decodeEncodedWords, parseHeaderValue } from './words.js';

export interface MimePart {
  /** 0 for the message itself, then 1, 2... in the order the parts start. */
  readonly index: number;
  /** Depth of nesting (0 = the message itself). */
  readonly depth: number;
  /** The effective media type, lower-cased (the first Content-Type, or the default). */
  readonly contentType: string;
  /** Raw values of every Content-Type field of the part (several are possible in hostile mail). */
  readonly contentTypes: readonly string[];
  /** Raw values of every Content-Disposition field of the part. */
  readonly dispositions: readonly string[];
  /** The name most clients show: filename= of the first Content-Disposition, else name=, RFC 2047-decoded. */
  readonly filename?: string;
  /** Every name a mail client could show for this part (see names.ts). */
  readonly names: readonly string[];
  readonly disposition?: string;
}

export interface WalkHandlers {
  /**
   * Every header field, in order, unfolded (continuation lines joined with one space): `name`
   * lower-cased, `value` as UTF-8 text. `part` is the index and depth of the block it belongs to.
   * Return true to stop the walk.
   */
  field?(part: { readonly index: number; readonly depth: number }, name: string, value: string): boolean | void;
  /** Every part, once its header block has ended. Return true to stop the walk. */
  part?(part: MimePart): boolean | void;
  /** A file name given by a uuencode `begin` line in a body (clients show these as attachments). */
  bodyName?(part: { readonly index: number; readonly depth: number }, name: string): boolean | void;
}

interface Frame {
  /** Depth of the parts this multipart holds. */
  readonly childDepth: number;
  readonly digest: boolean;
}

interface TrieNode {
  next?: Map<number, TrieNode>;
  frame?: Frame;
}

const lower = (b: number) => (b >= 0x41 && b <= 0x5a ? b + 32 : b);

/** The start of a body line kept: longer than any boundary (70) or uuencode line we look for. */
const BODY_LINE_KEEP = 1024;
/** A synchronous stretch of the walk gives the event loop back after this long (daemon mode). */
const SLICE_MS = 15;
const SLICE_BYTES = 64 * 1024;

/** Encoded multiparts walked decoded in one message: each one decodes the rest of the message again. */
const MAX_DECODED = MIME_LIMITS.encodedMultiparts;

const MESSAGE_TYPES = new Set(['message/rfc822', 'message/global']);
const UUENCODE_BEGIN = /^begin(?:-base64)? +[0-7]{3,4} +(.+)$/;

class Stop extends Error {}

// eslint-disable-next-line no-control-regex
const NOT_IN_TYPE = /\([^()]*\)|[\s"\x00-\x1f\x7f]+/g;

/**
 * The media type of a Content-Type value, lower-cased, as a lenient parser reads it: RFC 822 comments,
 * white space, quotes and control characters dropped (`multipart (x) / mixed`), so that every client's
 * multipart is walked as one (a bare `multipart` without a subtype included).
 */
function mediaType(value: string): string {
  // The value before its parameters, as parseHeaderValue(value).value gives it (without parsing them).
  const semi = value.indexOf(';');
  return (semi < 0 ? value : value.slice(0, semi)).trim().replace(NOT_IN_TYPE, '').replace(NOT_IN_TYPE, '').toLowerCase();
}

/** What all walkers of one message (the message's own and those of encoded attached messages) share. */
interface Budget {
  parts: number;
  headerBytes: number;
  /** Encoded multiparts whose decoded bodies are being walked (each costs a decode of the rest). */
  decoded: number;
}

/** An encoded multipart's body, decoded and walked by a walker of its own (see Walker.sidecars). */
interface Sidecar {
  readonly walker: Walker;
  readonly decoder: BodyDecoder;
  /** Depth of the encoded multipart: a delimiter of a frame at or above it ends the part. */
  readonly depth: number;
}

/** Decodes the body of an attached message sent base64 or quoted-printable, a piece at a time. */
interface BodyDecoder {
  /** Bytes of one line (a line may come in several pieces). */
  write(bytes: Buffer): Buffer;
  /** The line ended. */
  endLine(): Buffer;
}

const B64 = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')) B64[c] = 1;

/** Whole groups of the base64 alphabet, no padding: the common line, decoded as it is. */
function pureBase64(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (B64[bytes[i]!] === 0) return false;
  return true;
}

function base64Decoder(): BodyDecoder {
  let carry = '';
  return {
    write(bytes) {
      if (carry === '' && bytes.length % 4 === 0 && pureBase64(bytes)) return Buffer.from(bytes.toString('latin1'), 'base64');
      const text = carry + bytes.toString('latin1').replace(/[^A-Za-z0-9+/]/g, '');
      const whole = text.length - (text.length % 4);
      carry = text.slice(whole);
      return Buffer.from(text.slice(0, whole), 'base64');
    },
    endLine: () => Buffer.alloc(0),
  };
}

function quotedPrintableDecoder(): BodyDecoder {
  let carry = '';
  return {
    write(bytes) {
      let text = carry + bytes.toString('latin1');
      carry = '';
      const cut = text.lastIndexOf('=');
      if (cut >= 0 && cut > text.length - 3) {
        carry = text.slice(cut);
        text = text.slice(0, cut);
      }
      return Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    },
    endLine() {
      // A line ending in '=' (white space after it allowed) is a soft break: no newline.
      const soft = /^=[ \t\r]*$/.test(carry);
      const rest = soft ? '' : carry;
      carry = '';
      return Buffer.from(`${rest}${soft ? '' : '\n'}`, 'latin1');
    },
  };
}

class Walker {
  private inHeaders = true;
  // The current line: in a header block all of it (bounded by the block limit), in a body its start.
  private line: Buffer[] = [];
  private lineLen = 0;
  private skipping = false; // body: in a line that is neither a delimiter nor a `begin` line
  private streaming = false; // body: in a long line of an encoded message, passed on as it comes
  // The current field's lines.
  private field: Buffer[] = [];
  private blockBytes = 0;
  private partIndex: number;
  private depth: number;
  private parentDigest = false;
  private cts: string[] = [];
  private cds: string[] = [];
  private ctes: string[] = [];
  /** Every boundary declared so far → the multipart it delimits (the latest one declaring it). */
  private readonly boundaries: TrieNode = {};
  /** The longest boundary declared: a body line is kept that far, so a delimiter is always seen. */
  private keep = BODY_LINE_KEEP;
  /** An attached message sent encoded: its decoded bytes are walked as a message of their own. */
  private inner: { walker: Walker; decoder: BodyDecoder } | undefined;
  /**
   * Multiparts sent encoded: the rest of their part, decoded, is walked as the multipart's body,
   * whatever the raw lines look like (a raw delimiter of its own must not end what a decoding client shows).
   */
  private sidecars: Sidecar[] = [];

  constructor(
    private readonly h: WalkHandlers,
    private readonly budget: Budget,
    depth: number,
  ) {
    this.partIndex = budget.parts - 1;
    this.depth = depth;
  }

  private get where() {
    return { index: this.partIndex, depth: this.depth };
  }

  feed(chunk: Buffer): void {
    if (this.sidecars.length === 0) return this.feedOwn(chunk);
    // Line by line, so that each sidecar sees exactly the lines of its part.
    for (let from = 0; from < chunk.length; ) {
      const nl = chunk.indexOf(0x0a, from);
      const end = nl < 0 ? chunk.length : nl + 1;
      const piece = chunk.subarray(from, end);
      for (const side of this.sidecars) this.feedSidecar(side, piece);
      this.feedOwn(piece);
      from = end;
    }
  }

  private feedOwn(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      // Body lines that cannot be a delimiter or a uuencode `begin` are skipped without a copy (a `b`
      // line only matters to a bodyName handler).
      if (
        this.skipping ||
        (!this.inHeaders && !this.inner && this.lineLen === 0 && end > start && chunk[start] !== 0x2d && (chunk[start] !== 0x62 || !this.h.bodyName))
      ) {
        if (nl < 0) {
          this.skipping = true;
          return;
        }
        this.skipping = false;
        start = nl + 1;
        continue;
      }
      // A whole line of an encoded message in this chunk: decoded from where it lies, without a copy.
      if (this.inner && !this.inHeaders && !this.streaming && this.lineLen === 0 && nl >= 0 && !(chunk[start] === 0x2d && chunk[start + 1] === 0x2d)) {
        const line = chunk[end - 1] === 0x0d && end > start ? chunk.subarray(start, end - 1) : chunk.subarray(start, end);
        const { walker, decoder } = this.inner;
        walker.feed(decoder.write(line));
        walker.feed(decoder.endLine());
        start = nl + 1;
        continue;
      }
      if (end > start) this.take(chunk.subarray(start, end));
      if (nl < 0) return;
      const before = this.sidecars.length;
      this.endLine();
      start = nl + 1;
      // A sidecar began with this line: the rest of the chunk goes line by line.
      if (this.sidecars.length > before && this.sidecars.length === 1) {
        if (start < chunk.length) this.feed(chunk.subarray(start));
        return;
      }
    }
  }

  private feedSidecar(side: Sidecar, chunk: Buffer): void {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); ; nl = chunk.indexOf(0x0a, from)) {
      const end = nl < 0 ? chunk.length : nl;
      const line = chunk[end - 1] === 0x0d && end > from ? chunk.subarray(from, end - 1) : chunk.subarray(from, end);
      if (line.length > 0) side.walker.feed(side.decoder.write(line));
      if (nl < 0) break;
      side.walker.feed(side.decoder.endLine());
      from = nl + 1;
    }
  }

  private endSidecar(side: Sidecar): void {
    side.walker.feed(side.decoder.endLine());
    side.walker.end();
  }

  end(): void {
    for (const side of this.sidecars) this.endSidecar(side);
    this.sidecars = [];
    if (this.lineLen > 0 || this.line.length > 0 || this.streaming) this.endLine();
    // A header block the end of the message cuts short (no blank line): its last field counts too.
    if (this.inHeaders) {
      this.endField();
      this.endBlock();
    }
    this.endInner();
  }

  private take(bytes: Buffer): void {
    if (this.inHeaders) {
      this.countHeader(bytes.length);
      this.line.push(Buffer.from(bytes));
      this.lineLen += bytes.length;
      return;
    }
    if (this.streaming) {
      this.inner!.walker.feed(this.inner!.decoder.write(bytes));
      return;
    }
    const room = this.keep - this.lineLen;
    if (room > 0) {
      const keep = bytes.subarray(0, room);
      this.line.push(Buffer.from(keep));
      this.lineLen += keep.length;
    }
    // A long line of an encoded message: once its start shows it is no delimiter, pass it all on.
    if (this.inner && bytes.length > room) {
      const start = this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line, this.lineLen);
      if (!(start[0] === 0x2d && start[1] === 0x2d && this.delimiter(start))) {
        this.line = [];
        this.lineLen = 0;
        this.streaming = true;
        this.inner.walker.feed(this.inner.decoder.write(start));
        this.inner.walker.feed(this.inner.decoder.write(bytes.subarray(Math.max(room, 0))));
      }
    }
  }

  private countHeader(n: number): void {
    this.blockBytes += n;
    this.budget.headerBytes += n;
    if (this.blockBytes > MIME_LIMITS.blockBytes) throw new MimeLimitError('header-block');
    if (this.budget.headerBytes > MIME_LIMITS.totalHeaderBytes) throw new MimeLimitError('header-total');
  }

  private endLine(): void {
    if (this.streaming) {
      this.streaming = false;
      this.inner!.walker.feed(this.inner!.decoder.endLine());
      return;
    }
    let line = this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line, this.lineLen);
    this.line = [];
    this.lineLen = 0;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (this.inHeaders) {
      this.countHeader(1);
      this.headerLine(line);
    } else {
      this.bodyLine(line);
    }
  }

  private headerLine(line: Buffer): void {
    if (line.length === 0) {
      this.endField();
      this.endBlock();
      return;
    }
    // A part whose header block a boundary cuts short: clients end the part there, so do we.
    if (line[0] === 0x2d && line[1] === 0x2d && this.delimiter(line)) {
      this.endField();
      this.endBlock();
      this.boundary(line);
      return;
    }
    if ((line[0] === 0x20 || line[0] === 0x09) && this.field.length > 0) {
      this.field.push(line);
      return;
    }
    this.endField();
    this.field.push(line);
  }

  private endField(): void {
    if (this.field.length === 0) return;
    const first = this.field[0]!.toString('utf8');
    let value = '';
    const colon = first.indexOf(':');
    const name = colon > 0 ? first.slice(0, colon).trim().toLowerCase() : '';
    if (name !== '' && /^[!-9;-~]+$/.test(name)) {
      value = first.slice(colon + 1).trim();
      for (let i = 1; i < this.field.length; i++) {
        const cont = this.field[i]!.toString('utf8').trim();
        if (cont !== '') value = value === '' ? cont : `${value} ${cont}`;
      }
      if (name === 'content-type') this.cts.push(value);
      else if (name === 'content-disposition') this.cds.push(value);
      else if (name === 'content-transfer-encoding') this.ctes.push(value.toLowerCase());
      if (this.h.field?.(this.where, name, value)) throw new Stop();
    }
    this.field = [];
  }

  private endBlock(): void {
    const defaultType = this.parentDigest ? 'message/rfc822' : 'text/plain';
    const types = this.cts.map(mediaType);
    // The part as handlers see it, its names read every way, only when a handler looks at parts.
    if (this.h.part) {
      const firstDisp = this.cds.length > 0 ? parseHeaderValue(this.cds[0]!) : undefined;
      const firstType = this.cts.length > 0 ? parseHeaderValue(this.cts[0]!) : undefined;
      const primary = firstDisp?.params.get('filename') ?? firstType?.params.get('name');
      const part: MimePart = {
        index: this.partIndex,
        depth: this.depth,
        contentType: types[0] || defaultType,
        contentTypes: this.cts,
        dispositions: this.cds,
        filename: primary === undefined ? undefined : decodeEncodedWords(primary),
        names: candidateNames(this.cts, this.cds),
        disposition: firstDisp?.value.toLowerCase(),
      };
      if (this.h.part(part)) throw new Stop();
    }
    // Structure: a part any of whose Content-Type fields makes it a multipart is walked as one (with
    // every boundary given), else one that makes it a message is read as a message: inspecting more
    // than a client would is safe, less is not.
    const boundaries: string[] = [];
    const multiparts: string[] = [];
    this.cts.forEach((v, i) => {
      if (!/^multipart(?:\/|$)/.test(types[i]!)) return;
      multiparts.push(v);
      for (const b of boundaryValues(v)) {
        const trimmed = b.trim();
        if (trimmed === '') continue;
        boundaries.push(b);
        if (trimmed !== b) boundaries.push(trimmed);
      }
    });
    const isMessage = types.some((t) => MESSAGE_TYPES.has(t)) || (types.length === 0 && this.parentDigest);
    const encoding = this.ctes.find((e) => e === 'base64' || e === 'quoted-printable');
    this.cts = [];
    this.cds = [];
    this.ctes = [];
    this.inHeaders = false;
    if (boundaries.length > 0) {
      if (this.depth + 1 > MIME_LIMITS.depth) throw new MimeLimitError('depth');
      const frame: Frame = { childDepth: this.depth + 1, digest: types.includes('multipart/digest') };
      for (const b of boundaries) this.declare(b, frame);
      if (encoding) {
        // The standard forbids an encoded multipart, but some clients decode its body and show the
        // parts in there: the rest of the part is decoded and walked too, as this multipart's body.
        if (++this.budget.decoded > MAX_DECODED) throw new MimeLimitError('encoded');
        this.countPart();
        const walker = new Walker(this.h, this.budget, this.depth + 1);
        walker.feed(Buffer.from(`${multiparts.map((v) => `Content-Type: ${v}\n`).join('')}\n`, 'utf8'));
        this.sidecars.push({ walker, decoder: encoding === 'base64' ? base64Decoder() : quotedPrintableDecoder(), depth: this.depth });
      }
    } else if (isMessage) {
      if (this.depth + 1 > MIME_LIMITS.depth) throw new MimeLimitError('depth');
      if (encoding) {
        // The standard forbids an encoded message/rfc822, but clients decode it and show what is inside.
        this.countPart();
        const walker = new Walker(this.h, this.budget, this.depth + 1);
        this.inner = { walker, decoder: encoding === 'base64' ? base64Decoder() : quotedPrintableDecoder() };
      } else {
        this.startPart(this.depth + 1, false);
      }
    }
  }

  private countPart(): void {
    this.budget.parts++;
    if (this.budget.parts > MIME_LIMITS.parts) throw new MimeLimitError('parts');
  }

  private endInner(): void {
    if (!this.inner) return;
    const { walker } = this.inner;
    this.inner = undefined;
    walker.end();
  }

  private startPart(depth: number, parentDigest: boolean): void {
    this.endInner();
    this.countPart();
    this.partIndex = this.budget.parts - 1;
    this.depth = depth;
    this.parentDigest = parentDigest;
    this.inHeaders = true;
    this.blockBytes = 0;
  }

  /**
   * The multipart a delimiter line belongs to, and whether it is a close delimiter. Matching is as
   * lenient as the most lenient client: the longest declared boundary the line starts with (ASCII case
   * ignored), whatever follows it; `--` right after it closes. Every boundary seen stays recognised to
   * the end of the message: a close delimiter (or an outer one) does not hide the parts after it, so a
   * second boundary parameter or a stray `--b--` cannot end the walk of parts a client would still show.
   * The trie keeps the cost of a line to its own length, whatever the number of boundaries.
   */
  private delimiter(line: Buffer): { frame: Frame; close: boolean } | undefined {
    let node: TrieNode | undefined = this.boundaries;
    let found: Frame | undefined;
    let at = 2;
    for (let i = 2; i < line.length && node; i++) {
      node = node.next?.get(lower(line[i]!));
      if (node?.frame) {
        found = node.frame;
        at = i + 1;
      }
    }
    if (!found) return undefined;
    return { frame: found, close: line[at] === 0x2d && line[at + 1] === 0x2d };
  }

  private declare(boundary: string, frame: Frame): void {
    let node = this.boundaries;
    for (const b of Buffer.from(boundary, 'utf8')) {
      node.next ??= new Map();
      const k = lower(b);
      let child = node.next.get(k);
      if (!child) {
        child = {};
        node.next.set(k, child);
      }
      node = child;
    }
    node.frame = frame;
    this.keep = Math.max(this.keep, Buffer.byteLength(boundary, 'utf8') + 4);
  }

  private boundary(line: Buffer): boolean {
    const d = this.delimiter(line);
    if (!d) return false;
    // A delimiter of the multipart an encoded multipart is a part of (or of one above) ends that part,
    // for a decoding client too; its own boundary does not.
    if (this.sidecars.length > 0) {
      this.sidecars = this.sidecars.filter((side) => {
        if (d.frame.childDepth > side.depth) return true;
        this.endSidecar(side);
        return false;
      });
    }
    if (d.close) {
      this.endInner();
      this.inHeaders = false;
    } else {
      this.startPart(d.frame.childDepth, d.frame.digest);
    }
    return true;
  }

  private bodyLine(line: Buffer): void {
    if (line.length >= 3 && line[0] === 0x2d && line[1] === 0x2d) {
      if (this.boundary(line)) return;
    }
    if (this.inner) {
      const { walker, decoder } = this.inner;
      walker.feed(decoder.write(line));
      walker.feed(decoder.endLine());
      return;
    }
    if (line.length > 6 && line[0] === 0x62 && this.h.bodyName) {
      const m = UUENCODE_BEGIN.exec(line.toString('utf8'));
      if (m && this.h.bodyName(this.where, m[1]!)) throw new Stop();
    }
  }
}

/**
 * The message's bytes: a stream, or the chunks of a message view (MessageView.chunks: each is done with
 * before the next is asked for — the walker copies what it keeps of a line).
 */
type Source = Readable | AsyncIterable<Buffer>;

function isReadable(s: Source): s is Readable {
  return typeof (s as Readable).destroy === 'function';
}

/** What one pass over the message found. */
interface Pass {
  stopped: boolean;
  /** A CR not followed by LF was seen (some clients, Thunderbird among them, end a line there). */
  loneCR: boolean;
  /** The bound the pass stopped at. */
  limit?: MimeLimitError;
}

/** `chunk` with every lone CR followed by an LF; `state.cr` carries a CR that ended the previous chunk. */
function crAsLineEnd(chunk: Buffer, state: { cr: boolean }): Buffer {
  const lead = state.cr && chunk[0] !== 0x0a;
  state.cr = false;
  let first = chunk.indexOf(0x0d);
  while (first >= 0 && first < chunk.length - 1 && chunk[first + 1] === 0x0a) first = chunk.indexOf(0x0d, first + 1);
  if (first === chunk.length - 1) state.cr = true;
  if (!lead && (first < 0 || first === chunk.length - 1)) return chunk;
  // One buffer for the whole chunk (at most one LF added per byte), not a piece per line.
  const out = Buffer.allocUnsafe(chunk.length * 2 + 1);
  let n = 0;
  if (lead) out[n++] = 0x0a;
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i]!;
    out[n++] = b;
    if (b !== 0x0d) continue;
    if (i === chunk.length - 1) state.cr = true;
    else if (chunk[i + 1] !== 0x0a) out[n++] = 0x0a;
  }
  return out.subarray(0, n);
}

async function pass(stream: Source, handlers: WalkHandlers, signal: AbortSignal | undefined, crLines: boolean): Promise<Pass> {
  const w = new Walker(handlers, { parts: 1, headerBytes: 0, decoded: 0 }, 0);
  const result: Pass = { stopped: false, loneCR: false };
  const cr = { cr: false };
  let prevCR = false;
  let last = performance.now();
  try {
    for await (const c of stream) {
      let chunk = c as Buffer;
      if (chunk.length === 0) continue;
      if (!result.loneCR) {
        if (prevCR && chunk[0] !== 0x0a) result.loneCR = true;
        for (let i = chunk.indexOf(0x0d); i >= 0 && i < chunk.length - 1 && !result.loneCR; i = chunk.indexOf(0x0d, i + 1)) {
          if (chunk[i + 1] !== 0x0a) result.loneCR = true;
        }
        prevCR = chunk[chunk.length - 1] === 0x0d;
      }
      if (crLines) chunk = crAsLineEnd(chunk, cr);
      for (let off = 0; off < chunk.length; off += SLICE_BYTES) {
        signal?.throwIfAborted();
        w.feed(off === 0 && chunk.length <= SLICE_BYTES ? chunk : chunk.subarray(off, off + SLICE_BYTES));
        if (performance.now() - last > SLICE_MS) {
          await new Promise((r) => setImmediate(r));
          last = performance.now();
        }
      }
    }
    signal?.throwIfAborted();
    if (prevCR) result.loneCR = true; // the message ends with a CR
    if (crLines && cr.cr) w.feed(Buffer.from('\n'));
    w.end();
  } catch (err) {
    if (err instanceof MimeLimitError) result.limit = err;
    else if (err instanceof Stop) result.stopped = true;
    else throw err;
  } finally {
    // An iterator is closed by the loop itself (on a break or a throw in it); a stream is destroyed here.
    if (isReadable(stream)) stream.destroy();
  }
  return result;
}

/**
 * Walk the message, calling the handlers in order. Resolves when the message ended or a handler
 * stopped the walk; rejects with MimeLimitError at a hard bound, or with the signal's reason.
 *
 * Lines end at LF (qmail-smtpd has turned CRLF into LF); a lone CR stays in the message, and some
 * clients end a line there too, so a message that has one is walked a second time with lone CRs as
 * line ends (from a new stream of `source`): a boundary or a field only that reading shows is seen.
 * A bound met by either reading is reported after both, unless a handler stopped one of them. A
 * Readable given in place of `source` is walked once, with LF line ends only.
 */
export async function walkMime(source: Readable | (() => Source), handlers: WalkHandlers, signal?: AbortSignal): Promise<void> {
  const open = typeof source === 'function' ? source : () => source;
  const first = await pass(open(), handlers, signal, false);
  if (first.stopped) return;
  if (first.loneCR && typeof source === 'function') {
    const second = await pass(open(), handlers, signal, true);
    if (second.stopped) return;
    if (second.limit && !first.limit) throw second.limit;
  }
  if (first.limit) throw first.limit;
}
