// `nqqueue flush`: deliver what the retry spool holds; entries that fail again stay for the next flush.
// Run as root (cron), it switches to the owner of $NQQUEUE_HOME first (src/ops/owner.ts).

import { describeError } from '../../errors.js';
import { makeLogger } from '../../log.js';
import { flushSpool } from '../../ops/flush.js';
import { NoHomeError, OwnerError, prepareHome } from '../../ops/owner.js';
import { pathsFrom } from '../../queue/services.js';
import { parseCommand } from '../args.js';

export const USAGE = `usage: nqqueue flush
  Delivers what the retry spool ($NQQUEUE_HOME/spool) holds through qmail-queue; entries that fail again
  stay for the next flush. Exit 1 when any stayed. Run as root, it switches to the owner of the home.
  In daemon mode \`nqqueue serve\` flushes by itself (flush_interval); otherwise run it from cron.
  -h, --help        this text
`;

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('flush', USAGE, args, {});
  if (typeof parsed === 'number') return parsed;
  const log = makeLogger(0, 'nqqueue flush:');
  const say = (l: string) => log.write(`nqqueue flush: ${l}`);
  try {
    const paths = pathsFrom(env);
    let user;
    try {
      user = prepareHome(paths.home, 'flush', { createAsRoot: false });
    } catch (err) {
      if (!(err instanceof NoHomeError)) throw err;
      say(`nothing to flush: ${err.message}`);
      return 0;
    }
    if (user !== undefined) say(`running as ${user}, the owner of ${paths.home}`);
    const { failed } = await flushSpool(paths, say);
    return failed > 0 ? 1 : 0;
  } catch (err) {
    say(err instanceof OwnerError ? err.message : describeError(err));
    return 1;
  }
}
