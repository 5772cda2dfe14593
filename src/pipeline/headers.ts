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
    const lines = value.split('\n');
    if (lines.some((l) => Buffer.byteLength(l) > 990)) throw new Error(`header ${f.name}: line too long`);
    out += `${f.name}: ${value}\n`;
  }
  return Buffer.from(out, 'utf8');
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
