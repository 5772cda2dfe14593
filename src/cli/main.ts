// The `nqqueue` command: no arguments = qmail-queue mode; otherwise one subcommand (loaded only when used).

import { VERSION } from '../version.js';

const USAGE = `usage:
  nqqueue                                   qmail-queue mode (message on fd 0, envelope on fd 1)
  nqqueue --version
  nqqueue explain --from A --to B [--to C ...]
  nqqueue test --from A --to B [--to C ...] < message
  nqqueue check-config
  nqqueue quarantine list | show ID | release ID | delete ID
  nqqueue flush
  nqqueue demo
  nqqueue serve                             daemon mode (clients: bin/nqqueue-qq)
`;

type Command = (args: string[], env: NodeJS.ProcessEnv) => Promise<number>;

const COMMANDS: Record<string, () => Promise<{ run: Command }>> = {
  explain: () => import('./commands/explain.js'),
  test: () => import('./commands/test.js'),
  'check-config': () => import('./commands/check-config.js'),
  flush: () => import('./commands/flush.js'),
  quarantine: () => import('./commands/quarantine.js'),
  demo: () => import('./commands/demo.js'),
  serve: () => import('./commands/serve.js'),
};

/** Last resort in queue mode: a bug is exit 81 with one log line, never a stack trace and exit 1. */
function installBugHandlers(): void {
  const die = (err: unknown) => {
    try {
      const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      process.stderr.write(`nqqueue: result=bug code=NQQ_ERR_BUG reason=${JSON.stringify(msg)} exit=81\n`);
    } finally {
      process.exit(81);
    }
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    installBugHandlers();
    const { queueMode } = await import('./queue-mode.js');
    return queueMode(process.env);
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`nqqueue ${VERSION}\n`);
    return 0;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const load = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!load) {
    process.stderr.write(`nqqueue: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
    return 2;
  }
  const { run } = await load();
  return run(rest, process.env);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`nqqueue: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(process.argv.length <= 2 ? 81 : 1);
  },
);
