// `nqqueue learn`: teach the site's learners (spamd, rspamd, dspam) — messages given as files or
// Maildir folders, as spam or ham for one user; or, with --maildirs, what the users moved in and out
// of their Junk folders. Incremental: the store remembers what was taught (src/learn/).

import { existsSync, realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

import { formatProblem, sortProblems } from '../../config/problem.js';
import { parseAddressList, serviceSectionProblems } from '../../config/service-sections.js';
import { describeError } from '../../errors.js';
import { makeLogger } from '../../log.js';
import { prepareHome } from '../../ops/owner.js';
import { pathsFrom, readSettings } from '../../queue/services.js';
import { parseCommand, usageFailure } from '../args.js';

export const USAGE = `usage: nqqueue learn --spam|--ham [--user ADDRESS] PATH...
       nqqueue learn --maildirs ROOT
  Teaches every configured learner ([learn] learners; auto: those of spamassassin, rspamd and dspam
  that a routing file uses), per user: spamd by TELL (spamd needs --allow-tell), rspamd by its
  controller's /learnspam and /learnham ([learn] rspamd_controller, rspamd_password), dspam by
  retraining (--source=error with the copy's signature, --source=corpus without one). Incremental: the
  store remembers each message (a digest of it) per user, learner and class, so a second run teaches
  nothing; the counts are printed: learned, known (the learner knew it), already taught, failed.
  --spam, --ham     what the messages are
  --user ADDRESS    whose filter learns (default: the user of a vpopmail path, domains/DOMAIN/USER/Maildir)
  PATH              a message file, or a Maildir folder (its cur/ and new/)
  --maildirs ROOT   walk every user's Maildir under ROOT (vpopmail's domains/DOMAIN/USER/Maildir, and
                    USER/Maildir as USER@ control/defaultdomain): a message in a Junk folder ([learn]
                    junk, default .Junk,.Spam) delivered as ham is learned as spam, a read message
                    elsewhere delivered as spam is learned as ham (the verdict is read from NQqueue's
                    trace header and the scanners' headers); [learn] ignore (.Trash) teaches nothing.
                    Nothing in a Maildir is changed. For cron, or [learn] every for nqqueue serve.
  -h, --help        this text
  Exit 0; 1 when a learner failed (the rest was taught, the failed ones are tried again next run);
  2 for a usage error.
`;

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand(
    'learn',
    USAGE,
    args,
    { spam: { type: 'boolean' }, ham: { type: 'boolean' }, user: { type: 'string' }, maildirs: { type: 'string' } },
    { max: 100_000 },
  );
  if (typeof parsed === 'number') return parsed;
  const { spam, ham, maildirs } = parsed.values;
  const files = parsed.positionals;
  let user: string | undefined;
  if (parsed.values.user !== undefined) {
    try {
      const list = parseAddressList(String(parsed.values.user));
      if (list.length !== 1) throw new Error('give one address');
      user = list[0];
    } catch (err) {
      return usageFailure('learn', USAGE, `--user: ${(err as Error).message}`);
    }
  }
  if (maildirs !== undefined) {
    if (spam || ham || user !== undefined || files.length > 0) return usageFailure('learn', USAGE, '--maildirs takes no --spam, --ham, --user or PATH: the moves say what each message is and whose');
    if (!String(maildirs).startsWith('/')) return usageFailure('learn', USAGE, `--maildirs: must be an absolute path: ${JSON.stringify(maildirs)}`);
  } else {
    if (spam === ham) return usageFailure('learn', USAGE, 'say --spam or --ham (one of them)');
    if (files.length === 0) return usageFailure('learn', USAGE, 'name the messages or Maildir folders to learn from');
    const { isMaildir } = await import('../../learn/maildir.js');
    for (const [i, f] of files.entries()) {
      let st;
      try {
        // The admin's own paths: a symbolic link given here is followed (links inside a Maildir are not).
        files[i] = realpathSync(f);
        st = statSync(files[i]!);
      } catch {
        return usageFailure('learn', USAGE, `${f}: no such file or folder`);
      }
      if (st.isDirectory() && !isMaildir(files[i]!)) return usageFailure('learn', USAGE, `${f}: a folder, but not a Maildir one (no cur/ and new/ in it)`);
      if (!st.isDirectory() && !st.isFile()) return usageFailure('learn', USAGE, `${f}: not a message file or a Maildir folder`);
    }
    if (user === undefined) {
      const { vpopmailUser } = await import('../../learn/maildir.js');
      const users = new Set(files.map((f) => vpopmailUser(resolve(f))));
      const only = users.size === 1 ? [...users][0] : undefined;
      if (!only) return usageFailure('learn', USAGE, 'say whose filter learns with --user ADDRESS (the paths are not in one vpopmail user\'s Maildir)');
      user = only;
    }
  }
  const log = makeLogger(0, 'nqqueue learn:');
  const say = (l: string) => log.write(`nqqueue learn: ${l}`);
  try {
    const paths = pathsFrom(env);
    const runAs = prepareHome(paths.home, 'learn');
    if (runAs !== undefined) say(`running as ${runAs}, the owner of ${paths.home}`);
    const settings = readSettings(paths);
    const problems = sortProblems([
      ...settings.problems,
      ...settings.sections().flatMap((sec) => (sec.name === 'learn' ? serviceSectionProblems(sec, settings.file ?? '(settings)') : [])),
    ]);
    if (problems[0]) {
      say(`configuration: ${formatProblem(problems[0])}`);
      return 1;
    }
    if (maildirs !== undefined && !existsSync(String(maildirs))) {
      say(`${maildirs}: no such directory`);
      return 1;
    }
    // Loaded only now: --help loads neither the store nor the learners.
    const { learnMaildirs, learnPaths } = await import('../../learn/run.js');
    const result =
      maildirs !== undefined
        ? await learnMaildirs(paths, settings, String(maildirs), say)
        : await learnPaths(paths, settings, spam ? 'spam' : 'ham', user!, files.map((f) => resolve(f)), say);
    process.stdout.write(`${result.text}\n`);
    return result.failed ? 1 : 0;
  } catch (err) {
    say(describeError(err));
    return 1;
  }
}
