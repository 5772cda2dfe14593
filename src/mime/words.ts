// Header values with parameters (RFC 2045, with RFC 2231 continuations and charsets) and RFC 2047
// encoded words: what attachment names are made of.

export interface HeaderValue {
  readonly value: string;
  /** Parameter names lower-cased; values decoded (RFC 2231) but not RFC 2047-decoded. */
  readonly params: Map<string, string>;
}

function decodeBytes(bytes: Uint8Array, charset: string): string {
  return charsetReadings(bytes, charset)[0]!;
}

const UTF16 = new Set(['utf-16', 'utf16', 'ucs-2', 'ucs2', 'unicode', 'iso-10646-ucs-2', 'csunicode']);
const UTF7 = new Set(['utf-7', 'utf7', 'unicode-1-1-utf-7', 'csunicode11utf7', 'x-unicode20utf7']);
const BASE64_CHAR = /[A-Za-z0-9+/]/;

/** UTF-7 (RFC 2152), which Outlook and Thunderbird decode though no standard lets mail use it. */
function utf7(bytes: Uint8Array): string {
  const s = Buffer.from(bytes).toString('latin1');
  let out = '';
  for (let i = 0; i < s.length; ) {
    if (s[i] !== '+') {
      out += s[i++];
      continue;
    }
    let j = i + 1;
    while (j < s.length && BASE64_CHAR.test(s[j]!)) j++;
    if (j === i + 1) out += '+'; // `+-` is a plus sign
    else {
      const b = Buffer.from(s.slice(i + 1, j), 'base64');
      out += new TextDecoder('utf-16be').decode(b.subarray(0, b.length - (b.length % 2)));
    }
    i = s[j] === '-' ? j + 1 : j;
  }
  return out;
}

/**
 * Every way a client could decode `bytes` in `charset`, the reading the standard gives first: UTF-16
 * without a byte order mark big-endian (RFC 2781) and little-endian (what Windows writes), UTF-7,
 * and a charset this runtime does not know as Latin-1 and as UTF-8.
 */
export function charsetReadings(bytes: Uint8Array, charset: string): string[] {
  const cs = charset.trim().toLowerCase() || 'utf-8';
  if (UTF7.has(cs)) return [utf7(bytes)];
  if (UTF16.has(cs)) {
    if (bytes[0] === 0xfe && bytes[1] === 0xff) return [new TextDecoder('utf-16be').decode(bytes.subarray(2))];
    if (bytes[0] === 0xff && bytes[1] === 0xfe) return [new TextDecoder('utf-16le').decode(bytes.subarray(2))];
    return [new TextDecoder('utf-16be').decode(bytes), new TextDecoder('utf-16le').decode(bytes)];
  }
  const decoder = decoderFor(cs);
  if (decoder) return [decoder.decode(bytes)];
  return [Buffer.from(bytes).toString('latin1'), Buffer.from(bytes).toString('utf8')];
}

/**
 * A decoder per charset label, made once: making a TextDecoder costs far more than a short decode with
 * it (a non-streaming decode keeps no state). undefined for a label this runtime does not know.
 */
type Decoder = InstanceType<typeof TextDecoder>;
const DECODERS = new Map<string, Decoder | undefined>();
const MAX_DECODERS = 256;
function decoderFor(label: string): Decoder | undefined {
  if (DECODERS.has(label)) return DECODERS.get(label);
  let decoder: Decoder | undefined;
  try {
    decoder = new TextDecoder(label);
  } catch {
    decoder = undefined;
  }
  // Labels come from mail: a message with thousands of made-up ones must not grow the map for ever.
  if (DECODERS.size >= MAX_DECODERS) DECODERS.clear();
  DECODERS.set(label, decoder);
  return decoder;
}

/** %XX escapes to bytes; anything else (8-bit text where the standard wants none) as its UTF-8 bytes. */
function percentDecode(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const c = s.charCodeAt(i);
      if (c < 0x80) out.push(c);
      else out.push(...Buffer.from(s[i]!, 'utf8'));
    }
  }
  return Uint8Array.from(out);
}

