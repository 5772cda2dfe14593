// A bounded reading of a stored message's MIME tree for the preview: the first bytes of the message
// (a cap), at most so many parts and levels of nesting, bodies kept as slices of those bytes and
// decoded (base64, quoted-printable, charset) only when shown. What a cap cut is said, never hidden.
// The filters' walk (src/mime/walk.ts) reads every way a client could; this one reads the common way,
// once: it only decides what the preview shows, not what is let through.

import { charsetReadings, decodeEncodedWords, parseHeaderValue } from '../mime/words.js';

export interface PreviewLimits {
  /** Bytes of the message read at most. */
  readonly readBytes: number;
  /** Parts (header blocks, the message's own included) read at most. */
  readonly parts: number;
  /** Levels of multiparts and attached messages followed at most. */
  readonly depth: number;
  /** Characters of the text shown at most. */
  readonly textChars: number;
  /** Bytes of HTML (decoded) sanitized at most: about half a second of the console's one thread at most. */
  readonly htmlBytes: number;
  /** An inline (cid:) image is shown as a data: URI only up to this size (decoded)... */
  readonly inlineImageBytes: number;
  /** ...and all of them together up to this. */
  readonly inlineImagesTotal: number;
  /** Characters of one header value or attachment name at most. */
  readonly fieldChars: number;
  /** Attachments listed at most. */
  readonly attachments: number;
}

export const PREVIEW_LIMITS: PreviewLimits = {
  readBytes: 8 * 1024 * 1024,
  parts: 1000,
  depth: 32,
  textChars: 200_000,
  htmlBytes: 1024 * 1024,
  inlineImageBytes: 512 * 1024,
  inlineImagesTotal: 4 * 1024 * 1024,
  fieldChars: 998,
  attachments: 500,
};

export interface Part {
  readonly index: number;
  readonly depth: number;
  /** Header fields in order: name lower-cased, value unfolded, as UTF-8 text (not RFC 2047-decoded). */
  readonly fields: readonly (readonly [string, string])[];
  /** Media type, lower-cased ('text/plain' when none or unreadable). */
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
  /** Content-Transfer-Encoding, lower-cased ('7bit' when none). */
  readonly encoding: string;
  /** 'attachment', 'inline' or undefined (no Content-Disposition). */
  readonly disposition?: string;
  /** The file name (Content-Disposition filename=, else Content-Type name=), RFC 2231 and 2047-decoded. */
  readonly filename?: string;
  /** Content-ID without its angle brackets. */
  readonly contentId?: string;
  /** The raw (still transfer-encoded) body: a slice of the bytes read. */
  readonly body: Buffer;
  /** The body goes on past the bytes read. */
  readonly cut: boolean;
  /** A multipart's parts, or an attached message (message/rfc822) as its one child. */
  readonly children: readonly Part[];
}

export interface ParsedMessage {
  readonly root: Part;
  /** What the caps left out, in words ('' entries never). */
  readonly truncated: readonly string[];
}

const MESSAGE_TYPES = new Set(['message/rfc822', 'message/global']);
const TOKEN_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;

