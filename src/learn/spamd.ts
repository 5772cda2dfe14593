// The SpamAssassin learner: spamd's TELL command (spamd must run with --allow-tell), `User:` = the
// user, so the user's own Bayes database learns it. spamd answers DidSet when it learned, nothing when
// it knew the message already as that class.

import { SpamdClient } from '../clients/spamd.js';
import { MemoryMessage } from '../intake/message.js';
import type { SpamdUser } from '../plugins/spamassassin.js';
import type { LearnClass } from '../store/types.js';
import { LearnError, type Learner, type TeachOutcome } from './learner.js';

/**
 * `user`: whose Bayes database learns, as the spamassassin plugin's `user` setting says: `rcpt` (the
 * user taught for, the default), `global` (no User: spamd's own), or a fixed name.
 */
export function spamdLearner(addresses: readonly string[], timeoutMs: number, user: SpamdUser = { kind: 'rcpt' }): Learner {
  const client = new SpamdClient({ addresses, connectTimeoutMs: Math.min(timeoutMs, 5000), readTimeoutMs: timeoutMs });
  return {
    name: 'spamassassin',
    where: `spamd ${addresses.join(' ')}`,
    async teach(message: Buffer, learnClass: LearnClass, rcpt: string): Promise<TeachOutcome> {
      const name = user.kind === 'rcpt' ? rcpt : user.kind === 'name' ? user.name : undefined;
      try {
        const r = await client.tell(new MemoryMessage(message), learnClass, { ...(name === undefined ? {} : { user: name }), signal: AbortSignal.timeout(timeoutMs) });
        return r.learned ? 'learned' : 'known';
      } catch (err) {
        const msg = (err as Error).message;
        // spamd without --allow-tell: `SPAMD/1.0 69 Service Unavailable`.
        const hint = /EX_UNAVAILABLE|Service Unavailable/i.test(msg) ? ' (start spamd with --allow-tell)' : '';
        throw new LearnError(`${msg}${hint}`, { cause: err });
      }
    },
  };
}
