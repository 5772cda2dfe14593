// Editing a message's header block in place of re-writing the message: remove fields, replace the
// Subject. Bytes outside the fields touched are kept exactly (latin1 round-trips every byte).

import { headerEnd } from '../intake/message.js';

export interface FieldSpan {
  /** The field name as written ('' for a line that is not a field). */
  readonly name: string;
  /** Byte offsets of the whole field, continuation lines and final newline included. */
  readonly start: number;
  readonly end: number;
}

/** Where the header block ends (index past the blank line; the whole message when there is none). */
function blockEnd(message: Buffer): number {
  const end = headerEnd(message);
  return end < 0 ? message.length : end;
}

/** The fields of the header block of `message`, in order. */
export function headerFields(message: Buffer): FieldSpan[] {
  const text = message.subarray(0, blockEnd(message)).toString('latin1');
  const fields: { name: string; start: number; end: number }[] = [];
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const lineEnd = nl < 0 ? text.length : nl + 1;
    const line = text.slice(pos, lineEnd);
    if (line === '\n' || line === '\r\n') break;
    const last = fields[fields.length - 1];
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      last.end = lineEnd;
    } else {
      const colon = line.indexOf(':');
      const name = colon > 0 && /^[!-9;-~]+$/.test(line.slice(0, colon)) ? line.slice(0, colon) : '';
      fields.push({ name, start: pos, end: lineEnd });
    }
    pos = lineEnd;
  }
  return fields;
}

/**
 * The message without the header fields `remove` picks. It is called with the field's name, its
 * 1-based position among the fields of that name (case-insensitive) and how many there are.
 * Returns undefined when no field was picked (nothing to copy).
 */
export function removeFields(message: Buffer, remove: (name: string, nth: number, count: number) => boolean): Buffer | undefined {
  const fields = headerFields(message);
  const counts = new Map<string, number>();
  for (const f of fields) counts.set(f.name.toLowerCase(), (counts.get(f.name.toLowerCase()) ?? 0) + 1);
  const seen = new Map<string, number>();
  const drop: FieldSpan[] = [];
  for (const f of fields) {
    if (f.name === '') continue;
    const key = f.name.toLowerCase();
    const nth = (seen.get(key) ?? 0) + 1;
    seen.set(key, nth);
    if (remove(f.name, nth, counts.get(key)!)) drop.push(f);
  }
  if (drop.length === 0) return undefined;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const f of drop) {
    parts.push(message.subarray(pos, f.start));
    pos = f.end;
  }
  parts.push(message.subarray(pos));
  return Buffer.concat(parts);
}

/** Does the header block have a field whose name matches? */
export function hasField(message: Buffer, name: (name: string) => boolean): boolean {
  return headerFields(message).some((f) => f.name !== '' && name(f.name));
}

/**
 * The message with its Subject replaced: every Subject field is removed and one `Subject: value`
 * takes the place of the first (or ends the header block when there was none). Line breaks and other
 * control characters in `value` become spaces: nothing can start a header of its own.
 */
export function replaceSubject(message: Buffer, value: string): Buffer {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  const line = Buffer.from(`Subject: ${clean}\n`, 'utf8');
  const fields = headerFields(message);
  const subjects = fields.filter((f) => f.name.toLowerCase() === 'subject');
  const parts: Buffer[] = [];
  if (subjects.length === 0) {
    const last = fields[fields.length - 1];
    const at = last ? last.end : 0;
    const newline = at > 0 && message[at - 1] !== 0x0a ? Buffer.from('\n') : Buffer.alloc(0);
    parts.push(message.subarray(0, at), newline, line, message.subarray(at));
    return Buffer.concat(parts);
  }
  let pos = 0;
  subjects.forEach((f, i) => {
    parts.push(message.subarray(pos, f.start));
    if (i === 0) parts.push(line);
    pos = f.end;
  });
  parts.push(message.subarray(pos));
  return Buffer.concat(parts);
}
