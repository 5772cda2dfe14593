// `exec`: run any program. The message on stdin; envelope, client and earlier results in environment
// variables. Exit 0 accept (stdout: header lines to add), 100 reject (first line of stdout: the text),
// 111 tempfail; anything else is a failure and the failure policy decides.

import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';

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
  params: {
    words: (_word, index) => {
      if (index > 0) throw new PluginConfigError('only one program can be named: give its arguments with arg=');
    },
    keys: {
      program: {},
      arg: { list: true },
      recipient: {
        check: (v) => {
          if (v !== 'yes' && v !== 'no') throw new PluginConfigError('use recipient=yes or recipient=no');
        },
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
    return { program, args: params.all('arg'), perRecipient: params.get('recipient') !== 'no' };
  },
  scope(config, recipient) {
    return config.perRecipient ? recipient : undefined;
  },
  run(ctx) {
    const { config, signal } = ctx;
    const env: Record<string, string> = {
      ...ctx.client.env,
      PATH: '/usr/local/bin:/usr/bin:/bin',
      NQQ_STAGE: ctx.stage,
      NQQ_SENDER: ctx.sender,
      NQQ_RECIPIENTS: ctx.recipients.join('\n'),
      NQQ_MESSAGE_ID: ctx.messageId,
      NQQ_MESSAGE_SIZE: String(ctx.message.size),
      NQQ_RESULTS: JSON.stringify(ctx.results.map((r) => ({ plugin: r.plugin, verdict: r.verdict, score: r.score, flagged: r.flagged }))),
    };
    if (ctx.recipient !== undefined) env.NQQ_RECIPIENT = ctx.recipient;
    if (ctx.client.helo !== undefined) env.NQQ_HELO = ctx.client.helo;
    return new Promise((resolve, reject) => {
      const child = spawn(config.program, [...config.args], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env,
        cwd: '/',
        signal,
        killSignal: 'SIGKILL',
      });
      let out = Buffer.alloc(0);
      let overflow = false;
      child.stdout!.on('data', (c: Buffer) => {
        if (out.length + c.length > MAX_OUTPUT) overflow = true;
        else out = Buffer.concat([out, c]);
      });
      child.stdin!.on('error', () => {}); // a program may answer without reading the message
      child.stdout!.on('error', () => {});
      pipeline(ctx.message.stream(), child.stdin!).catch(() => {});
      child.on('error', (err) => reject(new BackendError(`${config.program}: ${err.message}`)));
      child.on('close', (code, sig) => {
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
