// The Subject of a held message as a person reads it: the first Subject field, unfolded, its encoded
// words decoded (RFC 2047), control characters and the bidirectional overrides, isolates and marks
// removed (the console and the digests show the subject as it is: an override there would reorder
// what is displayed around it, e.g. make "gpj.exe" read "exe.jpg"). It comes from the internet: it is
// shown, never interpreted, and kept short.

import { decodeEncodedWords } from '../mime/words.js';
import { headerFields } from '../mime/header-block.js';

/** Long enough for any real subject; a hostile one cannot fill the store. */
const MAX_SUBJECT = 998;

export function subjectOf(head: Buffer): string {
  const field = headerFields(head).find((f) => f.name.toLowerCase() === 'subject');
  if (!field) return '';
  const raw = head.subarray(field.start, field.end).toString('utf8');
  const value = raw.slice(raw.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' ');
  let text: string;
  try {
    text = decodeEncodedWords(value);
  } catch {
    text = value;
  }
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, MAX_SUBJECT);
}
