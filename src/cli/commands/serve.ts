// `nqqueue serve`: daemon mode (see docs/daemon-protocol.md). Runs in the foreground under daemontools or
// systemd, as qmail-smtpd's user (run as root, it switches to the owner of $NQQUEUE_HOME first). It
// also delivers the retry spool — once before it listens, then every `flush_interval` — so a site in
// daemon mode needs no cron entry for `nqqueue flush`. It expires quarantined items too (older than
// quarantine_expire), once at start and then hourly: no cron entry for `nqqueue quarantine expire`.

import { DigestScheduler } from '../../digest/schedule.js';
import { describeError } from '../../errors.js';
import { LearnScheduler } from '../../learn/schedule.js';
import { makeLogger } from '../../log.js';
import { SpoolFlusher } from '../../ops/flusher.js';
import { FIRST_PASS_DELAY_MS, QuarantineExpiry } from '../../quarantine/expiry.js';
import { prepareHome } from '../../ops/owner.js';
import { pathsFrom } from '../../queue/services.js';
import { parseCommand } from '../args.js';

export const USAGE = `usage: nqqueue serve
  Daemon mode: runs in the foreground (under daemontools or systemd, as qmail-smtpd's user; run as root,
  it switches to the owner of $NQQUEUE_HOME) and takes messages from bin/nqqueue-qq on
  $NQQUEUE_HOME/nqqueue.sock. Reloads its configuration when a file in the control directory changes and
  on SIGHUP; delivers the retry spool at start and every flush_interval; expires quarantined items older
  than quarantine_expire at start and hourly; mails the digests that are due (as \`nqqueue digest\`
  does) 5 seconds after start and every 5 minutes; walks the users' Maildirs for what they moved in and
  out of Junk (as \`nqqueue learn --maildirs\` does) every [learn] every when that and [learn] maildirs
  are set (off by default); with metrics = HOST:PORT in nqqueue.conf, answers Prometheus at
  http://HOST:PORT/metrics; rolls the metrics journal ($NQQUEUE_HOME/metrics/) up into the store every
  10 seconds (metrics_journal, metrics_history); SIGTERM stops it gracefully.
  -h, --help        this text
`;

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('serve', USAGE, args, {});
  if (typeof parsed === 'number') return parsed;
  const logger = makeLogger(0);
  const log = (line: string) => logger.write(line);
  let flusher: SpoolFlusher;
  let expiry: QuarantineExpiry;
  try {
    const paths = pathsFrom(env);
    const user = prepareHome(paths.home, 'serve');
    if (user !== undefined) log(`nqqueue serve: running as ${user}, the owner of ${paths.home}`);
    else if (process.geteuid?.() === 0) {
      // Root's own home: allowed (an all-root test box), but not what a mail server wants.
      log(
        `nqqueue serve: warning: running as root with ${paths.home} owned by root: qmail-smtpd's user cannot use the socket or the home; ` +
          `give the home to that user (chown -R qmaild:nofiles ${paths.home}) and it runs as that user`,
      );
    }
    flusher = new SpoolFlusher(paths, (l) => log(`nqqueue serve: flush: ${l}`));
    expiry = new QuarantineExpiry(paths, (l) => log(`nqqueue serve: quarantine expiry: ${l}`));
  } catch (err) {
    // 111: daemontools and systemd try again later.
    log(`nqqueue serve: cannot start: ${describeError(err)}`);
    return 111;
  }
  // A stop asked for during the first pass waits for it: a delivery is not cut off half-way.
  let stopEarly = false;
  const early = () => {
    stopEarly = true;
  };
  process.once('SIGTERM', early);
  process.once('SIGINT', early);
  await flusher.once(true);
  process.off('SIGTERM', early);
  process.off('SIGINT', early);
  if (stopEarly) {
    log('nqqueue serve: stopped before listening');
    return 0;
  }
  flusher.schedule();
  // Not waited for, and only once the daemon is taking mail: expiring old items must not hold it up.
  expiry.schedule(FIRST_PASS_DELAY_MS);
  const digests = new DigestScheduler(pathsFrom(env), (l) => log(`nqqueue serve: digest: ${l}`));
  digests.start();
  // [learn] every and maildirs: learning from the users' moves (off by default).
  const learning = new LearnScheduler(pathsFrom(env), (l) => log(`nqqueue serve: learn: ${l}`));
  learning.start();
  try {
    // Loaded only now: asking for the usage does not load the daemon.
    const { serve } = await import('../../daemon/server.js');
    return await serve(env);
  } finally {
    await Promise.all([flusher.stop(), expiry.stop(), digests.stop(), learning.stop()]);
  }
}
