// The log fields that join a message up with qmail's own logs and say which way it came: `qp` (the pid
// qmail-smtpd shows in `250 ok ... qp N`), `via` (standalone, daemon, or fallback and why) and the
// message's Message-ID.

import { headerFields } from '../mime/header-block.js';

/** Set by nqqueue-qq, and by it alone, when it runs the standalone program instead of using the daemon. */
export const FALLBACK_VAR = 'NQQUEUE_FALLBACK_REASON';

/** The words nqqueue-qq uses (src/qq/nqqueue-qq.h); anything else is logged as `other`. */
export const FALLBACK_REASONS: readonly string[] = [
  'no-socket',
  'refused',
  'permission',
  'busy',
  'connect-failed',
  'bad-home',
  'env-too-big',
  'no-memfd',
  'daemon-died',
  'timeout',
  'protocol-error',
];

/**
 * `via` for the standalone program: `fallback` with the client's reason when nqqueue-qq ran it. The value
 * is only ever one of the fixed words, so a variable forged in a tcprules entry cannot put anything else
 * into the line. The variable is removed so that nothing started from here inherits it.
 */
export function standaloneVia(env: NodeJS.ProcessEnv): { via: string; why?: string } {
  const v = env[FALLBACK_VAR];
  if (v === undefined) return { via: 'standalone' };
  delete env[FALLBACK_VAR];
  return { via: 'fallback', why: FALLBACK_REASONS.includes(v) ? v : 'other' };
}

/** What the log keeps of a Message-ID at most. */
export const MESSAGE_ID_MAX = 200;
/** How far into the message the Message-ID field is looked for. */
export const MESSAGE_ID_HEAD = 64 * 1024;

/**
 * The Message-ID field's value, unfolded and trimmed, with every byte outside printable ASCII (and the
 * backslash) written as `\xHH`, at most MESSAGE_ID_MAX characters (`...` marks a cut); undefined when
 * the header block (its first 64 KiB) has none.
 */
export function messageIdOf(head: Buffer): string | undefined {
  const block = head.subarray(0, MESSAGE_ID_HEAD);
  const f = headerFields(block).find((x) => x.name.toLowerCase() === 'message-id');
  if (!f) return undefined;
  const raw = block.subarray(f.start, f.end).toString('latin1');
  const value = raw
    .slice(raw.indexOf(':') + 1)
    .replace(/\r?\n[ \t]/g, ' ')
    .replace(/\r?\n$/, '')
    .trim();
  let out = '';
  for (const ch of value) {
    const c = ch.charCodeAt(0);
    out += c >= 0x21 && c <= 0x7e && ch !== '\\' ? ch : c === 0x20 ? ' ' : `\\x${c.toString(16).padStart(2, '0')}`;
    if (out.length > MESSAGE_ID_MAX) return `${out.slice(0, MESSAGE_ID_MAX - 3)}...`;
  }
  return out;
}
