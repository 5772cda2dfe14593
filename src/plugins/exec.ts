// `exec`: run any program. The message on stdin, the recipient list on fd 3; envelope, client and
// earlier results in environment variables. Exit 0 accept (stdout: header lines to add), 100 reject
// (first line of stdout: the text), 111 tempfail; anything else is a failure and the failure policy
// decides. The program leads a process group of its own: at its timeout the group gets SIGTERM, then
// SIGKILL, and whatever it leaves running when it exits is killed.

import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Writable } from 'node:stream';

import { writeMessage } from '../intake/message.js';
import { BackendError, definePlugin, PluginConfigError } from '../plugin-api/define.js';
import type { HeaderField } from '../pipeline/types.js';
import { VERSION } from '../version.js';

export interface ExecConfig {
  readonly program: string;
  readonly args: readonly string[];
  /** Does the program's answer depend on the recipient? (default yes in the per-user stage) */
  readonly perRecipient: boolean;
}

const MAX_OUTPUT = 64 * 1024;
/** The descriptor that carries the recipient list, one address a line. */
export const RECIPIENTS_FD = 3;
/** Up to this many bytes the list is also in NQQ_RECIPIENTS. */
export const RECIPIENTS_ENV_MAX = 64 * 1024;
/** Between SIGTERM and SIGKILL to a program's process group at its timeout. */
export const KILL_GRACE_MS = 2000;
/** recipient= when the line does not say: the answer may depend on the recipient. */
export const DEFAULT_RECIPIENT = 'yes';

/** Process groups of programs that were stopped and may not be gone yet. */
const stopping = new Set<number>();
let exitHook = false;

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group is gone
  }
}

/**
 * The process group a program leads. stop(): SIGTERM now, SIGKILL after the grace — or when this
 * process exits first (the standalone program exits as soon as the message is decided), so nothing
 * the program started outlives NQqueue either way.
 */
function trackGroup(pgid: number): { stop(): void; kill(sig: NodeJS.Signals): void; done(): void } {
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      killGroup(pgid, 'SIGTERM');
      stopping.add(pgid);
      if (!exitHook) {
        exitHook = true;
        process.once('exit', () => stopping.forEach((g) => killGroup(g, 'SIGKILL')));
      }
      setTimeout(() => {
        killGroup(pgid, 'SIGKILL');
        stopping.delete(pgid);
      }, KILL_GRACE_MS).unref();
    },
    kill(sig) {
      killGroup(pgid, sig);
    },
    done() {
      // Still SIGKILLed after the grace if it was stopped: its children may not have gone yet.
      if (!stopped) killGroup(pgid, 'SIGKILL');
    },
  };
}

/** Header lines from the program's stdout: `Name: value`, continuation lines start with space or tab. */
export function parseHeaderLines(out: string): HeaderField[] {
  const fields: { name: string; value: string }[] = [];
  for (const line of out.replace(/\r\n/g, '\n').split('\n')) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && fields.length > 0) {
      fields[fields.length - 1]!.value += `\n${line}`;
      continue;
    }
    const m = /^([!-9;-~]+):[ \t]?(.*)$/.exec(line);
    if (!m) throw new Error(`output line is not a header: ${JSON.stringify(line.slice(0, 80))}`);
    fields.push({ name: m[1]!, value: m[2]! });
  }
  return fields;
}

