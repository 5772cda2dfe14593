// The `nqqueue` command: no arguments = qmail-queue mode; otherwise one subcommand (loaded only when used).

import { isatty } from 'node:tty';

import { VERSION } from '../version.js';
import { visible } from '../text/visible.js';

const USAGE = `usage:
  nqqueue                                   qmail-queue mode (message on fd 0, envelope on fd 1)
  nqqueue --version
  nqqueue explain --from A --to B [--to C ...] [--env NAME=VALUE ...]
  nqqueue test --from A --to B [--to C ...] < message
  nqqueue init [--user NAME] [--dry-run] [--clamd-conf FILE]   a starter configuration, the home, next steps
  nqqueue check-config [--probe] [--user NAME] [--env NAME=VALUE ...]
  nqqueue quarantine list | show [--raw] ID | release ID | delete ID
  nqqueue flush
  nqqueue lists add | del | show | import | export ...   the allow and block lists
  nqqueue import-simscan [--simcontrol PATH] [--write | --out DIR]   simscan's simcontrol as .cfb lines
  nqqueue digest [--dry-run] [--to ADDRESS]
  nqqueue learn --spam|--ham [--user ADDRESS] PATH... | --maildirs ROOT
  nqqueue demo [--keep]
  nqqueue serve                             daemon mode (clients: bin/nqqueue-qq)
  nqqueue web                               the quarantine console (a web server behind a TLS proxy)
  nqqueue COMMAND --help                    what one command does and takes
`;

type Command = (args: string[], env: NodeJS.ProcessEnv) => Promise<number>;

const COMMANDS: Record<string, () => Promise<{ run: Command; USAGE: string }>> = {
  init: () => import('./commands/init.js'),
  explain: () => import('./commands/explain.js'),
  test: () => import('./commands/test.js'),
  'check-config': () => import('./commands/check-config.js'),
  flush: () => import('./commands/flush.js'),
  digest: () => import('./commands/digest.js'),
  learn: () => import('./commands/learn.js'),
  quarantine: () => import('./commands/quarantine.js'),
  lists: () => import('./commands/lists.js'),
  'import-simscan': () => import('./commands/import-simscan.js'),
  demo: () => import('./commands/demo.js'),
  serve: () => import('./commands/serve.js'),
  web: () => import('./commands/web.js'),
};

/** Last resort in queue mode: a bug is exit 81 with one log line, never a stack trace and exit 1. */
function installBugHandlers(): void {
  const die = (err: unknown) => {
    try {
      const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      process.stderr.write(`nqqueue: result=bug code=NQQ_ERR_BUG reason=${JSON.stringify(visible(msg))} exit=81\n`);
    } finally {
      process.exit(81);
    }
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}

function command(name: string): (() => Promise<{ run: Command; USAGE: string }>) | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    // qmail never starts the program on a terminal: someone typed `nqqueue` to see what it is.
    if (isatty(0)) {
      process.stderr.write(`nqqueue: qmail-queue mode reads a message on fd 0 and an envelope on fd 1, not a terminal\n${USAGE}`);
      return 2;
    }
    installBugHandlers();
    const { queueMode } = await import('./queue-mode.js');
    return queueMode(process.env);
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    if (rest.length > 0) {
      process.stderr.write(`nqqueue: --version takes no arguments\n${USAGE}`);
      return 2;
    }
    process.stdout.write(`nqqueue ${VERSION}\n`);
    return 0;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    // `nqqueue help explain`: that command's usage (without loading anything it runs).
    const sub = rest.length === 1 ? command(rest[0]!) : undefined;
    if (sub) {
      process.stdout.write((await sub()).USAGE);
      return 0;
    }
    if (rest.length > 0) {
      process.stderr.write(`nqqueue: unknown command ${JSON.stringify(visible(rest.join(' ')))}\n${USAGE}`);
      return 2;
    }
    process.stdout.write(USAGE);
    return 0;
  }
  const load = command(cmd);
  if (!load) {
    const what = cmd.startsWith('-') ? 'option' : 'command';
    process.stderr.write(`nqqueue: unknown ${what} ${JSON.stringify(visible(cmd))}\n${USAGE}`);
    return 2;
  }
  const { run } = await load();
  return run(rest, process.env);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`nqqueue: ${visible(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(process.argv.length <= 2 ? 81 : 1);
  },
);
