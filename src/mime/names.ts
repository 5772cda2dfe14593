// Attachment names: every name a mail client could show for a part, and every way it could read one.
// Clients disagree (name= or filename=, the first field or the last, the first parameter or the last,
// how far an RFC 2231 continuation goes, what a NUL does), so a part is judged by all of them: an
// attachment is refused when any of its names matches.

import { paramValues } from './words.js';

/** Every name the Content-Type (`name=`) and Content-Disposition (`filename=`) fields of a part give. */
export function candidateNames(contentTypes: readonly string[], dispositions: readonly string[]): string[] {
  const out = new Set<string>();
  for (const v of contentTypes) for (const n of paramValues(v, 'name')) out.add(n);
  for (const v of dispositions) {
    for (const n of paramValues(v, 'filename')) out.add(n);
    // Some clients take `name=` from the disposition too.
    for (const n of paramValues(v, 'name')) out.add(n);
  }
  out.delete('');
  return [...out];
}

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;
/** Characters a client drops or does not show: controls, format characters (zero-width, bidi), U+FFFD. */
const INVISIBLE = /[\x00-\x1f\x7f-\x9f\p{Cf}\uFFFD]/gu;

/**
 * The readings of one name, lower-cased, as the system that saves it would see them: as written,
 * without control characters, cut at a NUL (C strings), without invisible characters, without quotes,
 * NFKC-folded, cut at a ':' (an NTFS stream name) — each with trailing dots and spaces removed, which
 * Windows ignores.
 */
export function nameVariants(name: string): string[] {
  const forms = new Set<string>([name]);
  forms.add(name.replace(CONTROLS, ''));
  forms.add(name.split('\0')[0]!);
  forms.add(name.replace(INVISIBLE, ''));
  forms.add(name.replace(INVISIBLE, '').replace(/["']/g, ''));
  forms.add(name.replace(INVISIBLE, '').normalize('NFKC'));
  // NTFS: `evil.exe:stream` and `evil.exe::$DATA` are evil.exe.
  if (name.includes(':')) forms.add(name.slice(0, name.indexOf(':')));
  const out = new Set<string>();
  for (const f of forms) out.add(f.replace(/[\s.\x00-\x1f\x7f-\x9f]+$/, '').toLowerCase());
  return [...out];
}