/** Where the header block ends: [end of the fields, start of the body]. */
function splitHead(buf: Buffer): [number, number] {
  if (buf[0] === 0x0a) return [0, 1];
  if (buf[0] === 0x0d && buf[1] === 0x0a) return [0, 2];
  const lf = buf.indexOf('\n\n');
  const crlf = buf.indexOf('\n\r\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return [crlf + 1, crlf + 3];
  if (lf >= 0) return [lf + 1, lf + 2];
  return [buf.length, buf.length];
}

const utf8 = new TextDecoder('utf-8');

function readFields(head: Buffer): [string, string][] {
  const fields: [string, string][] = [];
  for (const raw of utf8.decode(head).split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      const last = fields[fields.length - 1]!;
      const more = line.trim();
      if (more !== '') last[1] = last[1] === '' ? more : `${last[1]} ${more}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[!-9;-~]+$/.test(name)) continue;
    fields.push([name, line.slice(colon + 1).trim()]);
  }
  return fields;
}

function first(fields: readonly (readonly [string, string])[], name: string): string | undefined {
  for (const [n, v] of fields) if (n === name) return v;
  return undefined;
}

interface State {
  parts: number;
  readonly limits: PreviewLimits;
  readonly truncated: Set<string>;
}

/** The delimiter lines of `boundary` in `body`: the parts between them (preamble and epilogue left out). */
function splitMultipart(body: Buffer, boundary: string, state: State): { parts: [number, number][]; closed: boolean } {
  const dash = Buffer.from(`--${boundary}`, 'utf8');
  const parts: [number, number][] = [];
  let start = -1;
  let pos = 0;
  for (;;) {
    const at = body.indexOf(dash, pos);
    if (at < 0) break;
    pos = at + 1;
    if (at > 0 && body[at - 1] !== 0x0a) continue;
    let after = at + dash.length;
    const close = body[after] === 0x2d && body[after + 1] === 0x2d;
    if (close) after += 2;
    // The rest of a delimiter line is white space only; a longer boundary is another multipart's.
    let eol = after;
    while (eol < body.length && (body[eol] === 0x20 || body[eol] === 0x09 || body[eol] === 0x0d)) eol++;
    if (eol < body.length && body[eol] !== 0x0a) continue;
    if (start >= 0) {
      // The line break before the delimiter belongs to it.
      let end = at > 0 ? at - 1 : 0;
      if (end > start && body[end - 1] === 0x0d) end--;
      parts.push([start, Math.max(start, end)]);
    }
    if (close) return { parts, closed: true };
    start = Math.min(eol + 1, body.length);
    if (parts.length >= state.limits.parts) {
      state.truncated.add(`more than ${state.limits.parts} parts: the rest are not shown`);
      return { parts, closed: true };
    }
  }
  if (start >= 0) parts.push([start, body.length]);
  return { parts, closed: false };
}

function parsePart(buf: Buffer, cut: boolean, depth: number, state: State, defaultType: string): Part {
  const index = state.parts++;
  const [fieldsEnd, bodyStart] = splitHead(buf);
  const fields = readFields(buf.subarray(0, fieldsEnd));
  const ct = first(fields, 'content-type');
  const parsedType = ct === undefined ? undefined : parseHeaderValue(ct);
  let type = parsedType?.value.toLowerCase().replace(/\s+/g, '') ?? defaultType;
  if (!TOKEN_TYPE.test(type)) type = type.startsWith('multipart/') || type === '' ? defaultType : 'application/octet-stream';
  const params = parsedType?.params ?? new Map<string, string>();
  const cd = first(fields, 'content-disposition');
  const parsedDisp = cd === undefined ? undefined : parseHeaderValue(cd);
  const rawName = parsedDisp?.params.get('filename') ?? params.get('name');
  const cid = first(fields, 'content-id')?.trim().replace(/^<(.*)>$/, '$1');
  const body = buf.subarray(bodyStart);
  const children: Part[] = [];
  const part: Part = {
    index,
    depth,
    fields,
    type,
    params,
    encoding: (first(fields, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase(),
    disposition: parsedDisp?.value.toLowerCase(),
    filename: rawName === undefined ? undefined : decodeEncodedWords(rawName),
    contentId: cid === '' ? undefined : cid,
    body,
    cut,
    children,
  };
  const room = () => state.parts < state.limits.parts;
  const boundary = params.get('boundary');
  if (type.startsWith('multipart/') && boundary !== undefined && boundary !== '') {
    if (depth >= state.limits.depth) {
      state.truncated.add(`parts nested more than ${state.limits.depth} levels deep are not shown`);
      return part;
    }
    const { parts, closed } = splitMultipart(body, boundary, state);
    const childType = type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    for (let i = 0; i < parts.length; i++) {
      if (!room()) {
        state.truncated.add(`more than ${state.limits.parts} parts: the rest are not shown`);
        break;
      }
      const [from, to] = parts[i]!;
      const last = i === parts.length - 1;
      children.push(parsePart(body.subarray(from, to), cut && last && !closed, depth + 1, state, childType));
    }
  } else if (MESSAGE_TYPES.has(type) && (part.encoding === '7bit' || part.encoding === '8bit' || part.encoding === 'binary')) {
    if (depth >= state.limits.depth) {
      state.truncated.add(`parts nested more than ${state.limits.depth} levels deep are not shown`);
    } else if (!room()) {
      state.truncated.add(`more than ${state.limits.parts} parts: the rest are not shown`);
    } else {
      children.push(parsePart(body, cut, depth + 1, state, 'text/plain'));
    }
  }
  return part;
}

/** Parse the bytes read of a message (`cut`: the message goes on past them). */
export function parseMessage(bytes: Buffer, cut: boolean, limits: PreviewLimits = PREVIEW_LIMITS): ParsedMessage {
  const state: State = { parts: 0, limits, truncated: new Set() };
  if (cut) state.truncated.add(`only the first ${formatBytes(bytes.length)} of the message were read`);
  const root = parsePart(bytes, cut, 0, state, 'text/plain');
  return { root, truncated: [...state.truncated] };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MB`;
}

// --- bodies ---------------------------------------------------------------------------------------

const B64 = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')) B64[c] = 1;

function decodeBase64(raw: Buffer): Buffer {
  // Only the alphabet counts: line breaks, stray characters and padding in the middle are skipped,
  // as clients do; a trailing partial group is dropped.
  const clean = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) if (B64[raw[i]!] === 1) clean[n++] = raw[i]!;
  n -= n % 4 === 1 ? 1 : 0;
  return Buffer.from(clean.subarray(0, n).toString('latin1'), 'base64');
}

const HEX = (b: number) => (b >= 0x30 && b <= 0x39 ? b - 0x30 : b >= 0x41 && b <= 0x46 ? b - 55 : b >= 0x61 && b <= 0x66 ? b - 87 : -1);

function decodeQuotedPrintable(raw: Buffer): Buffer {
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b !== 0x3d) {
      out[n++] = b;
      continue;
    }
    const h = HEX(raw[i + 1] ?? -1);
    const l = HEX(raw[i + 2] ?? -1);
    if (h >= 0 && l >= 0) {
      out[n++] = h * 16 + l;
      i += 2;
      continue;
    }
    // A soft line break: '=' then white space to the end of the line.
    let j = i + 1;
    while (raw[j] === 0x20 || raw[j] === 0x09 || raw[j] === 0x0d) j++;
    if (j >= raw.length || raw[j] === 0x0a) {
      i = j;
      continue;
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}

/** The body's bytes, transfer encoding undone. */
export function decodedBody(part: Part): Buffer {
  if (part.encoding === 'base64') return decodeBase64(part.body);
  if (part.encoding === 'quoted-printable') return decodeQuotedPrintable(part.body);
  return part.body;
}

/** The decoded size of the body, without decoding a base64 one. */
export function decodedSize(part: Part): number {
  if (part.encoding === 'base64') {
    let n = 0;
    for (let i = 0; i < part.body.length; i++) n += B64[part.body[i]!]!;
    return Math.floor((n * 3) / 4);
  }
  if (part.encoding === 'quoted-printable') return decodeQuotedPrintable(part.body).length;
  return part.body.length;
}

/** `bytes` as text in `charset` (UTF-8 when none; UTF-7, UTF-16 and unknown charsets read as words.ts does). */
export function decodeText(bytes: Uint8Array, charset: string | undefined): string {
  const text = charsetReadings(bytes, charset ?? 'utf-8')[0]!;
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

// eslint-disable-next-line no-control-regex
const TEXT_CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;
// eslint-disable-next-line no-control-regex
const FIELD_CONTROLS = /[\x00-\x1f\x7f-\x9f]+/g;

/** Text for a <pre>: line ends as LF, control characters but tab and line feed dropped. */
export function cleanText(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(TEXT_CONTROLS, '');
}

/**
 * A header value or a file name as one line of plain text: RFC 2047 decoded (when `decode`), control
 * characters as one space, format characters (bidi overrides, zero-width) shown as U+FFFD so that a
 * name cannot read backwards, cut at `max` characters.
 */
export function cleanField(s: string, max: number, decode = true): string {
  let v = (decode ? decodeEncodedWords(s) : s).replace(FIELD_CONTROLS, ' ').replace(/\p{Cf}/gu, '\uFFFD').trim();
  if (v.length > max) v = `${v.slice(0, max)}…`;
  return v;
}
