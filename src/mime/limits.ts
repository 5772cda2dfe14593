// The hard bounds of a MIME walk, and the one rule for what a plugin that parses the message does when
// a message goes past one: it never accepts on its own. `onlimit` (PARAMS or the plugin's section)
// chooses refuse (the default), defer or accept.

import type { Outcome } from '../pipeline/types.js';
import { PluginConfigError, type Params } from '../plugin-api/define.js';

/** Far beyond real mail: a message past one of these is built to hide something. */
export const MIME_LIMITS = {
  /** Nesting levels of multiparts and attached messages. */
  depth: 256,
  /** Parts (header blocks) in one message. */
  parts: 50_000,
  /** Bytes of one header block (the message's own, or one part's). */
  blockBytes: 2 * 1024 * 1024,
  /** Bytes of all header blocks together. */
  totalHeaderBytes: 8 * 1024 * 1024,
  /** Bytes of one header field a header rule is matched against (bounds the time of one match). */
  fieldBytes: 64 * 1024,
  /** Multiparts sent base64 or quoted-printable (each is walked decoded, to the end of the message). */
  encodedMultiparts: 16,
} as const;

export type LimitKind = 'depth' | 'parts' | 'header-block' | 'header-total' | 'field' | 'field-cost' | 'encoded';

const WHAT: Record<LimitKind, string> = {
  depth: `MIME parts nested more than ${MIME_LIMITS.depth} levels deep`,
  parts: `more than ${MIME_LIMITS.parts} MIME parts`,
  'header-block': `a header block over ${MIME_LIMITS.blockBytes / 1024 / 1024} MB`,
  'header-total': `over ${MIME_LIMITS.totalHeaderBytes / 1024 / 1024} MB of header lines`,
  field: `a header field over ${MIME_LIMITS.fieldBytes / 1024} KB`,
  'field-cost': 'a header field longer than the header rules for it can be matched against in bounded time',
  encoded: `more than ${MIME_LIMITS.encodedMultiparts} multiparts sent encoded`,
};

/** A walk stopped at a bound: what follows was not inspected. */
export class MimeLimitError extends Error {
  constructor(readonly kind: LimitKind) {
    super(`the message has ${WHAT[kind]}: not inspected past that point`);
    this.name = 'MimeLimitError';
  }
}

export type LimitPolicy = 'refuse' | 'defer' | 'accept';

/** The `onlimit` key as a plugin declares it (`params.keys.onlimit`): a bad value is refused where it was written. */
export const DEFAULT_ONLIMIT: LimitPolicy = 'refuse';

export const ONLIMIT_KEY = {
  check(v: string): void {
    if (v !== 'refuse' && v !== 'defer' && v !== 'accept') throw new Error(`onlimit must be refuse, defer or accept, not ${JSON.stringify(v)}`);
  },
  doc: 'what a message past a hard bound of the MIME walk gets (nesting depth, number of parts, header block sizes: see "Safety" in the README): refuse, defer or accept',
  default: DEFAULT_ONLIMIT,
} as const;

/** The plugin's `onlimit` setting; refuse unless set. */
export function limitPolicy(params: Params): LimitPolicy {
  const v = params.get('onlimit') ?? DEFAULT_ONLIMIT;
  if (v === 'refuse' || v === 'defer' || v === 'accept') return v;
  throw new PluginConfigError(`onlimit must be refuse, defer or accept, not ${JSON.stringify(v)}`);
}

/** What a plugin returns when its walk stopped at a bound. */
export function limitOutcome(plugin: string, policy: LimitPolicy, err: MimeLimitError): Outcome {
  const details = { limit: err.kind, onlimit: policy, inspected: 'partly' };
  if (policy === 'accept') return { verdict: 'accept', details };
  const what = WHAT[err.kind];
  if (policy === 'defer') {
    return { verdict: 'tempfail', text: `message has ${what}, which ${plugin} cannot inspect; try again later (#4.3.0)`, details };
  }
  return { verdict: 'reject', text: `message refused: it has ${what}, which ${plugin} cannot inspect (#5.3.4)`, flagged: true, details };
}
