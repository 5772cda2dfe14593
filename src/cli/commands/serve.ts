// `nqqueue serve`: daemon mode (see docs/daemon-protocol.md). Runs in the foreground under daemontools or
// systemd, as qmail-smtpd's user.

import { parseCommand } from '../args.js';

export const USAGE = `usage: nqqueue serve
  Daemon mode: runs in the foreground (under daemontools or systemd, as qmail-smtpd's user) and takes
  messages from bin/nqqueue-qq on $NQQUEUE_HOME/nqqueue.sock. Reloads its configuration when a file in
  the control directory changes and on SIGHUP; SIGTERM stops it gracefully.
  -h, --help        this text
`;

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('serve', USAGE, args, {});
  if (typeof parsed === 'number') return parsed;
  // Loaded only now: asking for the usage does not load the daemon.
  const { serve } = await import('../../daemon/server.js');
  return serve(env);
}
