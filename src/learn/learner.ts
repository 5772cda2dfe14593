// What a learner is to `nqqueue learn`: something that is taught one message as spam or ham for one
// user, and says whether it learned it or knew it already. A learner that cannot be used throws a
// LearnError: that message is not remembered as taught and is tried again by the next run.

import type { LearnClass } from '../store/types.js';
import type { LearnerName } from './verdict.js';

export type TeachOutcome = 'learned' | 'known';

export interface TeachHints {
  /** dspam's signature of this copy (its X-DSPAM-Signature when it was delivered, or the quarantine's record). */
  readonly dspamSignature?: string;
  /** dspam's result for this copy, when known: retraining as an error only when it was wrong. */
  readonly dspamResult?: string;
}

export interface Learner {
  readonly name: LearnerName;
  /** Where it is taught (for messages): `spamd 127.0.0.1:783`, `rspamd http://127.0.0.1:11334`, `dspam /usr/bin/dspam`. */
  readonly where: string;
  teach(message: Buffer, learnClass: LearnClass, user: string, hints: TeachHints): Promise<TeachOutcome>;
}

export class LearnError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LearnError';
  }
}
