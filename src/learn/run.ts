// One learning run, as `nqqueue learn` and `nqqueue serve`'s schedule do it: the store opened, the
// site's learners configured, messages taught (files and folders given, or the users' Maildirs walked),
// the counts said on one line.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { serviceSettings } from '../config/service-sections.js';
import type { Settings } from '../config/settings.js';
import type { Paths } from '../queue/services.js';
import { openStore } from '../store/open.js';
import type { LearnClass } from '../store/types.js';
import { configuredLearners } from './configure.js';
import type { Learner } from './learner.js';
import { folderMessages, isMaildir, MAX_LEARN_BYTES, readMessage } from './maildir.js';
import { anyFailed, countsText, emptyCounts, teach, type LearnCounts } from './teach.js';
import { deliveredVerdict } from './verdict.js';
import { walkMaildirs, walkText } from './walk.js';

/** qmail's domain for local users: control/defaultdomain, else control/me. */
export function defaultDomain(controlDir: string): string | undefined {
  for (const f of ['defaultdomain', 'me']) {
    try {
      const v = readFileSync(join(controlDir, f), 'utf8').split('\n', 1)[0]!.trim().toLowerCase();
      if (/^[a-z0-9.-]+$/.test(v)) return v;
    } catch {
      // not there
    }
  }
  return undefined;
}

export interface RunResult {
  readonly counts: LearnCounts;
  readonly text: string;
  readonly failed: boolean;
}

function none(learners: readonly Learner[]): RunResult | undefined {
  if (learners.length > 0) return undefined;
  return {
    counts: emptyCounts([]),
    text: 'no learner configured: name them in [learn] learners, or use spamassassin, rspamd or dspam in a routing file',
    failed: true,
  };
}

/** Teach the messages of `paths` (files, or Maildir folders: their cur/ and new/) as `learnClass` for `user`. */
export async function learnPaths(paths: Paths, settings: Settings, learnClass: LearnClass, user: string, files: readonly string[], say: (l: string) => void): Promise<RunResult> {
  const learners = configuredLearners(settings, paths.controlDir);
  const nothing = none(learners);
  if (nothing) return nothing;
  const store = await openStore(paths.home, settings);
  const counts = emptyCounts(learners);
  let unreadable = false;
  try {
    for (const p of files) {
      const list = isMaildir(p) ? folderMessages(p).map((f) => f.path) : [p];
      for (const file of list) {
        let message;
        try {
          message = readMessage(file);
        } catch (err) {
          say(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          unreadable = true;
          continue;
        }
        if (!message) {
          say(`${file}: gone, or over ${MAX_LEARN_BYTES / 1024 / 1024} MB: not taught`);
          continue;
        }
        const v = deliveredVerdict(message);
        const hints = { ...(v?.dspamSignature ? { dspamSignature: v.dspamSignature } : {}), ...(v?.dspamResult ? { dspamResult: v.dspamResult } : {}) };
        await teach(store, learners, { message, learnClass, user, hints, source: file }, counts, say);
      }
    }
  } finally {
    await store.close();
  }
  return { counts, text: countsText(counts), failed: unreadable || anyFailed(counts) };
}

/** Walk the users' Maildirs under `root` and teach what they moved. */
export async function learnMaildirs(paths: Paths, settings: Settings, root: string, say: (l: string) => void): Promise<RunResult> {
  const learners = configuredLearners(settings, paths.controlDir);
  const nothing = none(learners);
  if (nothing) return nothing;
  const learn = serviceSettings(settings, 'learn');
  const store = await openStore(paths.home, settings);
  const counts = emptyCounts(learners);
  try {
    const walk = await walkMaildirs(
      store,
      learners,
      { root, defaultDomain: defaultDomain(paths.controlDir), junk: learn.junk ?? ['.Junk', '.Spam'], ignore: learn.ignore ?? ['.Trash'] },
      counts,
      say,
    );
    return { counts, text: `${walkText(walk)}; taught ${countsText(counts)}`, failed: anyFailed(counts) };
  } finally {
    await store.close();
  }
}
