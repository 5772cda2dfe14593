// The rspamd learner: its controller's POST /learnspam and /learnham, with the controller password
// (`Password:`) from the settings and `Deliver-To:` = the user, which a per-user Bayes classifier
// learns for. rspamd's answers: 200 learned; 208 already learned as that class; 204 rspamd declined
// (its learn conditions: already sure of it, or too few tokens) — remembered too, teaching it again
// would be declined again. Anything else (401 wrong password; 404, which rspamd answers when its Redis
// is down; 5xx) is an error: not remembered, tried again by the next run.

import type { LearnClass } from '../store/types.js';
import { LearnError, type Learner, type TeachOutcome } from './learner.js';

// eslint-disable-next-line no-control-regex
const BAD_HEADER = /[\x00-\x1f\x7f]/;

export function rspamdLearner(controller: string, password: string | undefined, timeoutMs: number): Learner {
  const base = controller.replace(/\/+$/, '');
  return {
    name: 'rspamd',
    where: `rspamd ${base}`,
    async teach(message: Buffer, learnClass: LearnClass, user: string): Promise<TeachOutcome> {
      if (BAD_HEADER.test(user)) throw new LearnError(`rspamd: unusable user name ${JSON.stringify(user)}`);
      const headers: Record<string, string> = {
        // As the bytes of its UTF-8 form: fetch refuses characters above U+00FF in a header.
        'Deliver-To': Buffer.from(user, 'utf8').toString('latin1'),
        'Content-Type': 'message/rfc822',
      };
      if (password !== undefined) headers.Password = password;
      let res: Response;
      try {
        res = await fetch(`${base}/learn${learnClass}`, { method: 'POST', headers, body: message, signal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new LearnError(`rspamd ${base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
      }
      const text = (await res.text().catch(() => '')).slice(0, 2000);
      let why = '';
      try {
        why = String((JSON.parse(text) as { error?: unknown }).error ?? '');
      } catch {
        why = text.trim();
      }
      if (res.status === 200) return 'learned';
      if (res.status === 208 || res.status === 204) return 'known';
      const hint = res.status === 401 || res.status === 403 ? ' (check [learn] rspamd_password)' : res.status === 404 ? ' (is its Redis up?)' : '';
      throw new LearnError(`rspamd ${base}: ${res.status} ${res.statusText}${why ? `: ${why.slice(0, 200)}` : ''}${hint}`);
    },
  };
}