export default definePlugin<ExecConfig>({
  name: 'exec',
  version: VERSION,
  stages: ['general', 'per-user'],
  description:
    'Run any program: the message on its standard input, the recipient list on fd 3, the envelope and the client in its environment. Exit 0 accepts (standard output: header lines to add), 100 refuses (the first line of standard output: the text), 111 defers; anything else is a failure. The program runs in a process group of its own, killed whole at its timeout. The interface is in the README ("The exec interface").',
  params: {
    words: (_word, index) => {
      if (index > 0) throw new PluginConfigError('only one program can be named: give its arguments with arg=');
    },
    wordsDoc: 'the program to run (an absolute path; one): exec=/usr/local/bin/check',
    keys: {
      program: { doc: 'the program to run (an absolute path), when no bare word names it' },
      arg: { list: true, doc: 'an argument of the program; repeat for several, in order' },
      recipient: {
        check: (v) => {
          if (v !== 'yes' && v !== 'no') throw new PluginConfigError('use recipient=yes or recipient=no');
        },
        doc: 'no: the answer does not depend on the recipient, so the recipients that share the line are analysed once; yes: once per recipient',
        default: DEFAULT_RECIPIENT,
      },
    },
  },
  configure({ params }) {
    const program = params.words[0] ?? params.get('program');
    if (!program) throw new PluginConfigError('no program given (exec=/path/to/program)');
    if (!program.startsWith('/')) throw new PluginConfigError(`${program} must be an absolute path`);
    let st;
    try {
      st = statSync(program);
    } catch (err) {
      throw new PluginConfigError(`${program}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!st.isFile() || (st.mode & 0o111) === 0) throw new PluginConfigError(`${program} is not an executable file`);
    return { program, args: params.all('arg'), perRecipient: (params.get('recipient') ?? DEFAULT_RECIPIENT) === 'yes' };
  },
  scope(config, recipient) {
    return config.perRecipient ? recipient : undefined;
  },
  run(ctx) {
    const { config, signal } = ctx;
    const list = ctx.recipients.join('\n');
    const env: Record<string, string> = {
      ...ctx.client.env,
      PATH: '/usr/local/bin:/usr/bin:/bin',
      NQQ_STAGE: ctx.stage,
      NQQ_SENDER: ctx.sender,
      NQQ_RECIPIENT_COUNT: String(ctx.recipients.length),
      NQQ_RECIPIENTS_FD: String(RECIPIENTS_FD),
      NQQ_MESSAGE_ID: ctx.messageId,
      NQQ_MESSAGE_SIZE: String(ctx.message.size),
      NQQ_RESULTS: JSON.stringify(ctx.results.map((r) => ({ plugin: r.plugin, verdict: r.verdict, score: r.score, flagged: r.flagged }))),
    };
    // A long list cannot be in the environment (Linux refuses one variable over 128 KiB, and the
    // program could not be started): then it is only on the descriptor.
    if (Buffer.byteLength(list) <= RECIPIENTS_ENV_MAX) env.NQQ_RECIPIENTS = list;
    if (ctx.recipient !== undefined) env.NQQ_RECIPIENT = ctx.recipient;
    if (ctx.client.helo !== undefined) env.NQQ_HELO = ctx.client.helo;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      // Its own process group, so that at its timeout whatever it started goes with it.
      const child = spawn(config.program, [...config.args], {
        stdio: ['pipe', 'pipe', 'ignore', 'pipe'],
        env,
        cwd: '/',
        detached: true,
      });
      const group = child.pid === undefined ? undefined : trackGroup(child.pid);
      const onAbort = () => {
        group?.stop();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      let out = Buffer.alloc(0);
      let overflow = false;
      child.stdout!.on('data', (c: Buffer) => {
        if (out.length + c.length > MAX_OUTPUT) overflow = true;
        else out = Buffer.concat([out, c]);
      });
      child.stdin!.on('error', () => {}); // a program may answer without reading the message
      child.stdout!.on('error', () => {});
      const rcpts = child.stdio[RECIPIENTS_FD] as Writable | null;
      rcpts?.on('error', () => {}); // nor the recipient list
      rcpts?.end(ctx.recipients.length ? `${list}\n` : '');
      writeMessage(ctx.message, child.stdin!).catch(() => {});
      child.on('exit', () => {
        // The program is done: anything it left running in its group (and holding its stdout) goes.
        group?.kill('SIGKILL');
      });
      child.on('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        group?.stop();
        reject(new BackendError(`${config.program}: ${err.message}`));
      });
      child.on('close', (code, sig) => {
        signal.removeEventListener('abort', onAbort);
        group?.done();
        if (signal.aborted) return;
        if (sig) return reject(new BackendError(`${config.program} killed by ${sig}`));
        if (overflow) return reject(new BackendError(`${config.program} wrote more than ${MAX_OUTPUT} bytes`));
        const text = out.toString('utf8');
        const first = text.split('\n', 1)[0]!.trim();
        if (code === 0) {
          try {
            resolve({ verdict: 'accept', headers: parseHeaderLines(text) });
          } catch (err) {
            reject(new BackendError(`${config.program}: ${(err as Error).message}`));
          }
        } else if (code === 100) {
          resolve({ verdict: 'reject', text: first || 'message refused (#5.7.1)', flagged: true });
        } else if (code === 111) {
          resolve({ verdict: 'tempfail', text: first || undefined });
        } else reject(new BackendError(`${config.program} exited ${code}`));
      });
    });
  },
});
