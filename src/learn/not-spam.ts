// "Not spam" on a quarantined item: the learners that voted spam for that recipient (the item's
// flagged results of spamassassin, rspamd, dspam — of those the site has configured) are taught the
// message as ham, for that recipient. dspam is retrained as an error by the signature it gave that
// copy (the item's recorded result). The caller releases the message.

import type { Quarantine } from '../quarantine/actions.js';
import type { QuarantineItem } from '../store/types.js';
import { configuredLearners } from './configure.js';
import type { TeachHints } from './learner.js';
import { countsText, emptyCounts, teach, type LearnCounts } from './teach.js';
import { LEARNER_NAMES, type LearnerName } from './verdict.js';

/** The learners that flagged this item. */
export function spamVoters(item: Pick<QuarantineItem, 'results'>): LearnerName[] {
  return LEARNER_NAMES.filter((n) => item.results.some((r) => r.plugin === n && r.flagged));
}

export async function teachNotSpam(
  q: Quarantine,
  item: QuarantineItem,
  message: Buffer,
  say: (line: string) => void,
): Promise<{ readonly counts: LearnCounts; readonly text: string; readonly failed: readonly string[] }> {
  const voters = spamVoters(item);
  const learners = configuredLearners(q.settings, q.paths.controlDir).filter((l) => voters.includes(l.name));
  const counts = emptyCounts(learners);
  if (learners.length === 0) return { counts, text: 'no learner voted spam', failed: [] };
  const dspam = item.results.find((r) => r.plugin === 'dspam' && r.flagged)?.details as { signature?: unknown; result?: unknown } | undefined;
  const hints: TeachHints = {
    ...(typeof dspam?.signature === 'string' && /^[A-Za-z0-9,]{1,128}$/.test(dspam.signature) ? { dspamSignature: dspam.signature } : {}),
    ...(typeof dspam?.result === 'string' ? { dspamResult: dspam.result } : {}),
  };
  const failed: string[] = [];
  await teach(q.store, learners, { message, learnClass: 'ham', user: item.owner, hints, source: `item ${item.id}` }, counts, (l) => {
    failed.push(l.split(':', 1)[0]!);
    say(l);
  });
  return { counts, text: countsText(counts), failed };
}
