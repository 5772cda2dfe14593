// Addresses that may become part of a path or a program argument: plain local part and domain only.
// Anything else (a slash, "..", a leading dot or dash, spaces, 8-bit bytes) is never used that way
// (SPEC §7: the 2008 quarantine built paths from local parts).

export interface PlainAddress {
  /** The local part, lower-cased. */
  readonly local: string;
  /** The domain, lower-cased. */
  readonly domain: string;
}

// RFC 5321 atext (o'brien@, a&b@, x#y@ are real mailboxes) without '/', and never a leading dot or dash:
// no shell ever sees these, so only what could climb out of a path or pass for an option is kept out.
const LOCAL = /^[a-z0-9!#$%&'*+=?^_`{|}~][a-z0-9!#$%&'*+=?^_`{|}~.-]{0,63}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The parts of `address` when both are plain, else undefined. */
export function plainAddress(address: string): PlainAddress | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0) return undefined;
  const local = address.slice(0, at).toLowerCase();
  const domain = address.slice(at + 1).toLowerCase();
  if (!LOCAL.test(local) || local.includes('..') || local.endsWith('.')) return undefined;
  if (domain.length === 0 || domain.length > 253 || !domain.split('.').every((l) => LABEL.test(l))) return undefined;
  return { local, domain };
}
