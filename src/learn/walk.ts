// Learning from moves: each user's Maildir is walked and every message compared with the verdict it
// was delivered with. In a Junk folder but delivered as ham: the user says spam. Outside Junk, read
// (the S flag: a message nobody opened says nothing), and delivered as spam: the user says ham. A
// message in an ignored folder (Trash), marked deleted (T), or with no verdict of NQqueue's is left
// alone; one whose place agrees with its verdict teaches nothing — unless it was taught otherwise by
// an earlier walk (moved into Junk, then back out): that teaching is undone by teaching it again.

import type { Store } from '../store/types.js';
import type { Learner } from './learner.js';
import { folderMessages, folders, inFolders, readMessage, userMaildirs } from './maildir.js';
import { teach, type LearnCounts } from './teach.js';
import { deliveredVerdict } from './verdict.js';

export interface WalkOptions {
  readonly root: string;
  readonly defaultDomain: string | undefined;
  readonly junk: readonly string[];
  readonly ignore: readonly string[];
}

export interface WalkCounts {
  users: number;
  /** Messages looked at. */
  seen: number;
  /** Where they are agrees with how they were delivered. */
  agree: number;
  /** No verdict of NQqueue's on them (not delivered through it, or no learner ran). */
  noVerdict: number;
}

export async function walkMaildirs(
  store: Store,
  learners: readonly Learner[],
  opts: WalkOptions,
  counts: LearnCounts,
  say: (line: string) => void,
): Promise<WalkCounts> {
  const walk: WalkCounts = { users: 0, seen: 0, agree: 0, noVerdict: 0 };
  for (const { user, maildir } of userMaildirs(opts.root, opts.defaultDomain)) {
    walk.users++;
    for (const folder of folders(maildir)) {
      if (folder.name !== '' && inFolders(folder.name, opts.ignore)) continue;
      const junk = folder.name !== '' && inFolders(folder.name, opts.junk);
      for (const file of folderMessages(folder.path)) {
        if (file.flags.includes('T')) continue;
        if (!junk && !file.flags.includes('S')) continue;
        let message;
        try {
          message = readMessage(file.path);
        } catch (err) {
          say(`${file.path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          continue;
        }
        if (!message) continue;
        walk.seen++;
        const verdict = deliveredVerdict(message);
        if (!verdict) {
          walk.noVerdict++;
          continue;
        }
        const agrees = verdict.spam === junk;
        const asked = await teach(
          store,
          learners,
          {
            message,
            learnClass: junk ? 'spam' : 'ham',
            user,
            hints: { ...(verdict.dspamSignature ? { dspamSignature: verdict.dspamSignature } : {}), ...(verdict.dspamResult ? { dspamResult: verdict.dspamResult } : {}) },
            source: file.path,
            correctOnly: agrees,
          },
          counts,
          say,
        );
        if (agrees && asked === 0) walk.agree++;
      }
    }
  }
  return walk;
}

export function walkText(w: WalkCounts): string {
  return `${w.users} user${w.users === 1 ? '' : 's'}, ${w.seen} message${w.seen === 1 ? '' : 's'} looked at (${w.agree} where their verdict put them, ${w.noVerdict} without a verdict)`;
}