/**
 * Split `type/subtype; a=b; c="d; e"` into the value and its raw parameters: [name, value, quoted,
 * text between a closing quote and the next ';' (which some parsers append)].
 */
type Tokens = { readonly value: string; readonly raw: readonly (readonly [string, string, boolean, string])[] };

/**
 * The last headers tokenized and what they gave: a part's Content-Type and Content-Disposition are each
 * read for several parameters in a row. The results are only read, never changed.
 */
const recentTokens: [string, Tokens][] = [];

function tokenize(header: string): Tokens {
  for (const [h, t] of recentTokens) if (h === header) return t;
  const t = tokenizeNow(header);
  if (recentTokens.length >= 2) recentTokens.shift();
  recentTokens.push([header, t]);
  return t;
}

function tokenizeNow(header: string): Tokens {
  const raw: [string, string, boolean, string][] = [];
  let i = header.indexOf(';');
  const value = (i < 0 ? header : header.slice(0, i)).trim();
  if (i < 0) return { value, raw };
  while (i < header.length) {
    i++; // past ';'
    while (i < header.length && /\s/.test(header[i]!)) i++;
    const eq = header.indexOf('=', i);
    const semi = header.indexOf(';', i);
    if (eq < 0 || (semi >= 0 && semi < eq)) {
      if (semi < 0) break;
      i = semi;
      continue;
    }
    const name = header.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (i < header.length && /\s/.test(header[i]!)) i++;
    let v = '';
    let tail = '';
    const quoted = header[i] === '"';
    if (quoted) {
      i++;
      while (i < header.length && header[i] !== '"') {
        if (header[i] === '\\' && i + 1 < header.length) i++;
        v += header[i];
        i++;
      }
      i++; // closing quote
      const next = header.indexOf(';', i);
      tail = (next < 0 ? header.slice(i) : header.slice(i, next)).trim();
      i = next < 0 ? header.length : next;
    } else {
      const next = header.indexOf(';', i);
      v = (next < 0 ? header.slice(i) : header.slice(i, next)).trim();
      i = next < 0 ? header.length : next;
    }
    if (name !== '') raw.push([name, v, quoted, tail]);
  }
  return { value, raw };
}

export function parseHeaderValue(header: string): HeaderValue {
  const { value, raw } = tokenize(header);
  const params = new Map<string, string>();
  // RFC 2231: name*=charset'lang'%xx, name*0=..., name*1*=...
  const pieces = new Map<string, { n: number; v: string; enc: boolean }[]>();
  for (const [name, v] of raw) {
    // A name without a '*' is a plain parameter (the RFC 2231 forms all have one).
    const m = name.includes('*') ? /^([^*]+)\*(?:(\d+)\*?|)$/.exec(name) : null;
    const star = name.endsWith('*');
    if (!m) {
      if (!params.has(name)) params.set(name, v);
      continue;
    }
    const base = m[1]!;
    const n = m[2] === undefined ? 0 : Number(m[2]);
    const list = pieces.get(base) ?? [];
    list.push({ n, v, enc: star });
    pieces.set(base, list);
  }
  for (const [base, list] of pieces) {
    list.sort((a, b) => a.n - b.n);
    const { bytes, charset } = joinContinuations(list);
    // An extended parameter wins over a plain one of the same name (RFC 2231 §4).
    params.set(base, charset ? decodeBytes(bytes, charset) : bytes.toString('utf8'));
  }
  return { value, params };
}

/**
 * The bytes of RFC 2231 continuations in order: percent-decoded where extended (`name*N*=`), as written
 * where not; the charset from the first piece's `charset'language'` prefix ('' when none).
 */
