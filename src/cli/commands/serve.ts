// `nqqueue serve`: daemon mode (see docs/daemon-protocol.md). Runs in the foreground under daemontools or
// systemd, as qmail-smtpd's user.

import { serve } from '../../daemon/server.js';

export async function run(_args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return serve(env);
}
