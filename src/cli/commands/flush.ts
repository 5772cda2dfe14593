// `nqqueue flush`: deliver what the retry spool holds; entries that fail again stay for the next flush.

import { describeError } from '../../errors.js';
import { makeLogger } from '../../log.js';
import { makeServices, pathsFrom, readSettings } from '../../queue/services.js';
import { parseCommand } from '../args.js';

export const USAGE = `usage: nqqueue flush
  Delivers what the retry spool ($NQQUEUE_HOME/spool) holds through qmail-queue; entries that fail again
  stay for the next flush. Exit 1 when any stayed. Run it from cron or after a qmail-queue outage.
  -h, --help        this text
`;

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('flush', USAGE, args, {});
  if (typeof parsed === 'number') return parsed;
  const log = makeLogger(0, 'nqqueue flush:');
  let services;
  try {
    const paths = pathsFrom(env);
    services = makeServices(paths, readSettings(paths), undefined);
  } catch (err) {
    log.write(`nqqueue flush: ${describeError(err)}`);
    return 1;
  }
  const { delivered, failed } = await services.spool.flush(services.sink, (l) => log.write(`nqqueue flush: ${l}`));
  log.write(`nqqueue flush: ${delivered} delivered, ${failed} kept`);
  return failed > 0 ? 1 : 0;
}
