// Header fields NQqueue writes: plugin headers checked for line breaks, and the trace header.

import type { HeaderField, Result } from './types.js';

const FIELD_NAME = /^[!-9;-~]{1,76}$/;

/**
 * Render plugin headers as `Name: value\n` lines. A value may be folded ("\n" followed by a space or
 * a tab); any other line break or control character is refused — nothing from a plugin, an address
 * or a message may start a header of its own.
 */
export function renderHeaders(fields: readonly HeaderField[]): Buffer {
  let out = '';
  for (const f of fields) {
    if (!FIELD_NAME.test(f.name)) throw new Error(`invalid header name ${JSON.stringify(f.name)}`);
    const value = f.value.replace(/\r\n/g, '\n');
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0b-\x1f\x7f]/.test(value)) throw new Error(`header ${f.name}: control character in value`);
    if (/\n(?![ \t])/.test(value) || value.endsWith('\n')) throw new Error(`header ${f.name}: line break in value`);
    out += `${foldLong(`${f.name}: ${value}`)}\n`;
  }
  return Buffer.from(out, 'utf8');
}

/** RFC 5322 allows 998 bytes a line; NQqueue keeps its lines shorter than this. */
export const MAX_LINE = 990;
/** Where a long line is folded (RFC 5322's recommended line length). */
const FOLD_AT = 78;

/**
 * A header field (with its existing folds) whose every line is at most MAX_LINE bytes. Lines already
 * short enough are kept as they are. A longer line is folded before its spaces and tabs at about 78
 * columns (unfolding gives the value back exactly); a run of more than MAX_LINE bytes without any is
 * broken every MAX_LINE bytes with a newline and a tab (a long header line is never a reason to refuse
 * or defer a message — spamd writes such runs when a rule list has no spaces in it).
 */
export function foldLong(field: string): string {
  return field
    .split('\n')
    .map((line, i) => (Buffer.byteLength(line) <= MAX_LINE ? line : foldLine(line, i === 0)))
    .join('\n');
}

function foldLine(line: string, first: boolean): string {
  // Pieces that each start at a space or tab (the first one at the line's start).
  const pieces = line.split(/(?=[ \t])/);
  if (first) {
    // The field name keeps the first word of its value on its line.
    let k = 1;
    while (k < pieces.length - 1 && /^[ \t]+$/.test(pieces[k]!)) k++;
    pieces.splice(0, k + 1, pieces.slice(0, k + 1).join(''));
  }
  const out: string[] = [];
  let current = '';
  for (const p of pieces) {
    // A piece of only white space stays on its line: a continuation line must hold something else.
    if (current !== '' && !/^[ \t]+$/.test(p) && Buffer.byteLength(current) + Buffer.byteLength(p) > FOLD_AT) {
      out.push(current);
      current = p;
    } else current += p;
  }
  out.push(current);
  return out.flatMap(hardBreak).join('\n');
}

/** A line with no room to fold: cut every MAX_LINE bytes (on a character boundary), each cut + a tab. */
function hardBreak(line: string): string[] {
  if (Buffer.byteLength(line) <= MAX_LINE) return [line];
  const parts: string[] = [];
  let current = '';
  let bytes = 0;
  for (const ch of line) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_LINE) {
      parts.push(current);
      current = '\t';
      bytes = 1;
    }
    current += ch;
    bytes += n;
  }
  parts.push(current);
  return parts;
}

/** RFC 5322 date-time in UTC. */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(
    d.getUTCMinutes(),
  )}:${p(d.getUTCSeconds())} +0000`;
}

/** Only characters that are safe inside a header comment. */
function commentSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._:+/@-]/g, '_');
}

function describe(r: Result): string {
  // A plugin an allow list entry spared: it did not run, and the header says so.
  if (r.details.skipped === 'allowed') return `${commentSafe(r.plugin)}=skipped`;
  let s = `${commentSafe(r.plugin)}=${r.verdict}`;
  if (r.score !== undefined && Number.isFinite(r.score)) s += `/${Number(r.score.toFixed(2))}`;
  if (r.error !== undefined) s += '/failed';
  return s;
}

export function safeHostname(h: string | undefined): string {
  const clean = (h ?? '').replace(/[^A-Za-z0-9.-]/g, '');
  return clean === '' ? 'localhost' : clean.slice(0, 253);
}

/**
 * The trace header of one delivered copy (the 2008 `Received: by nqqueue ... scanners:` line, valid
 * RFC 5322): which plugins ran for this copy and what they said, folded at about 78 columns.
 *   Received: by HOST (NQqueue VERSION; general: a=accept, b=accept; per-user: c=accept) id ID; DATE
 */
export function traceHeader(opts: {
  host: string;
  version: string;
  id: string;
  general: readonly Result[];
  perUser: readonly Result[];
  date: Date;
}): Buffer {
  const gen = opts.general.map(describe);
  const usr = opts.perUser.map(describe);
  const items = [`(NQqueue ${commentSafe(opts.version)}`, gen.length ? `general: ${gen.join(', ')}` : 'general: none'];
  if (usr.length) items.push(`per-user: ${usr.join(', ')}`);
  items[items.length - 1] += ')';
  // Fold only between comment items and their comma-separated entries; the id and the date stay whole.
  const tokens: string[] = [`Received: by ${safeHostname(opts.host)}`];
  items.forEach((it, i) => tokens.push(...(i < items.length - 1 ? `${it};` : it).split(/(?<=,) /)));
  tokens.push(`id ${commentSafe(opts.id)};`, rfc5322Date(opts.date));
  let out = '';
  let line = '';
  for (const t of tokens) {
    if (line === '') line = t;
    else if (line.length + 1 + t.length > 78) {
      out += `${line}\n\t`;
      line = t;
    } else line += ` ${t}`;
  }
  out += `${line}\n`;
  return Buffer.from(out, 'latin1');
}
