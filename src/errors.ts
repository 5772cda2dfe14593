// The one catalogue of failures NQqueue reports, each with the qmail exit code it maps to.

export type ErrorKind = 'permanent' | 'temporary';

export interface ErrorSpec {
  /** qmail-queue exit code used when this error ends the run. */
  readonly exit: number;
  readonly kind: ErrorKind;
  /** Default text for the sender (the SMTP reply after the 554/451). */
  readonly text: string;
}

export const ERRORS = {
  NQQ_ERR_ADDRESS_TOO_LONG: { exit: 11, kind: 'permanent', text: 'envelope address too long (#5.1.3)' },
  NQQ_ERR_TOO_MANY_RECIPIENTS: { exit: 31, kind: 'permanent', text: 'too many recipients (#5.5.3)' },
  NQQ_ERR_POLICY: { exit: 31, kind: 'permanent', text: 'mail server permanently rejected message (#5.3.0)' },
  NQQ_ERR_READ: { exit: 54, kind: 'temporary', text: 'qq read error (#4.3.0)' },
  NQQ_ERR_TRUNCATED_ENVELOPE: { exit: 54, kind: 'temporary', text: 'qq read error (#4.3.0)' },
  NQQ_ERR_TEMPORARY: { exit: 71, kind: 'temporary', text: 'mail server temporarily rejected message (#4.3.0)' },
  NQQ_ERR_CONFIG: { exit: 71, kind: 'temporary', text: 'mail server configuration error, try again later (#4.3.0)' },
  NQQ_ERR_PLUGIN_FAILED: { exit: 71, kind: 'temporary', text: 'mail scanner unavailable, try again later (#4.3.0)' },
  NQQ_ERR_PLUGIN_TIMEOUT: { exit: 71, kind: 'temporary', text: 'mail scanner timed out, try again later (#4.3.0)' },
  NQQ_ERR_DEADLINE: { exit: 71, kind: 'temporary', text: 'message processing took too long, try again later (#4.3.0)' },
  NQQ_ERR_DISK: { exit: 71, kind: 'temporary', text: 'mail server temporarily out of disk space (#4.3.0)' },
  NQQ_ERR_QUEUE_CRASHED: { exit: 71, kind: 'temporary', text: 'qq crashed (#4.3.0)' },
  NQQ_ERR_SPOOL: { exit: 71, kind: 'temporary', text: 'mail server temporarily rejected message (#4.3.0)' },
  NQQ_ERR_BUG: { exit: 81, kind: 'temporary', text: 'qq internal bug (#4.3.0)' },
  NQQ_ERR_ENVELOPE_FORMAT: { exit: 91, kind: 'temporary', text: 'qq internal bug (#4.3.0)' },
  /** What a plugin keeps instead of delivering (a quarantined copy) could not be made durable. */
  NQQ_ERR_KEEP: { exit: 71, kind: 'temporary', text: 'mail server temporarily cannot store the message, try again later (#4.3.0)' },
  /** The control directory, or rcpthosts in it, is missing or unreadable: nothing can be decided. */
  NQQ_ERR_CONTROL_MISSING: { exit: 71, kind: 'temporary', text: 'mail server configuration error, try again later (#4.3.0)' },
  NQQ_ERR_HEADER_TOO_LARGE: { exit: 31, kind: 'permanent', text: 'message refused: its header block is too large (#5.3.4)' },
  NQQ_ERR_OWNER: { exit: 71, kind: 'temporary', text: 'mail server configuration error, try again later (#4.3.0)' },
  NQQ_ERR_RUNTIME: { exit: 71, kind: 'temporary', text: 'mail server temporarily rejected message (#4.3.0)' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error NQqueue knows how to report: it carries its catalogue code. */
export class NqqError extends Error {
  readonly code: ErrorCode;
  readonly exit: number;
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERRORS[code].text, options);
    this.name = 'NqqError';
    this.code = code;
    this.exit = ERRORS[code].exit;
    this.kind = ERRORS[code].kind;
  }
}

export function isNqqError(err: unknown): err is NqqError {
  return err instanceof NqqError;
}

/** A short, single-line description of any thrown value, safe for the log. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const base = typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
    return oneLine(base);
  }
  return oneLine(String(err));
}

export function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}