function joinContinuations(list: readonly { v: string; enc: boolean }[]): { bytes: Buffer; charset: string } {
  let charset = '';
  const bytes: Buffer[] = [];
  list.forEach((p, idx) => {
    let v = p.v;
    if (p.enc) {
      if (idx === 0) {
        const q = /^([^']*)'[^']*'(.*)$/.exec(v);
        if (q) {
          charset = q[1]!;
          v = q[2]!;
        }
      }
      bytes.push(Buffer.from(percentDecode(v)));
    } else bytes.push(Buffer.from(v, 'utf8'));
  });
  return { bytes: Buffer.concat(bytes), charset };
}

/** The value of a hex digit's char code, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function qDecode(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const hi = c === 0x3d && i + 2 < s.length ? hexDigit(s.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hexDigit(s.charCodeAt(i + 2)) : -1;
    if (c === 0x5f) out[n++] = 0x20;
    else if (lo >= 0) {
      out[n++] = hi * 16 + lo;
      i += 2;
    } else out[n++] = c & 0xff;
  }
  return out.subarray(0, n);
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
/** What a lenient decoder takes for an encoded word: white space inside it too. */
const LOOSE_ENCODED_WORD = /=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g;

interface Word {
  readonly charset: string;
  readonly bytes: Uint8Array;
}

/**
 * `s` with its encoded words decoded: [in each charset's first reading, in its last] (they differ only
 * where charsetReadings gives more than one).
 */
function decodeWords(s: string, pattern: RegExp): [string, string] {
  let out = '';
  let alt = '';
  let pending: Word[] = [];
  const flush = () => {
    let i = 0;
    while (i < pending.length) {
      let j = i;
      const cs = pending[i]!.charset;
      while (j + 1 < pending.length && pending[j + 1]!.charset === cs) j++;
      const readings = charsetReadings(Buffer.concat(pending.slice(i, j + 1).map((w) => w.bytes)), cs);
      out += readings[0]!;
      alt += readings[readings.length - 1]!;
      i = j + 1;
    }
    pending = [];
  };
  let pos = 0;
  for (const m of s.matchAll(pattern)) {
    const between = s.slice(pos, m.index);
    if (pending.length === 0 || !/^[ \t\r\n]*$/.test(between)) {
      flush();
      out += between;
      alt += between;
    }
    const cs = m[1]!.trim().split('*')[0]!.toLowerCase(); // RFC 2231 language suffix
    const text = m[3]!;
    pending.push({ charset: cs, bytes: m[2]!.toLowerCase() === 'b' ? Buffer.from(text.replace(/\s+/g, ''), 'base64') : qDecode(text) });
    pos = m.index + m[0].length;
  }
  flush();
  const rest = s.slice(pos);
  return [out + rest, alt + rest];
}

/**
 * Decode RFC 2047 encoded words. White space between adjacent encoded words is dropped, and adjacent
 * words in the same charset are joined as bytes before decoding, so a character split across two
 * words decodes as one.
 */
export function decodeEncodedWords(s: string): string {
  if (!s.includes('=?')) return s;
  return decodeWords(s, ENCODED_WORD)[0];
}

/**
 * Every text a client could show for `s`: encoded words decoded strictly and leniently (white space
 * inside a word), each in every reading of its charset (charsetReadings). The first is
 * decodeEncodedWords(s).
 */
export function encodedWordReadings(s: string): string[] {
  if (!s.includes('=?')) return [s];
  const out = new Set<string>();
  for (const pattern of [ENCODED_WORD, LOOSE_ENCODED_WORD]) for (const reading of decodeWords(s, pattern)) out.add(reading);
  return [...out];
}

/** The ways a sequence of RFC 2231 pieces can be read, as text. */
function assemble(list: { n: number; v: string; enc: boolean }[]): string[] {
  const sorted = [...list].sort((a, b) => a.n - b.n);
  const readings: (typeof sorted)[] = [sorted];
  // A client may stop at a gap in the numbering, or keep the first (or the last) of a repeated number.
  const firstOfEach = sorted.filter((p, i) => i === 0 || sorted[i - 1]!.n !== p.n);
  const lastOfEach = sorted.filter((p, i) => i === sorted.length - 1 || sorted[i + 1]!.n !== p.n);
  readings.push(firstOfEach, lastOfEach);
  const contiguous: typeof sorted = [];
  for (const p of firstOfEach) {
    if (p.n !== contiguous.length) break;
    contiguous.push(p);
  }
  if (contiguous.length > 0) readings.push(contiguous);
  const out = new Set<string>();
  for (const r of readings) {
    const { bytes: all, charset } = joinContinuations(r);
    if (charset) for (const v of charsetReadings(all, charset)) out.add(v);
    out.add(all.toString('utf8'));
    out.add(all.toString('latin1'));
  }
  return [...out];
}

/** Plain and extended (RFC 2231) values of parameter `base`, grouped. */
function pieces(header: string, base: string) {
  const { raw } = tokenize(header);
  const plain: { v: string; quoted: boolean; tail: string }[] = [];
  const extended: { n: number; v: string; enc: boolean }[] = [];
  for (const [name, v, quoted, tail] of raw) {
    if (name === base) {
      plain.push({ v, quoted, tail });
      continue;
    }
    if (!name.startsWith(`${base}*`)) continue;
    const m = /^\*(?:(\d+)(\*?)|)$/.exec(name.slice(base.length));
    if (!m) continue;
    if (m[1] === undefined) extended.push({ n: 0, v, enc: true });
    else extended.push({ n: Number(m[1]), v, enc: m[2] === '*' });
  }
  return { plain, extended };
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** A header value as written and, when it has control characters, cut at its NUL (C parsers) and without them (parsers that drop them). */
function headerReadings(header: string): string[] {
  if (!CONTROL.test(header)) return [header];
  return [...new Set([header, header.split('\0')[0]!, header.replace(CONTROLS, '')])];
}

/**
 * The readings of one plain occurrence of a parameter: as written; unless `strict`, for a quoted value
 * what a parser that splits at every ';' keeps and what one that appends the text after the closing
 * quote makes; without RFC 822 comments (and then without the quotes they hid), which RFC 2045 allows
 * in the field and parsers that follow it drop.
 */
function plainReadings(p: { v: string; quoted: boolean; tail: string }, out: Set<string>, strict = false): void {
  out.add(p.v);
  if (!strict && p.quoted && p.v.includes(';')) out.add(p.v.slice(0, p.v.indexOf(';')));
  if (!strict && p.tail !== '') out.add(p.v + p.tail);
  if (!p.quoted && p.v.includes('(')) {
    const bare = p.v.replace(/\([^()]*\)/g, '').trim();
    out.add(bare);
    const q = /^"(.*)"$/.exec(bare);
    if (q) out.add(q[1]!);
  }
}

/**
 * Every `boundary` a client could take from a Content-Type value (no naive reading: each is declared
 * as a prefix of delimiter lines, and a short naive one would make body lines delimiters).
 */
export function boundaryValues(header: string): string[] {
  const out = new Set<string>();
  for (const h of headerReadings(header)) {
    const { plain, extended } = pieces(h, 'boundary');
    for (const p of plain) plainReadings(p, out, true);
    if (extended.length > 0) for (const v of assemble(extended)) out.add(v);
  }
  return [...out];
}

/**
 * Every value a client could take for parameter `base` of a header value: each occurrence of the
 * parameter (plainReadings), each reading of its RFC 2231 form (charset, continuations), each also
 * RFC 2047-decoded every way (clients decode encoded words in names even where the standard does not
 * allow them) and percent-decoded (as some clients do to any name); all of it also for the value cut
 * at a NUL and without its control characters.
 */
export function paramValues(header: string, base: string): string[] {
  const out = new Set<string>();
  for (const h of headerReadings(header)) {
    const { plain, extended } = pieces(h, base);
    for (const p of plain) plainReadings(p, out);
    if (extended.length > 0) for (const v of assemble(extended)) out.add(v);
  }
  for (const v of [...out]) {
    for (const d of encodedWordReadings(v)) out.add(d);
    if (/%[0-9a-fA-F]{2}/.test(v)) out.add(Buffer.from(percentDecode(v)).toString('utf8'));
  }
  return [...out];
}
