// Header values with parameters (RFC 2045, with RFC 2231 continuations and charsets) and RFC 2047
// encoded words: what attachment names are made of.

export interface HeaderValue {
  readonly value: string;
  /** Parameter names lower-cased; values decoded (RFC 2231) but not RFC 2047-decoded. */
  readonly params: Map<string, string>;
}

function decodeBytes(bytes: Uint8Array, charset: string): string {
  try {
    return new TextDecoder(charset.trim().toLowerCase() || 'utf-8').decode(bytes);
  } catch {
    return Buffer.from(bytes).toString('latin1');
  }
}

function percentDecode(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c & 0xff);
  }
  return Uint8Array.from(out);
}

/** Split `type/subtype; a=b; c="d; e"` into the value and its raw parameters. */
function tokenize(header: string): { value: string; raw: [string, string][] } {
  const raw: [string, string][] = [];
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
    if (header[i] === '"') {
      i++;
      while (i < header.length && header[i] !== '"') {
        if (header[i] === '\\' && i + 1 < header.length) i++;
        v += header[i];
        i++;
      }
      i++; // closing quote
      const next = header.indexOf(';', i);
      i = next < 0 ? header.length : next;
    } else {
      const next = header.indexOf(';', i);
      v = (next < 0 ? header.slice(i) : header.slice(i, next)).trim();
      i = next < 0 ? header.length : next;
    }
    if (name !== '') raw.push([name, v]);
  }
  return { value, raw };
}

export function parseHeaderValue(header: string): HeaderValue {
  const { value, raw } = tokenize(header);
  const params = new Map<string, string>();
  // RFC 2231: name*=charset'lang'%xx, name*0=..., name*1*=...
  const pieces = new Map<string, { n: number; v: string; enc: boolean }[]>();
  for (const [name, v] of raw) {
    const m = /^([^*]+)\*(?:(\d+)\*?|)$/.exec(name);
    const star = /\*$/.test(name);
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
    let charset = '';
    const bytes: number[] = [];
    for (const [idx, p] of list.entries()) {
      let v = p.v;
      if (p.enc) {
        if (idx === 0) {
          const q = /^([^']*)'[^']*'(.*)$/.exec(v);
          if (q) {
            charset = q[1]!;
            v = q[2]!;
          }
        }
        bytes.push(...percentDecode(v));
      } else bytes.push(...Buffer.from(v, 'latin1'));
    }
    // An extended parameter wins over a plain one of the same name (RFC 2231 §4).
    params.set(base, charset ? decodeBytes(Uint8Array.from(bytes), charset) : Buffer.from(bytes).toString('utf8'));
  }
  return { value, params };
}

function qDecode(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '_') out.push(0x20);
    else if (s[i] === '=' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i) & 0xff);
  }
  return Uint8Array.from(out);
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

/** Decode RFC 2047 encoded words; whitespace between adjacent encoded words is dropped. */
export function decodeEncodedWords(s: string): string {
  const joined = s.replace(/(\?=)\s+(=\?)/g, '$1$2');
  return joined.replace(ENCODED_WORD, (_all, charset: string, enc: string, text: string) => {
    const cs = charset.split('*')[0]!; // RFC 2231 language suffix
    let bytes: Uint8Array;
    if (enc.toLowerCase() === 'b') bytes = Buffer.from(text, 'base64');
    else bytes = qDecode(text);
    return decodeBytes(bytes, cs);
  });
}
