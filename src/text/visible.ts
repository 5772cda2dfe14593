// Terminal-safe text: what came from outside (addresses, headers, plugin and backend texts) is shown with
// its control characters as visible escapes, so it cannot move the cursor, clear the screen, retitle the
// window or hide itself in a terminal or a log viewer.

/**
 * Characters a terminal acts on instead of showing: C0 and DEL, C1 (U+0080–U+009F: a UTF-8 `\xc2\x9b`
 * is CSI, the one-character ESC [), the line and paragraph separators, and the bidirectional overrides,
 * isolates and marks (LRM, RLM, ALM: invisible, they too move the `<`, `@` and `>` around them) that
 * reorder what is displayed.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function hex(c: string, width: number): string {
  return c.charCodeAt(0).toString(16).padStart(width, '0');
}

/**
 * `s` with every unsafe character as `\xHH` (C0, DEL) or `\uHHHH` (C1 and the rest): `\x1b[2J`, `\u009b`.
 * `tabs` keeps tabs as they are, for header lines shown one a line (a folded line starts with one, and
 * a tab cannot hide or rewrite anything); elsewhere a tab is escaped too, as it would split a
 * tab-separated listing.
 */
export function visible(s: string, options?: { tabs?: boolean }): string {
  return s.replace(UNSAFE, (c) => (c === '\t' && options?.tabs ? c : c <= '\x7f' ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** True when `s` holds a character `visible()` would escape. */
export function hasUnsafe(s: string): boolean {
  UNSAFE.lastIndex = 0;
  const found = UNSAFE.test(s);
  UNSAFE.lastIndex = 0;
  return found;
}

/**
 * `value` as JSON that is also terminal-safe: JSON.stringify escapes C0 but leaves DEL, C1 and the rest
 * raw, so those become `\uHHHH` too (still valid JSON, the same value when parsed).
 */
export function visibleJson(value: unknown): string {
  return (JSON.stringify(value) ?? 'null').replace(UNSAFE, (c) => `\\u${hex(c, 4)}`);
}
