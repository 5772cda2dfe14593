// `nqqueue digest`: mail each recipient who has new held mail, and whose cadence says it is time, one
// digest through qmail-inject (src/digest/). For cron; `nqqueue serve` runs the same on a schedule.

import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { formatProblem, sortProblems } from '../../config/problem.js';
import { parseAddressList, serviceSectionProblems } from '../../config/service-sections.js';
import { describeError } from '../../errors.js';
import { makeLogger } from '../../log.js';
import { NoHomeError, OwnerError, prepareHome } from '../../ops/owner.js';
import { pathsFrom, readSettings } from '../../queue/services.js';
import { parseCommand, usageFailure } from '../args.js';

/** The store's file under the home (src/store/open.ts; not imported: that would load the store). */
const STORE_FILE = 'store.sqlite';

export const USAGE = `usage: nqqueue digest [--dry-run] [--to ADDRESS]
  Mails each recipient with mail held in the quarantine since their last digest one digest (plain text
  and HTML, a line per message: date, sender, subject, why; with one-click release, delete and view
  links when [web] url is set) through qmail-inject ([digest] qmail_inject), at the cadence they chose
  in the console (never, hourly, daily; [digest] cadence for those who chose none). Hourly: an hour
  since the last one; daily: a day (a run up to 5 minutes early counts). A digest is recorded as sent
  only when qmail-inject exits 0; one that fails is logged and tried again by the next run. Exit 1
  when any failed. Run it from cron (e.g. every 10 minutes), or let \`nqqueue serve\` do it.
  --dry-run         compose the digests that are due and print them; send and record nothing
  --to ADDRESS      only this recipient's digest, now, whatever the timing (never still means none)
  -h, --help        this text
`;

/** Written whole before the command exits: a pipe (| less, > file) gets every byte. */
function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (e) => (e ? reject(e) : resolve())));
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('digest', USAGE, args, { 'dry-run': { type: 'boolean' }, to: { type: 'string' } });
  if (typeof parsed === 'number') return parsed;
  let only: string | undefined;
  if (parsed.values.to !== undefined) {
    try {
      const list = parseAddressList(String(parsed.values.to));
      if (list.length !== 1) throw new Error('give one address');
      only = list[0];
    } catch (err) {
      return usageFailure('digest', USAGE, `--to: ${(err as Error).message}`);
    }
  }
  const dryRun = parsed.values['dry-run'] === true;
  const log = makeLogger(0, 'nqqueue digest:');
  const say = (l: string) => log.write(`nqqueue digest: ${l}`);
  let q;
  try {
    const paths = pathsFrom(env);
    try {
      const user = prepareHome(paths.home, 'digest', { createAsRoot: false });
      if (user !== undefined) say(`running as ${user}, the owner of ${paths.home}`);
    } catch (err) {
      if (!(err instanceof NoHomeError)) throw err;
      say(`nothing to do: ${err.message}`);
      return 0;
    }
    const settings = readSettings(paths);
    // The file's own lines, and the two sections a digest reads: a value refused is said at its line.
    const problems = sortProblems([
      ...settings.problems,
      ...settings.sections().flatMap((sec) => (sec.name === 'digest' || sec.name === 'web' ? serviceSectionProblems(sec, settings.file ?? '(settings)') : [])),
    ]);
    if (problems[0]) {
      say(`configuration: ${formatProblem(problems[0])}`);
      return 1;
    }
    if (!existsSync(join(paths.home, STORE_FILE)) && !existsSync(join(paths.home, 'quarantine'))) {
      say('no digest is due: nothing has been held yet');
      return 0;
    }
    // Loaded only now: --help loads neither the store nor node:sqlite.
    const { openQuarantine } = await import('../../quarantine/actions.js');
    const { runDigests } = await import('../../digest/run.js');
    q = await openQuarantine(paths, settings);
    const r = await runDigests(q, { dryRun, ...(only === undefined ? {} : { only }), log: say, print: writeOut });
    if (r.busy === undefined && r.sent + r.failed + r.printed === 0) {
      say(only === undefined ? 'no digest is due' : `no digest for <${only}>: no held mail new since the last one, or the cadence is never`);
    }
    return r.failed > 0 ? 1 : 0;
  } catch (err) {
    say(err instanceof OwnerError ? err.message : describeError(err));
    return 1;
  } finally {
    await q?.store.close().catch(() => undefined);
  }
}
