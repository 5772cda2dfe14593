// Teaching messages to the learners, incrementally: for each message, user and learner, the store says
// whether it was taught already as that class (then nothing is sent); what a learner learned, or said
// it knew, is remembered. A learner that fails is counted and said; that message is tried again by the
// next run. The counts are what `nqqueue learn` reports.

import type { LearnClass, Store } from '../store/types.js';
import { learningDigest } from './digest.js';
import { LearnError, type Learner, type TeachHints } from './learner.js';

export interface LearnCounts {
  /** Messages looked at. */
  messages: number;
  /** Per learner: taught now (it learned), known (it said it knew it), skipped (taught before), failed. */
  readonly learners: Record<string, { learned: number; known: number; skipped: number; failed: number }>;
}

export function emptyCounts(learners: readonly Learner[]): LearnCounts {
  return { messages: 0, learners: Object.fromEntries(learners.map((l) => [l.name, { learned: 0, known: 0, skipped: 0, failed: 0 }])) };
}

export interface TeachJob {
  readonly message: Buffer;
  readonly learnClass: LearnClass;
  readonly user: string;
  readonly hints?: TeachHints;
  /** Where it came from, for what is said about a failure. */
  readonly source: string;
  /**
   * Teach only learners that were taught this message as the other class before (the message's place
   * agrees with the verdict it was delivered with: only an earlier teaching of ours is to be undone).
   */
  readonly correctOnly?: boolean;
}

/**
 * Teach one message to each learner (at once); adds to `counts`; `say` gets one line per failure.
 * Returns how many learners were asked (0 for a correctOnly job none of whose learners needed it).
 */
export async function teach(store: Store, learners: readonly Learner[], job: TeachJob, counts: LearnCounts, say: (line: string) => void): Promise<number> {
  const digest = learningDigest(job.message);
  const user = job.user.toLowerCase();
  const stored = await Promise.all(learners.map((l) => store.learnedClass({ digest, user, learner: l.name })));
  const todo = learners.filter((_, i) => (job.correctOnly ? stored[i] !== undefined && stored[i] !== job.learnClass : true));
  if (todo.length === 0) return 0;
  counts.messages++;
  await Promise.all(
    learners.map(async (l, i) => {
      const c = (counts.learners[l.name] ??= { learned: 0, known: 0, skipped: 0, failed: 0 });
      if (!todo.includes(l)) return;
      const key = { digest, user, learner: l.name };
      if (stored[i] === job.learnClass) {
        c.skipped++;
        return;
      }
      // Taught before as the other class: what the learner believes now is what it was taught, not
      // the verdict the copy was delivered with.
      const hints: TeachHints = stored[i] !== undefined && job.hints?.dspamSignature ? { dspamSignature: job.hints.dspamSignature } : stored[i] !== undefined ? {} : (job.hints ?? {});
      let outcome;
      try {
        outcome = await l.teach(job.message, job.learnClass, user, hints);
      } catch (err) {
        c.failed++;
        say(`${l.name}: ${job.source} (${user}, ${job.learnClass}): ${err instanceof LearnError ? err.message : `failed: ${(err as Error).message}`}`);
        return;
      }
      await store.markLearned({ ...key, class: job.learnClass, at: new Date().toISOString() });
      c[outcome]++;
    }),
  );
  return todo.length;
}

/** `spamassassin: 3 learned, 1 known, 2 skipped, 0 failed; rspamd: ...` */
export function countsText(counts: LearnCounts): string {
  const parts = Object.entries(counts.learners).map(([n, c]) => `${n}: ${c.learned} learned, ${c.known} known, ${c.skipped} already taught, ${c.failed} failed`);
  return `${counts.messages} message${counts.messages === 1 ? '' : 's'}${parts.length ? `; ${parts.join('; ')}` : ''}`;
}

export function anyFailed(counts: LearnCounts): boolean {
  return Object.values(counts.learners).some((c) => c.failed > 0);
}
